/* Window data as pictures: counters as per-second rates, histograms as quantiles from their buckets, uPlot
   time-series plots with event markers, and tiny SVG sparklines. Every drawn plot is listed in
   FODC.plots (title, what it was drawn from, the points drawn) so tests can compare it with the API. */
"use strict";

FODC.plots = [];

FODC.series = (() => {
  const NODE_LABELS = (name) => name === "node_id" || name === "node_role" || name.startsWith("node_");

  /* The series' own labels (not the node's), e.g. {kind="user"}; `drop` also leaves out e.g. "le". */
  function ownLabels(series, drop = []) {
    return Object.entries(series.labels || {}).filter(([k]) => !NODE_LABELS(k) && !drop.includes(k))
      .sort(([a], [b]) => (a < b ? -1 : 1));
  }

  function label(series, drop = []) {
    const own = ownLabels(series, drop).map(([k, v]) => `${k}="${v}"`).join(",");
    return own ? `{${own}}` : series.name;
  }

  function finite(points) {
    return points.filter(([, v]) => typeof v === "number" && Number.isFinite(v));
  }

  /* Per-second increase between consecutive points; a drop is a counter reset (the new value is the increase). */
  function rate(points) {
    const pts = finite(points);
    const out = [];
    for (let i = 1; i < pts.length; i += 1) {
      const [t0, v0] = pts[i - 1];
      const [t1, v1] = pts[i];
      if (t1 <= t0) continue;
      out.push([t1, (v1 >= v0 ? v1 - v0 : v1) / ((t1 - t0) / 1000)]);
    }
    return out;
  }

  function isCumulative(series) {
    return series.type === "counter" ||
      ((series.type === "histogram" || series.type === "summary") && /_(bucket|count|sum)$/.test(series.name));
  }

  /* Quantiles over time from one histogram's _bucket series (same node, same labels but le): between
     consecutive scrapes, the increase of each bucket, then the value below which q of the observations fell,
     interpolated linearly inside the bucket (as Prometheus' histogram_quantile). */
  function quantiles(buckets, qs) {
    const bounds = buckets.map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le),
                                         byTime: new Map(finite(s.points)) }))
      .filter((b) => !Number.isNaN(b.le)).sort((a, b) => a.le - b.le);
    if (!bounds.length || bounds[bounds.length - 1].le !== Infinity) return qs.map(() => []);
    const times = [...bounds[bounds.length - 1].byTime.keys()].sort((a, b) => a - b);
    const out = qs.map(() => []);
    for (let i = 1; i < times.length; i += 1) {
      const counts = bounds.map((b) => {
        const v0 = b.byTime.get(times[i - 1]);
        const v1 = b.byTime.get(times[i]);
        if (v0 === undefined || v1 === undefined) return null;
        return v1 >= v0 ? v1 - v0 : v1;
      });
      if (counts.includes(null)) continue;
      const total = counts[counts.length - 1];
      qs.forEach((q, qi) => {
        if (total <= 0) { out[qi].push([times[i], null]); return; }
        const rank = q * total;
        let j = counts.findIndex((c) => c >= rank);
        if (j < 0) j = counts.length - 1;
        if (bounds[j].le === Infinity) { out[qi].push([times[i], bounds[Math.max(0, j - 1)].le]); return; }
        const lower = j === 0 ? 0 : bounds[j - 1].le;
        const below = j === 0 ? 0 : counts[j - 1];
        const inBucket = counts[j] - below;
        const value = inBucket > 0 ? lower + (bounds[j].le - lower) * ((rank - below) / inBucket) : bounds[j].le;
        out[qi].push([times[i], value]);
      });
    }
    return out;
  }

  return { ownLabels, label, finite, rate, quantiles, isCumulative };
})();

FODC.draw = (() => {
  const PALETTE = ["#0b5cad", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a9f", "#c05746",
                   "#3d5a80", "#7a9e7e"];

  /* Draws markers (vertical lines with a label) at unix-ms times. */
  function markerPlugin(markers) {
    return {
      hooks: {
        draw: [(u) => {
          const { ctx } = u;
          ctx.save();
          for (const marker of markers) {
            const x = u.valToPos(marker.ms / 1000, "x", true);
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.strokeStyle = marker.color || "#b3261e";
            ctx.lineWidth = 2 * devicePixelRatio;
            ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            ctx.fillStyle = marker.color || "#b3261e";
            ctx.font = `${11 * devicePixelRatio}px sans-serif`;
            ctx.fillText(marker.label, x + 4 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
          }
          ctx.restore();
        }],
      },
    };
  }

  /* One plot: `lines` = [{label, points: [[ms, value], ...]}], all on one time axis. */
  function plot(container, { title, lines, markers = [], width = 600, height = 220, source = "", kind = "" }) {
    const box = FODC.el("div", { class: "plot" }, FODC.el("div", { class: "plot-title" }, title));
    container.append(box);
    const times = new Set();
    for (const line of lines) for (const [t] of line.points) times.add(t);
    const xs = [...times].sort((a, b) => a - b);
    const index = new Map(xs.map((t, i) => [t, i]));
    const data = [xs.map((t) => t / 1000)];
    for (const line of lines) {
      const ys = new Array(xs.length).fill(null);
      for (const [t, v] of line.points) ys[index.get(t)] = typeof v === "number" ? v : null;
      data.push(ys);
    }
    const opts = {
      width, height,
      legend: { show: lines.length <= 8 },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true } },
      series: [{}].concat(lines.map((line, i) => ({ label: line.label, stroke: PALETTE[i % PALETTE.length],
                                                     width: 1.5, spanGaps: false, points: { show: false } }))),
      axes: [{}, { size: 60, values: (u, vals) => vals.map((v) => FODC.fmtSI(v)) }],
      plugins: [markerPlugin(markers)],
    };
    const chart = new uPlot(opts, data, box);
    const record = { title, kind, source, markers, lines, chart, box };
    box.dataset.plot = String(FODC.plots.length);
    FODC.plots.push(record);
    return record;
  }

  function clear(container) {
    for (const record of FODC.plots) if (container.contains(record.box)) record.chart.destroy();
    FODC.plots = FODC.plots.filter((record) => !container.contains(record.box));
    container.replaceChildren();
  }

  /* A sparkline as an inline SVG polyline (cheap enough for hundreds on one page). */
  function sparkline(points, { width = 90, height = 22, title = "" } = {}) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("class", "spark");
    const pts = FODC.series.finite(points);
    if (title) {
      const t = document.createElementNS(NS, "title");
      t.textContent = title;
      svg.append(t);
    }
    if (pts.length < 2) return svg;
    const t0 = pts[0][0];
    const t1 = pts[pts.length - 1][0];
    let lo = Infinity;
    let hi = -Infinity;
    for (const [, v] of pts) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (hi === lo) { hi += 1; lo -= 1; }
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", pts.map(([t, v]) =>
      `${(((t - t0) / (t1 - t0 || 1)) * (width - 2) + 1).toFixed(1)},${(height - 1 - ((v - lo) / (hi - lo)) * (height - 2)).toFixed(1)}`).join(" "));
    svg.append(line);
    svg.dataset.points = String(pts.length);
    return svg;
  }

  /* The step (seconds) that gives about one point per pixel over `rangeMs`. */
  function stepFor(rangeMs, pixels) {
    return Math.max(1, Math.ceil(rangeMs / 1000 / Math.max(50, pixels)));
  }

  return { plot, clear, sparkline, stepFor };
})();
