/* Cluster page: nodes by role with status, heartbeat, notes, KTM state and sparklines; refreshes itself. */
"use strict";

(() => {
  const { api, el, fmtAge, nodeLink, showError } = FODC;
  // ?refresh=N (seconds, 2 to 3600) changes how often the page reloads its data; 10 s by default.
  const REFRESH_MS = Math.min(3600, Math.max(2, Number(FODC.param("refresh")) || 10)) * 1000;
  const SPARK_RANGE_MS = 15 * 60 * 1000;
  const SPARK_NAMES = "banyandb_system_(cpu|memory)_state|banyandb_[a-z]+_total_written";

  /* The proxy's notes on the node (fodc/notes.py), and how long it has been unconnected. */
  function notes(node) {
    const said = [...(node.notes || [])];
    if (node.status !== "online") said.push(`unconnected since ${fmtAge(node.unconnected_since)}`);
    return said;
  }

  /* node_id -> {cpu, mem, writes}: point lists for the sparklines. */
  function sparkSeries(windows) {
    const byNode = {};
    const writes = {};
    for (const s of windows.series) {
      const entry = byNode[s.node_id] || (byNode[s.node_id] = { cpu: [], mem: [], writes: [] });
      if (s.name === "banyandb_system_cpu_state" && s.labels.kind === "idle") {
        entry.cpu = s.points.filter(([, v]) => typeof v === "number").map(([t, v]) => [t, 100 - v]);
      } else if (s.name === "banyandb_system_memory_state" && s.labels.kind === "used_percent") {
        entry.mem = s.points;
      } else if (s.name.endsWith("_total_written")) {
        const sum = writes[s.node_id] || (writes[s.node_id] = new Map());
        for (const [t, v] of FODC.series.rate(s.points)) sum.set(t, (sum.get(t) || 0) + v);
      }
    }
    for (const [nodeId, sum] of Object.entries(writes)) {
      byNode[nodeId].writes = [...sum.entries()].sort((a, b) => a[0] - b[0]);
    }
    return byNode;
  }

  function sparkCell(points, unit, what) {
    const last = points.length ? points[points.length - 1][1] : null;
    return el("td", { class: "spark-cell", "data-spark": what },
      FODC.draw.sparkline(points, { title: what }),
      el("span", { class: "spark-label" }, last === null ? "–" : `${FODC.fmtNumber(last)}${unit}`));
  }

  function render(cluster, sparks) {
    const s = cluster.summary;
    document.getElementById("summary").textContent =
      `${s.total} nodes: ${s.online} online, ${s.unconnected} unconnected`;
    const roles = document.getElementById("roles");
    const byRole = {};
    for (const node of cluster.nodes) (byRole[node.role] = byRole[node.role] || []).push(node);
    const sections = [];
    const ORDER = ["liaison", "datanode-hot", "datanode-warm", "datanode-cold"];
    const rank = (role) => (ORDER.includes(role) ? ORDER.indexOf(role) : ORDER.length);
    for (const role of Object.keys(byRole).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1))) {
      const rows = byRole[role].sort((a, b) => (a.node_id < b.node_id ? -1 : 1)).map((node) => {
        const spark = sparks[node.node_id] || { cpu: [], mem: [], writes: [] };
        const ktm = node.capabilities.ktm_mode || "–";
        return el("tr", { "data-node": node.node_id },
          el("td", {}, nodeLink(node.node_id)),
          el("td", { class: `status-${node.status}` }, node.status),
          el("td", { title: node.last_heartbeat || "" }, fmtAge(node.last_heartbeat)),
          el("td", {}, ...notes(node).map((n) => el("span", { class: "note" }, n))),
          el("td", { title: node.capabilities.ktm_reason || "" }, ktm,
             node.capabilities.ktm_reason ? el("div", { class: "hint" }, node.capabilities.ktm_reason) : null),
          sparkCell(spark.cpu, " %", "cpu busy %"),
          sparkCell(spark.mem, " %", "memory used %"),
          sparkCell(spark.writes, "/s", "rows written/s"));
      });
      sections.push(el("h2", {}, `${role} (${rows.length})`),
        el("table", { class: "grid", "data-role": role },
          el("thead", {}, el("tr", {}, ...["node", "status", "last heartbeat", "notes", "KTM", "CPU", "memory",
                                           "writes"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows)));
    }
    if (!sections.length) sections.push(el("p", {}, "No agent has registered with this proxy yet."));
    roles.replaceChildren(...sections);
    if (!document.body.dataset.rendered) document.body.dataset.renderedAt = String(performance.now());
    document.body.dataset.rendered = String(Date.now());
  }

  async function refresh() {
    try {
      const now = Date.now();
      const step = FODC.draw.stepFor(SPARK_RANGE_MS, 90);
      const windowsUrl = `/metrics-windows?start=${(now - SPARK_RANGE_MS) / 1000}&step=${step}` +
        `&name_regex=${encodeURIComponent(SPARK_NAMES)}`;
      document.body.dataset.windowsUrl = windowsUrl;
      const [cluster, windows] = await Promise.all([api("/cluster"),
        api(windowsUrl).catch(() => ({ series: [] }))]);
      render(cluster, sparkSeries(windows));
      showError("");
    } catch (exc) {
      if (exc.status !== 0) showError(`Cannot load the cluster: ${exc.message}`);
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  document.getElementById("refresh-s").textContent = String(REFRESH_MS / 1000);
  FODC.whoami().catch(() => {});
  refresh();
})();
