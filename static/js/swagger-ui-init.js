/* Starts Swagger UI on /api/v1/docs (templates/swagger_ui.html) from the container's data
   attributes: the spec's URL and flask-smorest's OPENAPI_SWAGGER_UI_CONFIG. A file rather than
   flask-smorest's inline script, so the page runs under the app's script-src 'self'. */
(function () {
  "use strict";

  var container = document.getElementById("swagger-ui-container");
  var config = JSON.parse(container.getAttribute("data-config") || "{}");
  config.url = container.getAttribute("data-spec-url");
  config.dom_id = "#swagger-ui-container";
  window.ui = window.SwaggerUIBundle(config);
})();
