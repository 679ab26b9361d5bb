/* The "Share / embed" panel (templates/_share.html): keeps "link at the current time" in step
   with the page's player (#player). Copy buttons are site.js's [data-copy]. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var field = document.getElementById("share-moment");
    var media = document.getElementById("player");
    if (!field || !media) { return; }
    function update() {
      var at = Math.floor(media.currentTime || 0);
      field.value = field.dataset.momentBase + "#t=" + at;
    }
    ["timeupdate", "seeked", "pause"].forEach(function (name) { media.addEventListener(name, update); });
    update();
  });
})();
