// Communes' colours: `data-couleur="#1d5fa7"` sets the element's --couleur custom property.
// (No inline `style` attribute: the Content-Security-Policy allows no inline style.)
(function () {
  "use strict";
  document.querySelectorAll("[data-couleur]").forEach(function (element) {
    const colour = element.dataset.couleur;
    if (window.CSS && CSS.supports("color", colour)) {
      element.style.setProperty("--couleur", colour);
    }
  });
})();
