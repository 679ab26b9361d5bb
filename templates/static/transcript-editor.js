/* The transcript editor: each line's button (or Ctrl+Enter in its text) plays just that line. */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var player = document.getElementById("cue-player");
    if (!player) { return; }
    var stopAt = null;

    function play(item) {
      var start = parseFloat(item.dataset.start), end = parseFloat(item.dataset.end);
      var go = function () {
        player.currentTime = start;
        stopAt = end;
        var started = player.play();
        if (started && started.catch) { started.catch(function () {}); }
      };
      if (player.readyState >= 1) { go(); } else {
        player.addEventListener("loadedmetadata", go, { once: true });
        player.load();
      }
    }

    player.addEventListener("timeupdate", function () {
      if (stopAt !== null && player.currentTime >= stopAt) { player.pause(); stopAt = null; }
    });
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("button.play-cue") : null;
      if (button) { play(button.closest("li.cue-edit")); }
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.ctrlKey && event.target.matches("textarea")) {
        event.preventDefault();
        play(event.target.closest("li.cue-edit"));
      }
    });
  });
})();
