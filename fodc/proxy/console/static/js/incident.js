/* Incident page: trigger and onset, the series that moved most plotted with the trigger marked, the config at
   the incident and its diff to the snapshot before, the node's log tail, its profiles, the bundle. */
"use strict";

(() => {
  const { api, el, showError, fmtTime, fmtNumber, fmtChange, nodeLink } = FODC;
  const S = FODC.series;
  const PLOTTED = 6;
  const nodeId = FODC.param("node_id");
  const incidentId = FODC.param("id");

  function head(incident, view) {
    const m = view.manifest;
    const onset = m.onset_ms || incident.onset_ms || (view.split && view.split.by === "onset" ? view.split.at_ms : null);
    const rows = [["node", nodeLink(incident.node_id)], ["role", incident.role], ["trigger", incident.trigger],
      ["at (trigger)", fmtTime(m.at_ms)], ["onset", onset ? fmtTime(onset) : "not recorded by this agent"],
      ["detail", JSON.stringify(m.detail || {})],
      ["bundle", incident.bundle_url ? FODC.downloadLink(incident.bundle_url,
        `fodc-incident-${incident.node_id}-${incident.id}.tar.gz`, "download .tar.gz") : "–"],
      ["window", el("a", { href: `/console/node?node_id=${encodeURIComponent(incident.node_id)}&incident=${encodeURIComponent(incident.id)}` },
        "open the node's window around this incident")]];
    if (view.crash) {
      const g = view.crash.goroutine || {};
      rows.push(["crash", el("div", {}, `${view.crash.kind || "unknown"}: ${view.crash.message || "(no crash header)"}`,
        ...(g.frames || []).slice(0, 8).map((f) => el("div", { class: "hint" }, `${f.function}  ${f.file || "?"}:${f.line || "?"}`)))]);
    }
    for (const [part, reason] of Object.entries(m.errors || {})) rows.push([`not collected: ${part}`, String(reason)]);
    return el("table", { class: "grid kv", id: "incident-facts" }, el("tbody", {},
      ...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))));
  }

  function direction(change) {
    if (change.direction) return change.direction;
    if (change.after > change.before) return "up";
    if (change.after < change.before) return "down";
    return "";
  }

  function ranking(view) {
    const body = document.querySelector("#ranking tbody");
    const rows = view.changes.map((c, i) => el("tr", { "data-series": c.series },
      el("td", {}, i + 1), el("td", {}, c.series), el("td", {}, c.kind),
      el("td", { class: "num" }, fmtNumber(c.before)), el("td", { class: "num" }, fmtNumber(c.after)),
      el("td", { class: `num ${direction(c)}` }, c.change || fmtChange(c.before, c.after), c.focus ? " (the rule's series)" : "")));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6 }, "No series changed between before and after the trigger.")));
    body.replaceChildren(...rows);
    document.getElementById("triage-summary").textContent =
      `${view.compared} series compared before/after the ${view.split ? view.split.by : "trigger"}; ${view.stopped.count} stopped at it, ` +
      `${view.started.count} appeared after it.` +
      (view.stopped.count && view.stopped.count >= view.compared ? " Most series stopped: the node stopped answering." : "");
  }

  function plots(view) {
    const container = document.getElementById("plots");
    const m = view.manifest;
    const markers = [{ ms: m.at_ms, label: `trigger: ${m.trigger}` }];
    const onset = m.onset_ms || (view.split && view.split.by === "onset" ? view.split.at_ms : null);
    if (onset && onset !== m.at_ms) markers.push({ ms: onset, label: "onset", color: "#9a6700" });
    view.changes.slice(0, PLOTTED).forEach((c, i) => {
      const cumulative = S.isCumulative({ type: c.type, name: c.name || "" });
      const points = cumulative ? S.rate(c.points) : S.finite(c.points);
      FODC.draw.plot(container, { title: `#${i + 1} ${c.series}${cumulative ? " (rate /s)" : ""}`,
        lines: [{ label: c.name || c.series, points }], markers, width: 560, height: 180,
        kind: cumulative ? "rate" : "gauge", source: c.series });
    });
  }

  function config(view) {
    const box = document.getElementById("config");
    const parts = [];
    if (!view.config) {
      parts.push(el("p", {}, "The bundle holds no configuration snapshot."));
    } else {
      parts.push(el("p", { class: "hint" }, `captured ${view.config.captured_at} (${view.config.reason}), ${view.config.hash}`));
      if (view.config_changes) {
        parts.push(el("h3", {}, `Changed since the snapshot of ${view.config_previous.captured_at}`));
        parts.push(changesTable(view.config_changes));
      } else {
        parts.push(el("p", {}, view.config_history === "available"
          ? "No earlier snapshot with a different content: nothing changed before the incident."
          : `No diff to the previous snapshot: ${view.config_history}.`));
      }
      const flags = Object.entries(view.config.flags || {});
      parts.push(el("details", {}, el("summary", {}, `flags (${flags.length})`),
        el("table", { class: "grid kv" }, el("tbody", {}, ...flags.sort().map(([k, v]) =>
          el("tr", {}, el("th", {}, k), el("td", {}, Array.isArray(v) ? v.join(" ") : v)))))));
    }
    box.replaceChildren(...parts);
  }

  function changesTable(changes) {
    return el("table", { class: "grid", id: "config-changes" }, el("thead", {}, el("tr", {}, el("th", {}, "setting"),
      el("th", {}, "before"), el("th", {}, "after"))), el("tbody", {}, ...Object.entries(changes).map(([k, v]) =>
      el("tr", {}, el("td", {}, k), ...(v.diff ? [el("td", { colspan: 2 }, FODC.unifiedDiff(v.diff))]
        : [el("td", {}, side(v.before)), el("td", {}, side(v.after))])))));
  }

  function side(value) {
    return value === null || value === undefined ? "(absent)" : String(value);
  }

  function profiles(view, incident) {
    const list = document.getElementById("profiles");
    const items = view.profiles.map((name) => el("li", {},
      el("a", { href: `/console/profiles?incident=${encodeURIComponent(incident.id)}&node_id=${encodeURIComponent(incident.node_id)}&file=${encodeURIComponent(name)}` }, name),
      ` (${FODC.fmtBytes((view.files[name] || {}).size)})`));
    if (!items.length) items.push(el("li", {}, "No profile in this bundle (the node's pprof was not reachable, or the agent has none configured)."));
    list.replaceChildren(...items);
  }

  async function start() {
    if (!nodeId || !incidentId) { showError("No incident given: open one from the Incidents page."); return; }
    document.getElementById("title").textContent = `Incident ${incidentId}`;
    FODC.whoami().catch(() => {});
    let view;
    try {
      view = await api(`/incidents/${encodeURIComponent(nodeId)}/${encodeURIComponent(incidentId)}/view?top=15`);
    } catch (exc) {
      if (exc.status === 404) showError(`No incident "${incidentId}" on node "${nodeId}": ${exc.message}`);
      else if (exc.status === 409) showError(`${exc.message}. Reload in a moment.`);
      else showError(`Cannot load the incident: ${exc.message}`);
      return;
    }
    const incident = view.incident;
    document.getElementById("incident-head").replaceChildren(head(incident, view));
    ranking(view);
    plots(view);
    config(view);
    document.getElementById("log-tail").textContent = view.log_tail.join("\n") || "(no log lines in the bundle)";
    profiles(view, incident);
    document.body.dataset.rendered = String(Date.now());
  }

  start();
})();
