// /ogc/openapi?f=html: Swagger UI (the catalog's packaged copy) on the OGC API's document.
(function () {
  "use strict";
  const element = document.getElementById("swagger-ui");
  if (!element || !window.SwaggerUIBundle) return;
  window.ui = SwaggerUIBundle({
    url: element.dataset.document,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
})();
