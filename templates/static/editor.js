// Editor pages: repeatable speaker rows and a confirmation before deleting.
// Static file (the CSP forbids inline scripts); the pages work without it.
(function () {
  "use strict";

  function addSpeakerRow(fieldset) {
    var rows = fieldset.querySelectorAll(".speaker-row");
    var last = rows[rows.length - 1];
    var copy = last.cloneNode(true);
    var n = rows.length;
    copy.querySelectorAll("input, select").forEach(function (input) {
      var base = input.id.replace(/-\d+$/, "");
      input.id = base + "-" + n;
      if (input.tagName === "INPUT") { input.value = ""; } else { input.selectedIndex = 0; }
    });
    copy.querySelectorAll("label").forEach(function (label) {
      label.htmlFor = label.htmlFor.replace(/-\d+$/, "") + "-" + n;
    });
    last.after(copy);
    copy.querySelector("input").focus();
  }

  document.querySelectorAll("fieldset.speakers").forEach(function (fieldset) {
    var button = fieldset.querySelector(".add-speaker");
    if (!button) { return; }
    button.hidden = false;
    button.addEventListener("click", function () { addSpeakerRow(fieldset); });
  });

  document.querySelectorAll("form.confirm-delete").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm || "Delete?")) { event.preventDefault(); }
    });
  });
})();
