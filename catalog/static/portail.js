// Dataset page: accessible tabs (arrows, Home, End), table view over the rows API, map.
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
      if (panel === "panneau-donnees") loadRows({});
      if (panel === "panneau-carte") loadMap();
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

  const table = document.getElementById("table-donnees");
  const state = { sort: null, filter: null };

  function loadRows() {
    if (!table) return;
    const params = new URLSearchParams({ _taille: "50" });
    if (state.sort) params.set("_tri", state.sort);
    if (state.filter && state.filter.text) params.set(state.filter.column + "__contains", state.filter.text);
    const status = document.getElementById("etat-donnees");
    status.textContent = "Chargement…";
    fetch(table.dataset.lignes + "?" + params.toString())
      .then(function (response) { return response.json(); })
      .then(function (page) {
        const body = table.querySelector("tbody");
        body.replaceChildren();
        page.lignes.forEach(function (row) {
          const line = document.createElement("tr");
          page.colonnes.forEach(function (column) {
            const cell = document.createElement("td");
            cell.textContent = row[column] === null ? "" : String(row[column]);
            line.appendChild(cell);
          });
          body.appendChild(line);
        });
        status.textContent = page.lignes.length + " ligne(s) affichée(s)" + (page.suivant ? " (les suivantes par l'API)" : "") + ".";
      })
      .catch(function () { status.textContent = "Les lignes n'ont pas pu être chargées."; });
  }

  if (table) {
    table.querySelectorAll("th button").forEach(function (button) {
      button.addEventListener("click", function () {
        const column = button.dataset.colonne;
        state.sort = state.sort === column ? "-" + column : column;
        loadRows();
      });
    });
    document.getElementById("filtre-donnees").addEventListener("submit", function (event) {
      event.preventDefault();
      state.filter = { column: document.getElementById("filtre-colonne").value,
                       text: document.getElementById("filtre-texte").value };
      loadRows();
    });
  }

  function loadMap() {
    const element = document.getElementById("carte");
    if (!element || !window.L) return;
    const map = L.map(element, { attributionControl: true });
    const status = document.getElementById("etat-carte");
    fetch(element.dataset.geojson)
      .then(function (response) { return response.json(); })
      .then(function (collection) {
        const layer = L.geoJSON(collection, {
          pointToLayer: function (feature, latlng) {
            return L.circleMarker(latlng, { radius: 5, weight: 1, color: "#1e3a8a", fillOpacity: 0.7 });
          },
          onEachFeature: function (feature, shape) {
            const popup = document.createElement("div");  // text only: no HTML from the data
            Object.entries(feature.properties).forEach(function (pair) {
              const line = document.createElement("div");
              line.textContent = pair[0] + " : " + pair[1];
              popup.appendChild(line);
            });
            shape.bindPopup(popup);
          }
        }).addTo(map);
        map.fitBounds(layer.getBounds(), { padding: [20, 20] });
        status.textContent = collection.features.length + " objet(s) sur la carte.";
      })
      .catch(function () { status.textContent = "La carte n'a pas pu être chargée."; });
  }
})();
