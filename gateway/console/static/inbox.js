// The thread page's template preview, filled in as the person types (without this script the Preview button
// asks the server for the same text), and status histories that stay open while live updates redraw them.
(function () {
  "use strict";

  var openHistories = {};

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    var bubble = details.matches && details.matches("details.history") && details.closest(".bubble");
    if (bubble) { openHistories[bubble.id] = details.open; }
  }, true);

  document.addEventListener("console:updated", function () {
    Object.keys(openHistories).forEach(function (id) {
      var details = openHistories[id] && document.querySelector("#" + id + " details.history");
      if (details) { details.open = true; }
    });
  });

  function fillPreview(form) {
    var skeleton = document.getElementById("template-skeleton");
    var preview = document.getElementById("template-preview");
    if (!skeleton || !preview) { return; }
    var copy = skeleton.content.cloneNode(true);
    copy.querySelectorAll("[data-slot]").forEach(function (slot) {
      var input = form.querySelector('input[data-slot="' + slot.getAttribute("data-slot") + '"]');
      var value = input ? input.value : "";
      slot.textContent = value || slot.getAttribute("data-placeholder");
      slot.classList.toggle("empty", !value);
    });
    preview.replaceChildren(copy);
  }

  document.addEventListener("input", function (event) {
    var form = event.target.closest && event.target.closest("form[data-template-form]");
    if (form) { fillPreview(form); }
  });
})();
