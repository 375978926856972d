// OGC API pages (/ogc): the map of a collection's extent, of a page of items or of one
// item, drawn with the vendored Leaflet from the page's own GeoJSON (no inline script,
// no tiles from another host). Values from the data are shown as text only.
(function () {
  "use strict";
  const element = document.getElementById("carte-ogc");
  if (!element || !window.L) return;
  const map = L.map(element, { attributionControl: false });
  const style = { radius: 5, weight: 1, color: "#1e3a8a", fillOpacity: 0.6 };

  if (element.dataset.emprise) {
    const b = element.dataset.emprise.split(",").map(Number);
    const box = L.rectangle([[b[1], b[0]], [b[3], b[2]]], style).addTo(map);
    map.fitBounds(box.getBounds(), { padding: [20, 20] });
    return;
  }

  const address = new URL(window.location.href);
  address.searchParams.set("f", "json");
  fetch(address.toString(), { headers: { Accept: "application/geo+json" } })
    .then(function (response) { return response.json(); })
    .then(function (geojson) {
      const layer = L.geoJSON(geojson, {
        pointToLayer: function (feature, latlng) { return L.circleMarker(latlng, style); },
        style: function () { return style; },
        onEachFeature: function (feature, shape) {
          if (!element.dataset.objets || feature.id === undefined) return;
          const link = document.createElement("a");  // text only: no HTML from the data
          link.href = element.dataset.objets + "/" + encodeURIComponent(String(feature.id));
          link.textContent = "Objet " + String(feature.id);
          shape.bindPopup(link);
        }
      }).addTo(map);
      const bounds = layer.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20], maxZoom: 17 });
      element.dataset.etat = "chargee";
    })
    .catch(function () { element.textContent = "La carte n'a pas pu être chargée."; });
})();
