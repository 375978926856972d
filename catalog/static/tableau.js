// Dataset page, « Données » tab: the rows API page by page (keyset cursors: « _apres »),
// with the total, the sort state on the headers (aria-sort), a filter, French values.
(function () {
  "use strict";
  const table = document.getElementById("table-donnees");
  if (!table) return;
  const PAGE = 50;
  const count = new Intl.NumberFormat("fr-FR");
  const body = table.querySelector("tbody");
  const status = document.getElementById("etat-donnees");
  const previous = document.getElementById("page-precedente");
  const next = document.getElementById("page-suivante");
  const buttons = Array.from(table.querySelectorAll("thead th button"));
  const types = {};
  buttons.forEach(function (button) { types[button.dataset.colonne] = button.dataset.type; });
  // cursors[i]: the « _apres » of page i (null for the first); following: the next page's
  const state = { sort: null, filter: null, cursors: [null], following: null, busy: false };

  function query() {
    const params = new URLSearchParams({ _taille: String(PAGE), _total: "1" });
    if (state.sort) params.set("_tri", state.sort);
    if (state.filter && state.filter.text) {
      params.set(state.filter.column + "__contains", state.filter.text);
    }
    const cursor = state.cursors[state.cursors.length - 1];
    if (cursor) params.set("_apres", cursor);
    return params;
  }

  function load() {
    state.busy = true;
    status.textContent = "Chargement…";
    fetch(table.dataset.lignes + "?" + query().toString())
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(show)
      .catch(function () {
        status.textContent = "Les lignes n'ont pas pu être chargées.";
      })
      .then(function () { state.busy = false; });
  }

  function show(page) {
    body.replaceChildren();
    page.lignes.forEach(function (row) {
      const line = document.createElement("tr");
      page.colonnes.forEach(function (column) {
        const cell = document.createElement("td");
        cell.textContent = window.Valeurs.format(row[column], types[column]);
        if (types[column] === "number" || types[column] === "integer") cell.className = "nombre";
        line.appendChild(cell);
      });
      body.appendChild(line);
    });
    state.following = page.suivant ? new URL(page.suivant).searchParams.get("_apres") : null;
    status.textContent = summary(page.lignes.length, page.total);
    const focused = document.activeElement;
    previous.disabled = state.cursors.length < 2;
    next.disabled = !state.following;
    if ((focused === next || focused === previous) && focused.disabled) {
      (next.disabled ? previous : next).focus();  // the key the reader pressed is gone
    }
  }

  function summary(shown, total) {
    const lines = total > 1 ? " lignes" : " ligne";
    if (shown === 0) return total === 0 ? "Aucune ligne." : "Aucune ligne sur cette page.";
    const first = (state.cursors.length - 1) * PAGE + 1;
    return count.format(first) + " à " + count.format(first + shown - 1) + " sur " +
      count.format(total) + lines + ".";
  }

  function restart() {
    state.cursors = [null];
    load();
  }

  function showSort() {
    const column = state.sort ? state.sort.replace(/^-/, "") : null;
    buttons.forEach(function (button) {
      const header = button.closest("th");
      const mark = button.querySelector(".sens-tri");
      if (button.dataset.colonne === column) {
        const descending = state.sort.charAt(0) === "-";
        header.setAttribute("aria-sort", descending ? "descending" : "ascending");
        mark.textContent = descending ? " ▼" : " ▲";
      } else {
        header.removeAttribute("aria-sort");
        mark.textContent = "";
      }
    });
  }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      const column = button.dataset.colonne;
      state.sort = state.sort === column ? "-" + column : column;
      showSort();
      restart();
    });
  });
  next.addEventListener("click", function () {
    if (state.busy || !state.following) return;
    state.cursors.push(state.following);
    load();
  });
  previous.addEventListener("click", function () {
    if (state.busy || state.cursors.length < 2) return;
    state.cursors.pop();
    load();
  });
  document.getElementById("filtre-donnees").addEventListener("submit", function (event) {
    event.preventDefault();
    state.filter = { column: document.getElementById("filtre-colonne").value,
                     text: document.getElementById("filtre-texte").value };
    restart();
  });
  // the tab may have been opened while this script was still downloading
  const panel = document.getElementById("panneau-donnees");
  if (panel.hidden) panel.addEventListener("panneau-ouvert", load, { once: true });
  else load();
})();
