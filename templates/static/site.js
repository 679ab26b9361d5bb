/* Small enhancements; every page works without them.
   - the player: playback speed, chapter and transcript buttons that seek, the current cue
     highlighted while playing, and #t=SECONDS in the address starting playback there;
   - copy buttons for feed addresses;
   - while a transcript is being prepared, the page reloads itself once it is ready. */
(function () {
  "use strict";

  function parseTime(hash) {
    var match = /^#t=(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d+)?)$/.exec(hash || "");
    if (!match) { return null; }
    var parts = [match[1], match[2], match[3]].filter(function (p) { return p !== undefined; });
    return parts.reduce(function (total, part) { return total * 60 + parseFloat(part); }, 0);
  }

  function setupPlayer(media) {
    var cueButtons = Array.prototype.slice.call(document.querySelectorAll("button.cue"));
    var starts = cueButtons.map(function (b) { return parseFloat(b.dataset.start); });
    var cueList = document.getElementById("cues");
    var current = null;

    function seek(seconds, play) {
      var go = function () {
        media.currentTime = seconds;
        highlight(seconds);
        if (play) { var p = media.play(); if (p && p.catch) { p.catch(function () {}); } }
      };
      if (media.readyState >= 1) { go(); } else {
        media.addEventListener("loadedmetadata", go, { once: true });
        if (media.preload === "none") { media.load(); }
      }
    }

    function cueAt(seconds) {
      var low = 0, high = starts.length - 1, found = -1;
      while (low <= high) {
        var mid = (low + high) >> 1;
        if (starts[mid] <= seconds + 0.05) { found = mid; low = mid + 1; } else { high = mid - 1; }
      }
      return found < 0 ? null : cueButtons[found];
    }

    function highlight(seconds) {
      var next = cueAt(seconds);
      if (next === current) { return; }
      if (current) { current.classList.remove("is-current"); current.removeAttribute("aria-current"); }
      current = next;
      if (current) {
        current.classList.add("is-current");
        current.setAttribute("aria-current", "true");
        if (cueList && cueList.scrollHeight > cueList.clientHeight) {
          var item = current.parentElement;
          var top = item.offsetTop - cueList.offsetTop;
          if (top < cueList.scrollTop || top + item.offsetHeight > cueList.scrollTop + cueList.clientHeight) {
            cueList.scrollTop = Math.max(0, top - cueList.clientHeight / 3);
          }
        }
      }
    }

    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("button.seek") : null;
      if (!button) { return; }
      seek(parseFloat(button.dataset.start), true);
    });
    media.addEventListener("timeupdate", function () { highlight(media.currentTime); });

    var speed = document.getElementById("speed");
    if (speed) {
      speed.addEventListener("change", function () { media.playbackRate = parseFloat(speed.value); });
      media.addEventListener("ratechange", function () {
        var value = String(media.playbackRate);
        if (speed.value !== value) { speed.value = value; }
      });
    }

    function fromHash() {
      var seconds = parseTime(window.location.hash);
      if (seconds !== null) { seek(seconds, false); }
    }
    window.addEventListener("hashchange", fromHash);
    fromHash();
  }

  function setupCopy(button) {
    var input = document.getElementById(button.dataset.copy);
    var status = button.parentElement.querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function () { if (status) { status.textContent = "Address copied."; } };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          input.select();
          if (status) { status.textContent = "Press Ctrl+C (or ⌘C) to copy the selected address."; }
        });
      } else {
        input.select();
        document.execCommand("copy");
        done();
      }
    });
  }

  function watchTranscript(note) {
    // Ask the episode's JSON every few seconds (slower over time); reload when the work is done.
    var delay = 5000;
    function look() {
      fetch(note.dataset.transcriptPoll, { headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (episode) {
          var pending = episode && episode.pending ? episode.pending : [];
          if (episode && (episode.files.transcript || pending.indexOf("transcribe") < 0)) {
            window.location.reload();
            return;
          }
          delay = Math.min(delay * 1.5, 60000);
          window.setTimeout(look, delay);
        })
        .catch(function () { window.setTimeout(look, 60000); });
    }
    window.setTimeout(look, delay);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-needs-js]"), function (el) {
      el.hidden = false;
    });
    var media = document.getElementById("player");
    if (media) { setupPlayer(media); }
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), setupCopy);
    var preparing = document.querySelector("[data-transcript-poll]");
    if (preparing && window.fetch) { watchTranscript(preparing); }
  });
})();
