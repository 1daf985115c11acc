/* Incidents page: every incident the proxy knows (agents' and its own copies), with filters. */
"use strict";

(() => {
  const { api, el, showError, fmtTime, nodeLink } = FODC;
  const ROLES = ["liaison", "datanode-hot", "datanode-warm", "datanode-cold"];

  function incidentLink(i) {
    return el("a", { href: `/console/incident?node_id=${encodeURIComponent(i.node_id)}&id=${encodeURIComponent(i.id)}` },
      i.trigger);
  }

  async function load(event) {
    if (event) event.preventDefault();
    const query = new URLSearchParams();
    const node = document.getElementById("f-node").value.trim();
    const role = document.getElementById("f-role").value;
    const trigger = document.getElementById("f-trigger").value.trim();
    const since = document.getElementById("f-since").value;
    if (node) query.set("node_id", node);
    if (role) query.set("role", role);
    if (trigger) query.set("trigger", trigger);
    if (since) query.set("since", String(Math.floor(Date.now() / 1000) - Number(since)));
    history.replaceState(null, "", `${location.pathname}?${query}`);
    let body;
    try {
      body = await api(`/incidents?${query}`);
    } catch (exc) {
      showError(`Cannot list incidents: ${exc.message}`);
      return;
    }
    showError("");
    const rows = body.incidents.map((i) => el("tr", { "data-incident": i.id },
      el("td", {}, fmtTime(i.at_ms)), el("td", {}, nodeLink(i.node_id)), el("td", {}, i.role),
      el("td", {}, incidentLink(i)), el("td", {}, i.state + (i.source === "proxy" ? " (proxy copy)" : "")),
      el("td", { class: "hint" }, JSON.stringify(i.detail || {}).slice(0, 160)),
      el("td", {}, i.bundle_url ? FODC.downloadLink(i.bundle_url, `fodc-incident-${i.node_id}-${i.id}.tar.gz`, "download")
        : "–")));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7 }, "No incident matches.")));
    document.querySelector("#incidents tbody").replaceChildren(...rows);
    document.getElementById("missing").textContent = body.missing.length
      ? `Not answering: ${body.missing.map((m) => `${m.node_id} (${m.reason})`).join(", ")}` : "";
    document.body.dataset.rendered = String(Date.now());
  }

  const roleSelect = document.getElementById("f-role");
  for (const role of ROLES) roleSelect.append(el("option", { value: role }, role));
  const params = new URLSearchParams(location.search);
  document.getElementById("f-node").value = params.get("node_id") || "";
  roleSelect.value = params.get("role") || "";
  document.getElementById("f-trigger").value = params.get("trigger") || "";
  document.getElementById("filters").onsubmit = load;
  FODC.whoami().catch(() => {});
  load();
})();
