// Copy buttons of the dataset page (addresses for a GIS, API commands): the button's
// `data-copier` names the field or block to copy. The text is selected first, so that
// where the clipboard is refused (no permission, plain http) Ctrl+C still copies it.
(function () {
  "use strict";

  function select(target) {
    if (target.select) {
      target.focus();
      target.select();
      return target.value;
    }
    const range = document.createRange();
    range.selectNodeContents(target);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    return target.textContent;
  }

  function copied(button, message) {
    const status = button.parentElement.querySelector(".copie-etat");
    if (status) status.textContent = message;
  }

  document.querySelectorAll("button[data-copier]").forEach(function (button) {
    button.addEventListener("click", function () {
      const target = document.getElementById(button.dataset.copier);
      if (!target) return;
      const text = select(target);
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(
          function () { copied(button, "Copié."); },
          function () { copied(button, "Sélectionné : Ctrl+C pour copier."); }
        );
      } else {
        copied(button, "Sélectionné : Ctrl+C pour copier.");
      }
    });
  });
})();
