/* A flamegraph drawn from a profile summary's flame tree ({name, value, children}), root at the top; a click
   on a frame zooms to it, a click on the root zooms out. Frames are absolutely placed divs with textContent
   (function names are never parsed as HTML). */
"use strict";

FODC.flame = (() => {
  const ROW = 18;
  const MIN_PX = 1;

  function colour(name) {
    let h = 0;
    for (let i = 0; i < name.length; i += 1) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return `rgb(${205 + (h % 50)},${80 + ((h >> 8) % 130)},${40 + ((h >> 16) % 50)})`;
  }

  function depthOf(node) {
    let depth = 0;
    const stack = [[node, 1]];
    while (stack.length) {
      const [n, d] = stack.pop();
      depth = Math.max(depth, d);
      for (const c of n.children || []) stack.push([c, d + 1]);
    }
    return depth;
  }

  /* Draws `tree` into `container`; `describe(value)` formats a frame's cost for its tooltip. */
  function draw(container, tree, describe, focus = null) {
    const root = focus || tree;
    const width = container.clientWidth || 1200;
    const total = root.value || 1;
    container.replaceChildren();
    container.style.height = `${depthOf(root) * ROW + 4}px`;
    const stack = [[root, 0, 0]];
    let drawn = 0;
    while (stack.length) {
      const [node, depth, x] = stack.pop();
      const w = (Math.abs(node.value) / Math.abs(total)) * width;
      if (w < MIN_PX) continue;
      const frame = document.createElement("div");
      frame.className = "frame";
      frame.style.left = `${x}px`;
      frame.style.top = `${depth * ROW}px`;
      frame.style.width = `${w}px`;
      frame.style.background = node === root && focus ? "#ccc" : colour(node.name);
      frame.textContent = node.name;
      frame.title = `${node.name}\n${describe(node.value)} (${((node.value / (tree.value || 1)) * 100).toFixed(2)} % of all)`;
      frame.dataset.name = node.name;
      frame.onclick = () => draw(container, tree, describe, node === root ? null : node);
      container.append(frame);
      drawn += 1;
      let offset = x;
      for (const child of node.children || []) {
        stack.push([child, depth + 1, offset]);
        offset += (Math.abs(child.value) / Math.abs(total)) * width;
      }
    }
    container.dataset.frames = String(drawn);
  }

  return { draw, colour };
})();
