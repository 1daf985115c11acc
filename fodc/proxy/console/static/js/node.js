/* Node page: families picked by search, a range (or "around incident X"), plots from /metrics-windows with
   incident markers; counters as rates, histograms as p50/p99; the config snapshot and its history. */
"use strict";

(() => {
  const { api, el, showError, fmtTime } = FODC;
  const S = FODC.series;
  const RANGES = { "15m": 15 * 60e3, "1h": 3600e3, "6h": 6 * 3600e3, "24h": 24 * 3600e3 };
  const MAX_LINES = 10;  // per plot; the rest are named, not drawn
  const PLOT_WIDTH = 620;
  const DEFAULTS = ["banyandb_system_cpu_state", "banyandb_system_memory_state", "banyandb_measure_total_written",
                    "banyandb_liaison_grpc_total_started"];
  const nodeId = FODC.param("node_id");
  const chosen = new Set((FODC.param("families") || "").split(",").filter(Boolean));
  let families = {};  // name -> type, from the node's latest page
  let incidents = [];

  function setParams() {
    const params = new URLSearchParams(location.search);
    params.set("families", [...chosen].join(","));
    params.set("range", document.getElementById("range").value);
    history.replaceState(null, "", `${location.pathname}?${params}`);
  }

  function renderChosen() {
    document.getElementById("chosen").replaceChildren(...[...chosen].map((name) =>
      el("span", { class: "chip", "data-family": name }, name,
        el("button", { type: "button", title: "remove", onclick: () => { chosen.delete(name); renderChosen(); draw(); } },
          "×"))));
  }

  function parseTypes(text) {
    const types = {};
    for (const line of text.split("\n")) {
      if (line.startsWith("# TYPE ")) {
        const [, , name, type] = line.split(" ");
        if (!name.startsWith("fodc_")) types[name] = type;
      }
    }
    return types;
  }

  function timeRange() {
    const choice = document.getElementById("range").value;
    if (choice === "custom") {
      const from = Date.parse(document.getElementById("range-from").value);
      const to = Date.parse(document.getElementById("range-to").value);
      if (Number.isNaN(from) || Number.isNaN(to) || from >= to) throw new Error("pick a custom range: from before to");
      return [from, to];
    }
    if (choice === "incident") {
      const picked = incidents.find((i) => i.id === document.getElementById("incident-pick").value);
      if (!picked) throw new Error("this node has no incident to look around");
      const onset = picked.onset_ms || picked.at_ms;
      return [Math.min(onset, picked.at_ms) - 15 * 60e3, picked.at_ms + 5 * 60e3];
    }
    const now = Date.now();
    return [now - RANGES[choice], now];
  }

  /* The lines of one family's plot: gauges as they are, counters as rates, histograms as p50/p99. */
  function linesOf(name, type, series) {
    if (type === "histogram") {
      const groups = new Map();
      for (const s of series.filter((x) => x.name === `${name}_bucket`)) {
        const key = S.label(s, ["le"]);
        (groups.get(key) || groups.set(key, []).get(key)).push(s);
      }
      const lines = [];
      for (const [key, buckets] of groups) {
        const [p50, p99] = S.quantiles(buckets, [0.5, 0.99]);
        lines.push({ label: `p50 ${key}`, points: p50 }, { label: `p99 ${key}`, points: p99 });
      }
      return { kind: "p50/p99 from buckets", lines };
    }
    const own = series.filter((x) => x.name === name || (type === "summary" && x.name === name));
    if (type === "counter") return { kind: "rate /s", lines: own.map((s) => ({ label: S.label(s), points: S.rate(s.points) })) };
    return { kind: type || "untyped", lines: own.map((s) => ({ label: S.label(s), points: S.finite(s.points) })) };
  }

  async function draw(event) {
    if (event) event.preventDefault();
    setParams();
    const plots = document.getElementById("plots");
    let range;
    try {
      range = timeRange();
    } catch (exc) {
      showError(exc.message);
      return;
    }
    showError("");
    if (!chosen.size) { FODC.draw.clear(plots); return; }
    const [start, end] = range;
    const step = FODC.draw.stepFor(end - start, PLOT_WIDTH - 80);
    const url = `/metrics-windows?node_id=${encodeURIComponent(nodeId)}&name=${encodeURIComponent([...chosen].join(","))}` +
      `&start=${start / 1000}&end=${end / 1000}&step=${step}`;
    const info = document.getElementById("fetch-info");
    info.textContent = "loading…";
    const t0 = performance.now();
    let body;
    try {
      body = await api(url);
    } catch (exc) {
      info.textContent = "";
      showError(`Cannot load the window: ${exc.message}`);
      return;
    }
    const fetched = performance.now();
    // The bytes that came over the wire (Resource Timing), else the size of the JSON.
    const entry = performance.getEntriesByName(new URL(url, location.href).href).pop();
    const bytes = (entry && (entry.encodedBodySize || entry.decodedBodySize)) || JSON.stringify(body).length;
    FODC.draw.clear(plots);
    const markers = incidents.filter((i) => i.at_ms >= start && i.at_ms <= end)
      .map((i) => ({ ms: i.at_ms, label: i.trigger }));
    let points = 0;
    for (const name of chosen) {
      const type = families[name] || (body.series.find((s) => s.family === name) || {}).type;
      const mine = body.series.filter((s) => s.family === name);
      const { kind, lines } = linesOf(name, type, mine);
      const shown = lines.slice(0, MAX_LINES);
      const more = lines.length - shown.length;
      points += shown.reduce((n, l) => n + l.points.length, 0);
      if (!mine.length) {
        plots.append(el("div", { class: "plot" }, el("div", { class: "plot-title" }, name),
          el("p", { class: "hint" }, "no points in this range")));
        continue;
      }
      FODC.draw.plot(plots, { title: `${name} (${kind})${more > 0 ? ` — ${more} more lines not drawn` : ""}`,
                              lines: shown, markers, width: PLOT_WIDTH, source: url, kind });
    }
    const drawn = performance.now();
    const missing = body.missing_agents.length ? ` — not answering: ${body.missing_agents.map((m) => `${m.node_id} (${m.reason})`).join(", ")}` : "";
    info.textContent = `${body.series.length} series, ${(bytes / 1024).toFixed(0)} KiB, step ${step}s, ` +
      `fetched in ${Math.round(fetched - t0)} ms, drawn in ${Math.round(drawn - fetched)} ms${missing}`;
    document.body.dataset.drawn = JSON.stringify({ series: body.series.length, bytes, points,
      fetchMs: fetched - t0, drawMs: drawn - fetched, step });
  }

  function configPanel(node) {
    const snapshot = el("details", { id: "config-snapshot" }, el("summary", {}, "Configuration snapshot"));
    snapshot.ontoggle = async () => {
      if (!snapshot.open || snapshot.dataset.loaded) return;
      snapshot.dataset.loaded = "1";
      try {
        const body = await api(`/cluster/config?node_id=${encodeURIComponent(nodeId)}`);
        const snap = (body.nodes[0] || {}).snapshot;
        if (!snap) { snapshot.append(el("p", {}, "No snapshot: the node's agent did not answer.")); return; }
        snapshot.append(el("p", { class: "hint" }, `captured ${snap.captured_at} (${snap.reason}), hash ${snap.hash}`),
          kvTable("flags", snap.flags || {}), kvTable("environment", snap.env || {}),
          ...Object.entries(snap.files || {}).map(([path, f]) =>
            el("details", {}, el("summary", {}, `${path} (${FODC.fmtBytes(f.size)})`),
              el("pre", { class: "log" }, f.content || `sha256 ${f.sha256}`))));
      } catch (exc) { snapshot.append(el("p", { class: "error" }, exc.message)); }
    };
    const hist = el("details", { id: "config-history" }, el("summary", {}, "Configuration history"));
    hist.ontoggle = async () => {
      if (!hist.open || hist.dataset.loaded) return;
      hist.dataset.loaded = "1";
      try {
        const body = await api(`/cluster/config/history?node_id=${encodeURIComponent(nodeId)}`);
        const rows = (((body.nodes || [])[0] || {}).snapshots || []).map((s) => el("tr", {}, el("td", {}, s.captured_at),
          el("td", {}, s.reason), el("td", {}, s.hash)));
        hist.append(el("table", { class: "grid" }, el("thead", {}, el("tr", {}, el("th", {}, "captured"),
          el("th", {}, "reason"), el("th", {}, "hash"))), el("tbody", {}, ...rows)));
      } catch (exc) { hist.append(el("p", { class: "error" }, exc.message)); }
    };
    return [snapshot, hist];
  }

  function kvTable(title, entries) {
    return el("table", { class: "grid kv" }, el("thead", {}, el("tr", {}, el("th", { colspan: 2 }, title))),
      el("tbody", {}, ...Object.entries(entries).sort().map(([k, v]) =>
        el("tr", {}, el("th", {}, k), el("td", {}, Array.isArray(v) ? v.join(" ") : v)))));
  }

  async function start() {
    if (!nodeId) { showError("No node given: open a node from the Cluster page."); return; }
    document.getElementById("title").textContent = `Node ${nodeId}`;
    FODC.whoami().catch(() => {});
    let cluster;
    try {
      cluster = await api(`/cluster?node_id=${encodeURIComponent(nodeId)}`);
    } catch (exc) {
      cluster = { nodes: [] };
      if (exc.status !== 404) { showError(`Cannot load the node: ${exc.message}`); return; }
    }
    const node = cluster.nodes[0];
    if (!node) {
      showError(`No node named "${nodeId}" is registered with this proxy. Pick one on the Cluster page.`);
      document.getElementById("node-form").hidden = true;
      return;
    }
    document.getElementById("node-head").replaceChildren(
      el("p", {}, `${node.role}, `, el("span", { class: `status-${node.status}` }, node.status),
        `, last heartbeat ${FODC.fmtAge(node.last_heartbeat)}, agent ${node.agent_version}, KTM ${node.capabilities.ktm_mode || "–"}`),
      ...configPanel(node));
    const [page, listed] = await Promise.all([
      fetch(`/metrics?node_id=${encodeURIComponent(nodeId)}`, { headers: FODC.token() ? { Authorization: `Bearer ${FODC.token()}` } : {} })
        .then((r) => (r.ok ? r.text() : "")).catch(() => ""),
      api(`/incidents?node_id=${encodeURIComponent(nodeId)}`).catch(() => ({ incidents: [] }))]);
    families = parseTypes(page);
    incidents = listed.incidents || [];
    document.getElementById("family-list").replaceChildren(...Object.keys(families).sort().map((n) => el("option", { value: n })));
    if (!chosen.size) for (const name of DEFAULTS) if (families[name]) chosen.add(name);
    const pick = document.getElementById("incident-pick");
    pick.replaceChildren(...incidents.map((i) => el("option", { value: i.id }, `${fmtTime(i.at_ms)} ${i.trigger}`)));
    const range = document.getElementById("range");
    const wanted = FODC.param("incident");
    if (wanted && incidents.some((i) => i.id === wanted)) { range.value = "incident"; pick.value = wanted; }
    else if (RANGES[FODC.param("range")]) range.value = FODC.param("range");
    const sync = () => {
      document.getElementById("custom-range").hidden = range.value !== "custom";
      pick.hidden = range.value !== "incident";
    };
    range.onchange = () => { sync(); if (range.value !== "custom") draw(); };
    pick.onchange = () => draw();
    sync();
    document.getElementById("family-add").onclick = () => {
      const input = document.getElementById("family-search");
      const name = input.value.trim();
      if (!families[name]) { showError(`No family named "${name}" on ${nodeId}: pick one from the list.`); return; }
      chosen.add(name);
      input.value = "";
      renderChosen();
      draw();
    };
    document.getElementById("node-form").onsubmit = draw;
    renderChosen();
    await draw();
  }

  start();
})();
