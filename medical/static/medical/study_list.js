// Study list: at phone width the filter panel starts folded, so the studies are the first thing on
// the screen; its summary says which filters are applied. It stays open when a filter was refused
// (the field's message is inside it) and on wide screens, where it costs no room.
"use strict";

(function () {
  const panel = document.getElementById("filter-panel");
  if (!panel || panel.dataset.keepOpen === "true") return;
  if (window.matchMedia("(max-width: 600px)").matches) panel.open = false;
})();
