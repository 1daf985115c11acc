"""Flame graphs as one self-contained file: an SVG (hover for each frame's cost), or an HTML page around it
whose frames zoom on click. No script, font or style is fetched from anywhere; every name is escaped.
"""

from __future__ import annotations

import hashlib
from html import escape
from typing import Any

from fodc.pprof.units import humanise, percent

MAX_NODES = 20_000
MIN_FRACTION = 0.0001  # frames narrower than this share are left out of a drawing
WIDTH = 1200
ROW = 17
CHAR_PX = 7.0  # the width of one character at the 12px monospace font used for labels


def _colour(name: str) -> str:
    """A warm colour stable per function name, so the same function looks the same in two graphs."""
    h = hashlib.blake2s(name.encode(), digest_size=2).digest()
    return f"rgb({205 + h[0] % 50},{80 + h[1] % 130},{40 + (h[0] ^ h[1]) % 50})"


def _frames(tree: dict[str, Any]) -> tuple[list[tuple[int, float, float, dict[str, Any]]], int]:
    """(depth, x, width as fractions of the root, node) for every node; and the tree's depth."""
    out = []
    depth_max = 0
    total = tree["value"] or 1
    stack = [(tree, 0, 0.0)]
    while stack:
        node, depth, x = stack.pop()
        out.append((depth, x, node["value"] / total, node))
        depth_max = max(depth_max, depth)
        offset = x
        for child in node["children"]:
            stack.append((child, depth + 1, offset))
            offset += child["value"] / total
    return out, depth_max


def _label(name: str, width_px: float) -> str:
    fits = int(width_px / CHAR_PX) - 1
    if fits < 3:
        return ""
    return name if len(name) <= fits else name[:fits - 2] + ".."


def svg(tree: dict[str, Any], unit: str, title: str, *, interactive: bool = False) -> str:
    """The flame graph as SVG text, root at the bottom."""
    frames, depth_max = _frames(tree)
    height = (depth_max + 1) * ROW + 40
    total = tree["value"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="12" id="flame">',
             f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for depth, x, w, node in frames:
        px, pw = x * WIDTH, w * WIDTH
        if pw < 0.1:
            continue
        y = height - (depth + 1) * ROW
        name = node["name"]
        tip = f"{name}: {humanise(node['value'], unit)} ({percent(node['value'], total)})"
        data = f' data-x="{x:.9f}" data-w="{w:.9f}" data-name="{escape(name)}"' if interactive else ""
        parts.append(f'<g class="f"{data}><title>{escape(tip)}</title>'
                     f'<rect x="{px:.2f}" y="{y}" width="{pw:.2f}" height="{ROW - 1}" fill="{_colour(name)}" '
                     f'rx="2"/><text x="{px + 3:.2f}" y="{y + ROW - 5}">{escape(_label(name, pw))}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)


_SCRIPT = """
(function () {
  var W = %(width)d, C = %(char)s;
  var frames = Array.prototype.slice.call(document.querySelectorAll('g.f'));
  function fit(name, px) { var n = Math.floor(px / C) - 1; if (n < 3) return '';
    return name.length <= n ? name : name.slice(0, n - 2) + '..'; }
  function zoom(x0, w0) {
    frames.forEach(function (g) {
      var x = parseFloat(g.dataset.x), w = parseFloat(g.dataset.w);
      var inside = x >= x0 - 1e-9 && x + w <= x0 + w0 + 1e-9;
      var above = x <= x0 + 1e-9 && x + w >= x0 + w0 - 1e-9;  // the zoomed frame's callers: full width
      g.style.display = inside || above ? '' : 'none';
      var px = inside ? (x - x0) / w0 * W : 0, pw = inside ? w / w0 * W : W;
      var r = g.querySelector('rect'), t = g.querySelector('text');
      r.setAttribute('x', px.toFixed(2)); r.setAttribute('width', pw.toFixed(2));
      t.setAttribute('x', (px + 3).toFixed(2)); t.textContent = fit(g.dataset.name, pw);
    });
  }
  frames.forEach(function (g) { g.addEventListener('click', function () {
    zoom(parseFloat(g.dataset.x), parseFloat(g.dataset.w)); }); });
})();
"""


def html(tree: dict[str, Any], unit: str, title: str) -> str:
    """A whole page: the SVG inline and a few lines of script to zoom into a frame on click."""
    script = _SCRIPT % {"width": WIDTH, "char": CHAR_PX}
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title>"
            "<style>body{margin:8px;font-family:sans-serif}g.f{cursor:pointer}g.f:hover rect{stroke:#000}"
            "</style></head><body>\n"
            f"<p>Total {escape(humanise(tree['value'], unit))}. Hover a frame for its cost; click to zoom "
            "(click the root to zoom out).</p>\n"
            f"{svg(tree, unit, title, interactive=True)}\n<script>{script}</script>\n</body></html>\n")
