// Dataset page, « Carte » tab. The features over a background: the tiles configured by
// OPENDATA_MAP_BACKGROUND (XYZ template or WMS) or, by default and whenever those tiles do
// not come, the outlines of the Métropole's communes shipped with the catalog. A metric
// scale. Keyboard: arrows pan, + and - zoom, Tab reaches each feature, Enter opens its card
// (the schema's titles, French values), Escape closes it and gives the focus back.
(function () {
  "use strict";
  const element = document.getElementById("carte");
  if (!element || !window.L) return;
  const METROPOLE = { center: [45.76, 4.85], zoom: 11 };
  const NAMES_FROM_ZOOM = 12;
  const OUTLINES_ATTRIBUTION =
    "Contours des communes : IGN, ADMIN EXPRESS COG CARTO (Licence Ouverte 2.0)";
  const FALLBACK = "Le fond de plan ne répond pas : les contours des communes sont affichés à la place.";
  const NAME = /^(nom|libelle|libellé|titre|intitule|intitulé|denomination|dénomination|name|label)/i;
  const FEATURE = { color: "#1e3a8a", weight: 3 };
  const POINT = { radius: 6, weight: 1, color: "#1e3a8a", fillOpacity: 0.7 };
  const FOCUSED = { color: "#b45309", weight: 4 };
  const PAN = { ArrowLeft: [-80, 0], ArrowRight: [80, 0], ArrowUp: [0, -80], ArrowDown: [0, 80] };
  const fields = JSON.parse(element.dataset.champs || "[]");
  const byName = {};
  fields.forEach(function (field) { byName[field.name] = field; });
  let map = null;
  let outlines = false;
  let opener = null;  // the feature whose card the keyboard opened: it gets the focus back

  function escapeHtml(text) {  // Leaflet writes attributions as HTML
    const holder = document.createElement("span");
    holder.textContent = text;
    return holder.innerHTML;
  }

  function start() {
    map = L.map(element, { zoomControl: false, attributionControl: false, keyboard: true })
      .setView(METROPOLE.center, METROPOLE.zoom);
    L.control.zoom({ zoomInTitle: "Zoomer", zoomOutTitle: "Dézoomer" }).addTo(map);
    L.control.scale({ imperial: false }).addTo(map);
    L.control.attribution({ prefix: '<a href="https://leafletjs.com">Leaflet</a>' }).addTo(map);
    map.createPane("contours").style.zIndex = 250;  // above tiles (200), under features (400)
    map.createPane("noms-communes").style.zIndex = 260;
    // focusing a feature out of view scrolls the container: Leaflet pans, the box must not
    element.addEventListener("scroll", function () { element.scrollTop = 0; element.scrollLeft = 0; });
    map.on("popupopen", cardOpened);
    map.on("popupclose", cardClosed);
    element.addEventListener("keydown", keysWithin);
    background();
    features();
  }

  // Leaflet reads the keys only while the map's box itself has the focus: the same keys
  // work from a feature, its card or a control within the map.
  function keysWithin(event) {
    if (event.target === element || event.altKey || event.ctrlKey || event.metaKey) return;
    const step = PAN[event.key];
    if (event.key === "Escape") map.closePopup();
    else if (step) map.panBy(step);
    else if (event.key === "+" || event.key === "=") map.zoomIn();
    else if (event.key === "-") map.zoomOut();
    else return;
    event.preventDefault();
  }

  function background() {
    const url = element.dataset.fond;
    if (!url) {
      drawOutlines();
      return;
    }
    const options = { attribution: escapeHtml(element.dataset.fondAttribution || ""), maxZoom: 19 };
    const layer = element.dataset.fondType === "wms"
      ? L.tileLayer.wms(url, Object.assign(options, {
        layers: element.dataset.fondCouche, format: "image/png", transparent: false, version: "1.3.0" }))
      : L.tileLayer(url, options);
    let loaded = 0;
    let failed = 0;
    layer.on("loading", function () { loaded = 0; failed = 0; });
    layer.on("tileload", function () { loaded += 1; });
    layer.on("tileerror", function () { failed += 1; });
    layer.on("load", function () {  // every tile in view answered: did any come?
      if (loaded === 0 && failed > 0) {
        setTimeout(function () { map.removeLayer(layer); }, 0);  // once Leaflet's load is over
        drawOutlines();
        document.getElementById("etat-fond").textContent = FALLBACK;
        element.classList.add("fond-indisponible");
      }
    });
    layer.addTo(map);
  }

  function drawOutlines() {
    if (outlines) return;
    outlines = true;
    fetch(element.dataset.contours)
      .then(function (response) { return response.json(); })
      .then(function (collection) {
        L.geoJSON(collection, {
          pane: "contours",
          interactive: false,
          style: { color: "#64748b", weight: 1, fillColor: "#f8fafc", fillOpacity: 1 },
        }).addTo(map);
        map.attributionControl.addAttribution(OUTLINES_ATTRIBUTION);
        communeNames(collection.features);
      });
  }

  function communeNames(communes) {  // written once zoomed in enough for them to fit
    const names = L.layerGroup(communes.map(function (commune) {
      const place = commune.properties.etiquette;
      return L.tooltip({ permanent: true, direction: "center", className: "nom-commune", pane: "noms-communes" })
        .setLatLng([place[1], place[0]])
        .setContent(escapeHtml(commune.properties.nom));
    }));
    function fit() {
      if (map.getZoom() >= NAMES_FROM_ZOOM) names.addTo(map);
      else names.remove();
    }
    map.on("zoomend", fit);
    fit();
  }

  function features() {
    const status = document.getElementById("etat-carte");
    fetch(element.dataset.geojson)
      .then(function (response) { return response.json(); })
      .then(function (collection) {
        const layer = L.geoJSON(collection, {
          pointToLayer: function (feature, latlng) { return L.circleMarker(latlng, POINT); },
          style: function (feature) {
            return feature.geometry && feature.geometry.type.indexOf("Point") >= 0 ? {} : FEATURE;
          },
          onEachFeature: function (feature, shape) { shape.bindPopup(card(feature.properties)); },
        }).addTo(map);
        const bounds = layer.getBounds();
        if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20], maxZoom: 17 });
        let index = 0;
        layer.eachLayer(function (shape) { focusable(shape, (index += 1)); });
        const more = (collection.links || []).some(function (link) { return link.rel === "next"; });
        status.textContent = collection.features.length + " objet(s) sur la carte." +
          (more ? " Les suivants sont dans les téléchargements et l'API." : "");
      })
      .catch(function () { status.textContent = "La carte n'a pas pu être chargée."; });
  }

  function ordered(properties) {  // the schema's order, then anything it does not name
    const names = fields.map(function (field) { return field.name; })
      .filter(function (name) { return name in properties; });
    Object.keys(properties).forEach(function (name) { if (names.indexOf(name) < 0) names.push(name); });
    return names;
  }

  function shown(name, value) {
    const field = byName[name] || { name: name };
    return window.Valeurs.format(value, field.type);
  }

  function card(properties) {  // text only: no HTML from the data
    const list = document.createElement("dl");
    list.className = "fiche";
    ordered(properties).forEach(function (name) {
      const term = document.createElement("dt");
      term.textContent = window.Valeurs.title(byName[name] || { name: name });
      const value = document.createElement("dd");
      value.textContent = shown(name, properties[name]) || "—";
      list.append(term, value);
    });
    return list;
  }

  function label(properties, index) {
    const named = fields.filter(function (field) {
      return NAME.test(field.name) && shown(field.name, properties[field.name]);
    })[0];
    if (named) return "Objet " + index + " : " + shown(named.name, properties[named.name]);
    const first = ordered(properties)[0];
    if (first === undefined) return "Objet " + index;
    return "Objet " + index + " : " + window.Valeurs.title(byName[first] || { name: first }) +
      " " + shown(first, properties[first]);
  }

  function focusable(shape, index) {
    const path = shape.getElement();
    if (!path) return;
    const resting = { color: shape.options.color, weight: shape.options.weight };
    path.setAttribute("tabindex", "0");
    path.setAttribute("role", "button");
    path.setAttribute("aria-label", label(shape.feature.properties, index));
    path.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      map.closePopup();  // before choosing the opener: closing a card gives its own the focus
      opener = path;
      shape.openPopup();
    });
    path.addEventListener("focus", function () {
      shape.setStyle(FOCUSED);
      const where = shape.getLatLng ? shape.getLatLng() : shape.getBounds().getCenter();
      if (!map.getBounds().contains(where)) map.panTo(where);
    });
    path.addEventListener("blur", function () { shape.setStyle(resting); });
  }

  function cardOpened(event) {
    const popup = event.popup.getElement();
    const close = popup.querySelector(".leaflet-popup-close-button");
    if (close) {
      close.setAttribute("aria-label", "Fermer la fiche");
      close.setAttribute("title", "Fermer la fiche");
    }
    if (!opener) return;
    const content = popup.querySelector(".leaflet-popup-content");
    content.setAttribute("tabindex", "-1");
    content.setAttribute("role", "group");
    content.setAttribute("aria-label", "Fiche — " + opener.getAttribute("aria-label"));
    content.focus({ preventScroll: true });
  }

  function cardClosed() {
    if (!opener) return;
    const back = opener;
    opener = null;
    back.focus({ preventScroll: true });
  }

  // the tab may have been opened while this script was still downloading
  const panel = document.getElementById("panneau-carte");
  if (panel && panel.hidden) panel.addEventListener("panneau-ouvert", start, { once: true });
  else if (panel) start();
})();
