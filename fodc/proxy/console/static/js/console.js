/* FODC console, shared by every page: the API client (token per tab, proxy-down banner), who the token is,
   DOM and formatting helpers. Pages never build HTML from strings: every value goes through textContent. */
"use strict";

const FODC = (() => {
  const TOKEN_KEY = "fodc-console-token";
  const banner = document.getElementById("banner");
  const errorBox = document.getElementById("error");
  let asking = null;  // the pending token prompt, shared by every request that got a 401

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function askToken(reason) {
    if (asking) return asking;
    const dialog = document.getElementById("token-dialog");
    const input = document.getElementById("token-input");
    document.getElementById("token-reason").textContent = reason;
    input.value = "";
    asking = new Promise((resolve) => {
      document.getElementById("token-form").onsubmit = (event) => {
        event.preventDefault();
        const value = input.value.trim();
        if (!value) return;
        sessionStorage.setItem(TOKEN_KEY, value);
        dialog.close();
        asking = null;
        resolve(value);
      };
    });
    dialog.showModal();
    return asking;
  }

  class ApiError extends Error {
    constructor(status, body, path) {
      super((body && body.message) || `HTTP ${status} from ${path}`);
      this.status = status;
      this.body = body;
    }
  }

  /* GET/POST/DELETE a JSON endpoint. A 401 asks for a token (again, if the stored one was refused) and retries;
     an unreachable proxy shows the banner until a later request gets through. */
  async function api(path, options = {}) {
    for (;;) {
      const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
      if (token()) headers.Authorization = `Bearer ${token()}`;
      let body = options.body;
      if (body !== undefined && typeof body !== "string") {
        body = JSON.stringify(body);
        headers["Content-Type"] = "application/json";
      }
      let response;
      try {
        response = await fetch(path, { method: options.method || "GET", headers, body, cache: "no-store" });
      } catch (exc) {
        showBanner("The proxy is not reachable: showing what was loaded before. Retrying…");
        throw new ApiError(0, { message: "the proxy is not reachable" }, path);
      }
      hideBanner();
      const text = await response.text();
      let parsed = null;
      try { parsed = text ? JSON.parse(text) : null; } catch (exc) { parsed = { message: text.slice(0, 200) }; }
      if (response.status === 401 && !options.noPrompt) {
        const had = token();
        sessionStorage.removeItem(TOKEN_KEY);
        await askToken(had ? `The token was refused (${(parsed && parsed.message) || "401"}): enter another.`
                           : "This proxy needs a token to read (--auth all): enter a viewer or operator token.");
        continue;
      }
      if (!response.ok) throw new ApiError(response.status, parsed, path);
      return parsed;
    }
  }

  function showBanner(text) { banner.textContent = text; banner.hidden = false; }
  function hideBanner() { banner.hidden = true; }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  /* Who this tab's token is; enables the controls marked data-needs="operator" only for an operator. */
  let whoPromise = null;
  function whoami() {
    if (!whoPromise) {
      whoPromise = api("/whoami").then((who) => {
        const label = who.auth === "off" ? "auth off (lab)" : (who.role ? `${who.name} (${who.role})` : "no token: read only");
        document.getElementById("who").textContent = label;
        for (const control of document.querySelectorAll("[data-needs=operator]")) {
          control.disabled = who.role !== "operator";
          control.title = control.disabled ? "needs an operator token" : "";
        }
        return who;
      });
    }
    return whoPromise;
  }

  function operatorLink(container) {
    const link = el("a", { href: "#" }, "use an operator token");
    link.onclick = async (event) => {
      event.preventDefault();
      await askToken("Enter an operator token to run control actions from this tab.");
      location.reload();
    };
    container.append(link);
  }

  /* Downloads through fetch, so the tab's token goes with the request (a plain link cannot carry it). */
  async function download(path, name) {
    for (;;) {
      let response;
      try {
        response = await fetch(path, { headers: token() ? { Authorization: `Bearer ${token()}` } : {} });
      } catch (exc) {
        showBanner("The proxy is not reachable: the download did not start.");
        return;
      }
      hideBanner();
      if (response.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        await askToken("This download needs a token: enter a viewer or operator token.");
        continue;
      }
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        showError(`Cannot download ${name}: ${body.message || `HTTP ${response.status}`}`);
        return;
      }
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: name });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      return;
    }
  }

  function downloadLink(path, name, text) {
    return el("a", { href: path, download: name, class: "download",
                     onclick: (event) => { event.preventDefault(); download(path, name); } }, text);
  }

  /* el("td", {class: "num"}, "12", child, ...) */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node[name] = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function param(name) { return new URLSearchParams(location.search).get(name); }

  function fmtNumber(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (typeof value === "string") return value;
    const abs = Math.abs(value);
    if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return value.toExponential(2);
    return String(Math.round(value * 1000) / 1000);
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }

  function fmtAge(iso) {
    if (!iso) return "–";
    const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 90) return `${seconds}s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)}m ago`;
    if (seconds < 129600) return `${Math.round(seconds / 3600)}h ago`;
    return `${Math.round(seconds / 86400)}d ago`;
  }

  function fmtTime(ms) { return ms ? new Date(ms).toISOString().replace(".000Z", "Z") : "–"; }

  /* A signed change between two values: "+3.1×", "-72 %", "from 0". */
  function fmtChange(before, after) {
    if (before === after) return "0 %";
    if (before === 0) return "from 0";
    const ratio = after / before;
    if (ratio >= 2) return `+${ratio.toFixed(ratio >= 10 ? 0 : 1)}×`;
    const pct = Math.round((ratio - 1) * 100);
    return `${pct >= 0 ? "+" : ""}${pct} %`;
  }

  /* A unified diff as a <pre>, each line coloured by its first character. */
  function unifiedDiff(text) {
    const pre = el("pre", { class: "diff" });
    for (const line of String(text).split("\n")) {
      const cls = line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "";
      pre.append(el("span", { class: cls }, line), "\n");
    }
    return pre;
  }

  /* Axis numbers: 1.2k, 3.4M, 16G. */
  function fmtSI(value) {
    const abs = Math.abs(value);
    for (const [limit, suffix] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
      if (abs >= limit) return `${+(value / limit).toFixed(2)}${suffix}`;
    }
    return abs !== 0 && abs < 1e-3 ? value.toExponential(1) : String(+value.toFixed(3));
  }

  function markNav() {
    const page = document.body.dataset.page;
    const current = page === "node" ? "cluster" : page === "incident" ? "incidents" : page;
    for (const link of document.querySelectorAll("header nav a")) {
      if (link.dataset.nav === current) link.classList.add("current");
    }
  }
  markNav();

  function nodeLink(nodeId) { return el("a", { href: `/console/node?node_id=${encodeURIComponent(nodeId)}` }, nodeId); }

  return { api, ApiError, askToken, whoami, operatorLink, showError, showBanner, hideBanner, el, param,
           fmtNumber, fmtSI, fmtBytes, fmtAge, fmtTime, fmtChange, nodeLink, token, unifiedDiff, download,
           downloadLink };
})();
