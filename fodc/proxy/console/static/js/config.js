/* Configuration page: drift per role (each differing setting with every node's value side by side), what
   changed on each node between its last two snapshots (files as unified diffs where the API gives them),
   and a "capture now" for operators. */
"use strict";

(() => {
  const { api, el, showError, nodeLink } = FODC;
  const ROLES = ["liaison", "datanode-hot", "datanode-warm", "datanode-cold"];

  function value(v) {
    if (v === null || v === undefined) return el("span", { class: "hint" }, "(absent)");
    if (typeof v === "object" && v.diff) return FODC.unifiedDiff(v.diff);
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }

  function roleTable(role, info) {
    const nodes = info.nodes;
    const settings = Object.entries(info.differences || {});
    if (!settings.length) {
      return [el("h2", {}, `${role} (${nodes.length} nodes)`),
        el("p", { "data-role": role }, "No drift: every node of this role runs with the same settings."), ignoredNote(info)];
    }
    const diffs = info.file_diffs || {};  // path -> node -> unified diff against the first node that has it
    return [el("h2", {}, `${role} (${nodes.length} nodes): ${settings.length} settings differ`),
      el("table", { class: "grid", "data-role": role },
        el("thead", {}, el("tr", {}, el("th", {}, "setting"), ...nodes.map((n) => el("th", {}, nodeLink(n))))),
        el("tbody", {}, ...settings.map(([setting, byNode]) => el("tr", { "data-setting": setting },
          el("td", {}, setting), ...nodes.map((n) => el("td", {}, value(byNode[n]))))))),
      ...Object.entries(diffs).flatMap(([path, byNode]) => Object.entries(byNode).map(([node, text]) =>
        el("details", { open: true, "data-file": path, "data-node": node }, el("summary", {}, `${path} on ${node}`),
          FODC.unifiedDiff(text)))),
      ignoredNote(info)];
  }

  function ignoredNote(info) {
    const ignored = info.ignored || [];
    return ignored.length ? el("p", { class: "hint" }, `Differ by design, not counted as drift: ${ignored.join(", ")}`) : null;
  }

  function nodeChanges(nodes) {
    const parts = [];
    for (const [nodeId, info] of Object.entries(nodes)) {
      const changes = Object.entries(info.changes || {});
      if (!changes.length) continue;
      parts.push(el("h3", {}, nodeLink(nodeId), ` (${info.role}): ${info.from} → ${info.to}`),
        el("table", { class: "grid", "data-node": nodeId }, el("thead", {}, el("tr", {}, el("th", {}, "setting"),
          el("th", {}, "before"), el("th", {}, "after"))), el("tbody", {}, ...changes.map(([setting, c]) =>
          el("tr", {}, el("td", {}, setting), c.diff ? el("td", { colspan: 2 }, FODC.unifiedDiff(c.diff))
            : el("td", {}, value(c.before)), c.diff ? null : el("td", {}, value(c.after)))))));
    }
    if (!parts.length) parts.push(el("p", {}, "No node changed its configuration between its last two snapshots."));
    return parts;
  }

  async function load() {
    const role = document.getElementById("c-role").value;
    let body;
    try {
      body = await api(`/cluster/config/drift${role ? `?role=${encodeURIComponent(role)}` : ""}`);
    } catch (exc) {
      showError(`Cannot load the configuration drift: ${exc.message}`);
      return;
    }
    showError("");
    const sections = Object.entries(body.roles).flatMap(([r, info]) => roleTable(r, info)).filter(Boolean);
    if (!sections.length) sections.push(el("p", {}, "No node has a configuration snapshot yet."));
    document.getElementById("drift").replaceChildren(...sections);
    document.getElementById("changes").replaceChildren(...nodeChanges(body.nodes));
    document.getElementById("missing").textContent = body.missing.length
      ? `Not answering: ${body.missing.map((m) => `${m.node_id} (${m.reason})`).join(", ")}` : "";
    document.body.dataset.rendered = String(Date.now());
  }

  async function capture() {
    const role = document.getElementById("c-role").value;
    const state = document.getElementById("capture-state");
    state.textContent = "capturing…";
    try {
      const body = await api("/cluster/config/capture", { method: "POST",
        body: role ? { scope: "role", role } : { scope: "all" } });
      state.textContent = `captured ${body.captured.length} nodes${body.missing.length ? `, ${body.missing.length} did not answer` : ""}`;
      await load();
    } catch (exc) {
      state.textContent = `refused: ${exc.message}`;
    }
  }

  const select = document.getElementById("c-role");
  for (const role of ROLES) select.append(el("option", { value: role }, role));
  select.value = FODC.param("role") || "";
  select.onchange = load;
  document.getElementById("capture").onclick = capture;
  FODC.whoami().then((who) => {
    if (who.role !== "operator") FODC.operatorLink(document.getElementById("capture-state"));
  }).catch(() => {});
  load();
})();
