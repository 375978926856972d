// Dataset page: accessible tabs (arrows, Home, End). A panel shown for the first time gets a
// « panneau-ouvert » event: the table (tableau.js) and the map (carte.js) load then.
(function () {
  "use strict";
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  const loaded = {};

  function select(tab) {
    tabs.forEach(function (other) {
      const chosen = other === tab;
      other.setAttribute("aria-selected", String(chosen));
      other.tabIndex = chosen ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !chosen;
    });
    tab.focus();
    const panel = tab.getAttribute("aria-controls");
    if (!loaded[panel]) {
      loaded[panel] = true;
      document.getElementById(panel).dispatchEvent(new CustomEvent("panneau-ouvert"));
    }
  }

  tabs.forEach(function (tab, index) {
    tab.addEventListener("click", function () { select(tab); });
    tab.addEventListener("keydown", function (event) {
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
      if (event.key in moves) {
        event.preventDefault();
        select(tabs[(moves[event.key] + tabs.length) % tabs.length]);
      }
    });
  });
})();
