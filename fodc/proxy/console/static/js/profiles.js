/* Profiles page: start a CPU/heap/goroutine profile of a node or a role (operators), follow its progress, view
   any result (or an incident's profile) as a flamegraph and a top table, and compare two results. */
"use strict";

(() => {
  const { api, el, showError, fmtBytes } = FODC;
  let current = null;  // {label, summary} on view

  function describe(unit) {
    return (value) => {
      if (unit === "nanoseconds") return value >= 1e9 ? `${(value / 1e9).toFixed(2)} s` : `${(value / 1e6).toFixed(1)} ms`;
      if (unit === "bytes") return fmtBytes(value);
      return `${value} ${unit || ""}`.trim();
    };
  }

  function summaryUrl(source) {
    if (source.summary_url) return `${source.summary_url}?top=40`;
    if (source.incident) {
      return `/incidents/${encodeURIComponent(source.node_id)}/${encodeURIComponent(source.incident)}/profiles/` +
        `${encodeURIComponent(source.file)}/summary?top=40`;
    }
    return `/diagnostics/${encodeURIComponent(source.job)}/${encodeURIComponent(source.node_id)}/summary?top=40`;
  }

  async function view(source, label) {
    const section = document.getElementById("viewer");
    section.hidden = false;
    document.getElementById("viewer-title").textContent = label;
    let summary;
    try {
      summary = await api(summaryUrl(source));
    } catch (exc) {
      document.getElementById("flame").replaceChildren(el("p", { class: "error" }, `Cannot read this profile: ${exc.message}`));
      document.querySelector("#top tbody").replaceChildren();
      return;
    }
    current = { label, summary };
    const fmt = describe(summary.unit);
    document.getElementById("viewer-title").textContent =
      `${label}: ${summary.sample_type} (${fmt(summary.total)} in ${summary.samples} samples)`;
    FODC.flame.draw(document.getElementById("flame"), summary.flame, fmt);
    const total = summary.total || 1;
    document.querySelector("#top thead tr").replaceChildren(...["function", "flat", "flat %", "cum", "cum %"].map((h) => el("th", {}, h)));
    document.querySelector("#top tbody").replaceChildren(...summary.top.map((row) => el("tr", { "data-function": row.function },
      el("td", {}, row.function), el("td", { class: "num" }, fmt(row.flat)),
      el("td", { class: "num" }, `${((row.flat / total) * 100).toFixed(2)} %`), el("td", { class: "num" }, fmt(row.cum)),
      el("td", { class: "num" }, `${((row.cum / total) * 100).toFixed(2)} %`))));
    document.body.dataset.viewed = label;
  }

  /* Each function's share of its profile (flat) in the viewed profile and another, biggest change first. */
  async function compare(source, label) {
    if (!current) return;
    let other;
    try {
      other = await api(summaryUrl(source));
    } catch (exc) { showError(`Cannot read ${label}: ${exc.message}`); return; }
    const share = (s) => new Map(s.top.map((r) => [r.function, r.flat / (s.total || 1)]));
    const base = share(current.summary);
    const next = share(other);
    const names = new Set([...base.keys(), ...next.keys()]);
    const rows = [...names].map((f) => [f, base.get(f) || 0, next.get(f) || 0])
      .sort((a, b) => Math.abs(b[2] - b[1]) - Math.abs(a[2] - a[1]));
    document.querySelector("#top thead tr").replaceChildren(...["function", `share in ${current.label}`, `share in ${label}`,
      "change"].map((h) => el("th", {}, h)));
    document.querySelector("#top tbody").replaceChildren(...rows.map(([f, a, b]) => el("tr", { "data-function": f },
      el("td", {}, f), el("td", { class: "num" }, `${(a * 100).toFixed(2)} %`), el("td", { class: "num" }, `${(b * 100).toFixed(2)} %`),
      el("td", { class: `num ${b > a ? "up" : "down"}` }, `${b >= a ? "+" : ""}${((b - a) * 100).toFixed(2)} pts`))));
  }

  function results(job) {
    return (job.tasks || []).filter((t) => t.state === "done").map((t) => ({
      source: { job: job.job_id, node_id: t.node_id }, label: `${job.action} ${t.node_id} ${job.created}` }));
  }

  /* The agents' rings: periodic CPU and heap profiles, newest first. */
  async function loadRing() {
    let body;
    try {
      body = await api("/profiles");
    } catch (exc) {
      document.getElementById("ring-missing").textContent = `Cannot list the rings: ${exc.message}`;
      return [];
    }
    const found = body.profiles.map((p) => ({ source: { summary_url: p.summary_url, node_id: p.node_id },
      label: `${p.kind} ${p.node_id} ${p.taken}`, entry: p }));
    const rows = found.slice(0, 50).map((r) => el("tr", { "data-ring": r.entry.name }, el("td", {}, r.entry.node_id),
      el("td", {}, r.entry.kind + (r.entry.seconds ? ` ${r.entry.seconds}s` : "")), el("td", {}, r.entry.taken),
      el("td", { class: "num" }, fmtBytes(r.entry.size)),
      el("td", {}, el("button", { type: "button", class: "view-ring", onclick: () => view(r.source, r.label) }, "view"),
        " ", FODC.downloadLink(r.entry.url, `${r.entry.node_id}-${r.entry.name}`, "download"))));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5 }, "No periodic profile yet (--profile-every on the agents).")));
    document.querySelector("#ring tbody").replaceChildren(...rows);
    document.getElementById("ring-missing").textContent = body.missing.length
      ? `No ring from: ${body.missing.map((m) => `${m.node_id} (${m.reason})`).join(", ")}` : "";
    return found;
  }

  async function loadJobs() {
    let body;
    const ring = loadRing();
    try {
      body = await api("/diagnostics?limit=20&automatic=false");
    } catch (exc) { showError(`Cannot list jobs: ${exc.message}`); return; }
    const detailed = await Promise.all(body.jobs.filter((j) => j.action !== "config")
      .map((j) => api(`/diagnostics/${encodeURIComponent(j.job_id)}`).catch(() => ({ ...j, tasks: [] }))));
    const all = [];
    const rows = detailed.map((job) => {
      const done = results(job);
      all.push(...done);
      return el("tr", { "data-job": job.job_id }, el("td", {}, job.job_id), el("td", {}, job.action),
        el("td", {}, job.created), el("td", {}, Object.entries(job.nodes).map(([s, n]) => `${n} ${s}`).join(", ")),
        el("td", {}, ...done.map((r) => el("button", { type: "button", class: "view", onclick: () => view(r.source, r.label) },
          `view ${r.source.node_id}`)), done.length ? " " : null,
          done.length ? FODC.downloadLink(`/diagnostics/${encodeURIComponent(job.job_id)}/bundle`,
            `fodc-${job.job_id}-${job.action}.tar.gz`, "bundle") : null));
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5 }, "No profile has been taken through this proxy yet.")));
    document.querySelector("#jobs tbody").replaceChildren(...rows);
    all.push(...(await ring));
    const compareWith = document.getElementById("compare-with");
    compareWith.replaceChildren(el("option", { value: "" }, "—"), ...all.map((r, i) => el("option", { value: String(i) }, r.label)));
    compareWith.onchange = () => { const r = all[Number(compareWith.value)]; if (r) compare(r.source, r.label); };
    document.body.dataset.rendered = String(Date.now());
  }

  async function follow(job) {
    const box = document.getElementById("progress");
    const seconds = Number(job.params.seconds || 0);
    const started = Date.now();
    for (;;) {
      let state;
      try { state = await api(`/diagnostics/${encodeURIComponent(job.job_id)}`); } catch (exc) { box.textContent = exc.message; return; }
      const elapsed = Math.round((Date.now() - started) / 1000);
      box.replaceChildren(el("p", {}, `job ${state.job_id} (${state.action}): ${state.state}` +
        (seconds && state.state === "running" ? `, ${Math.min(elapsed, seconds)} of ${seconds} s` : "")),
        el("ul", {}, ...state.tasks.map((t) => el("li", { "data-task": t.node_id }, `${t.node_id}: ${t.state}` +
          (t.reason ? ` (${t.reason})` : "") + (t.size ? `, ${fmtBytes(t.size)}` : "")))));
      if (state.state !== "running") break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    await loadJobs();
  }

  async function start(event) {
    event.preventDefault();
    const action = document.getElementById("p-action").value;
    const [kind, name] = document.getElementById("p-target").value.split(":");
    const body = { action, target: kind === "role" ? { role: name } : { node_ids: [name] } };
    if (action === "cpu") body.params = { seconds: Number(document.getElementById("p-seconds").value) };
    try {
      const job = await api("/diagnostics", { method: "POST", body });
      follow(job);
    } catch (exc) {
      document.getElementById("progress").textContent = `Refused (${exc.status}): ${exc.message}`;
    }
  }

  async function targets() {
    const cluster = await api("/cluster?status=online").catch(() => ({ nodes: [] }));
    const roles = [...new Set(cluster.nodes.map((n) => n.role))].sort();
    const select = document.getElementById("p-target");
    select.replaceChildren(...roles.map((r) => el("option", { value: `role:${r}` }, `role ${r}`)),
      ...cluster.nodes.map((n) => el("option", { value: `node:${n.node_id}` }, `node ${n.node_id}`)));
    const wanted = FODC.param("node_id");
    if (wanted) select.value = `node:${wanted}`;
  }

  document.getElementById("start-form").onsubmit = start;
  FODC.whoami().then((who) => {
    if (who.role !== "operator") {
      const why = document.getElementById("p-why");
      why.textContent = "Starting a profile needs an operator token: ";
      FODC.operatorLink(why);
    }
  }).catch(() => {});
  targets();
  loadJobs();
  if (FODC.param("incident") && FODC.param("file")) {
    view({ incident: FODC.param("incident"), node_id: FODC.param("node_id"), file: FODC.param("file") },
      `${FODC.param("file")} of incident ${FODC.param("incident")}`);
  }
})();
