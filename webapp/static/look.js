/* The console's responsive behaviour, loaded in <head> without defer (CSP: no inline script).
   - html.js: set at once, so the small-screen menu starts collapsed without a flash; without
     script the navigation simply stays open.
   - The menu button (#nav-toggle) opens and closes the navigation (aria-expanded); Escape closes.
   - Tables (table.list) become cards on small screens: each cell gets data-label from its column
     heading (mailroom.css shows it before the value), also for rows a script adds later. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // mailroomIcon(name, label): the SVG that templates/_icons.html icon() draws, for scripts.
  const sprite = document.currentScript.src.replace(/look\.js(\?.*)?$/, "vendor/lucide/icons.svg");
  window.mailroomIcon = function (name, label) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "icon icon-" + name);
    svg.setAttribute("focusable", "false");
    if (label) {
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", label);
    } else svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS(ns, "use");
    use.setAttribute("href", sprite + "#" + name);
    svg.appendChild(use);
    return svg;
  };

  function headings(table) {
    const row = table.tHead && table.tHead.rows[0];
    if (!row) return null;
    const out = [];
    for (const th of row.cells) {
      const text = th.textContent.trim();
      for (let i = 0; i < (th.colSpan || 1); i++) out.push(text);
    }
    return out;
  }

  function label(table) {
    const names = headings(table);
    if (!names) return;
    for (const body of table.tBodies) {
      for (const tr of body.rows) {
        let column = 0;
        for (const td of tr.cells) {
          if (!td.hasAttribute("data-label") && td.colSpan === 1 && names[column]) {
            td.setAttribute("data-label", names[column]);
          }
          column += td.colSpan || 1;
        }
      }
    }
  }

  function labelAll(root) {
    const tables = root.matches && root.matches("table.list") ? [root] : [];
    const closest = root.closest && root.closest("table.list");
    if (closest) tables.push(closest);
    if (root.querySelectorAll) tables.push(...root.querySelectorAll("table.list"));
    tables.forEach(label);
  }

  function setUpMenu() {
    const toggle = document.getElementById("nav-toggle");
    const nav = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
    if (!nav) return;
    const set = (open) => {
      toggle.setAttribute("aria-expanded", String(open));
      nav.classList.toggle("open", open);
    };
    toggle.addEventListener("click", () => set(toggle.getAttribute("aria-expanded") !== "true"));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
        set(false);
        toggle.focus();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUpMenu();
    labelAll(document);
    new MutationObserver((changes) => {
      for (const change of changes) {
        for (const node of change.addedNodes) if (node.nodeType === 1) labelAll(node);
      }
    }).observe(document.body, { childList: true, subtree: true });
  });
})();
