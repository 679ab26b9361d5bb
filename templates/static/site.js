/* Small enhancements; every page works without them (the native <audio controls> plays).
   - the player: a large play/pause button, skips of 15 and 30 s, speed, the waveform (or a
     plain bar) as an APG slider to scrub with pointer or keys, the current chapter, and the
     position remembered per episode in localStorage (resumed when played again);
   - chapter and transcript buttons that seek, the current cue highlighted while playing, and
     #t=SECONDS in the address starting playback there;
   - copy buttons for feed addresses;
   - while a transcript is being prepared, the page reloads itself once it is ready. */
(function () {
  "use strict";

  var SAVE_EVERY_S = 2; // how often (in played seconds) the position is written down
  var FORGET_NEAR_END_S = 10; // a recording heard to (nearly) the end starts again next time

  function parseTime(hash) {
    var match = /^#t=(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d+)?)$/.exec(hash || "");
    if (!match) { return null; }
    var parts = [match[1], match[2], match[3]].filter(function (p) { return p !== undefined; });
    return parts.reduce(function (total, part) { return total * 60 + parseFloat(part); }, 0);
  }

  function clock(seconds) {
    var total = Math.max(0, Math.floor(seconds || 0));
    var h = Math.floor(total / 3600), m = Math.floor(total % 3600 / 60), s = total % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function spoken(seconds) {
    var total = Math.max(0, Math.round(seconds || 0));
    var h = Math.floor(total / 3600), m = Math.floor(total % 3600 / 60), s = total % 60;
    var parts = [];
    if (h) { parts.push(h + (h === 1 ? " hour" : " hours")); }
    if (m) { parts.push(m + (m === 1 ? " minute" : " minutes")); }
    if (s || !parts.length) { parts.push(s + (s === 1 ? " second" : " seconds")); }
    return parts.join(" ");
  }

  function storage() {
    try { return window.localStorage; } catch (e) { return null; } // blocked cookies: no resume
  }

  function setupPlayer(media) {
    var section = media.closest(".player") || document;
    var cueButtons = Array.prototype.slice.call(document.querySelectorAll("button.cue"));
    var starts = cueButtons.map(function (b) { return parseFloat(b.dataset.start); });
    var chapters = Array.prototype.slice.call(document.querySelectorAll("button.chapter"))
      .map(function (b) {
        var text = b.querySelector(".text");
        return { start: parseFloat(b.dataset.start), title: text ? text.textContent : "" };
      });
    var cueList = document.getElementById("cues");
    var current = null;
    var knownDuration = parseFloat(section.dataset ? section.dataset.duration : "") || 0;
    var pending = null; // a position to go to once the media is loaded (resume, skips)
    var pendingPlay = false, loading = false;
    var store = storage();
    var key = section.dataset && section.dataset.episode ? "archive:position:" + section.dataset.episode : null;
    var lastSaved = -1;

    function duration() {
      return isFinite(media.duration) && media.duration > 0 ? media.duration : knownDuration;
    }
    function position() { return pending !== null ? pending : media.currentTime; }
    function clamp(seconds) { return Math.max(0, Math.min(seconds, duration() || seconds)); }

    function playNow() {
      var p = media.play();
      if (p && p.catch) { p.catch(function () {}); }
    }

    // With preload="none" nothing is fetched until the listener asks (a download is counted
    // only then); a seek before that is kept in `pending` and applied once metadata arrives.
    function seek(seconds, play) {
      if (media.readyState >= 1) {
        pending = null;
        media.currentTime = seconds;
        highlight(seconds);
        show();
        if (play) { playNow(); }
        return;
      }
      pending = seconds;
      pendingPlay = pendingPlay || play;
      highlight(seconds);
      show();
      if (!loading) { loading = true; media.preload = "metadata"; media.load(); }
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

    // -- the controls -------------------------------------------------------------------
    var ui = section.querySelector(".player-ui");
    var playButton = ui && ui.querySelector("[data-play]");
    var slider = ui && ui.querySelector(".scrubber");
    var canvas = slider && slider.querySelector("canvas");
    var head = slider && slider.querySelector(".head");
    var elapsed = ui && ui.querySelector("[data-elapsed]");
    var remaining = ui && ui.querySelector("[data-remaining]");
    var nowChapter = ui && ui.querySelector("[data-now-chapter]");
    var peaks = null;

    if (media.tagName === "AUDIO" && ui) { media.removeAttribute("controls"); }

    function togglePlay() {
      if (!media.paused) { media.pause(); return; }
      if (media.readyState < 1) { seek(position(), true); } else { playNow(); }
    }

    function showPlaying() {
      if (!playButton) { return; }
      var playing = !media.paused;
      playButton.setAttribute("aria-label", playing ? "Pause" : "Play");
      playButton.querySelector("[data-icon-play]").toggleAttribute("hidden", playing);
      playButton.querySelector("[data-icon-pause]").toggleAttribute("hidden", !playing);
    }

    function chapterAt(seconds) {
      var found = null;
      chapters.forEach(function (c) { if (c.start <= seconds + 0.05) { found = c; } });
      return found;
    }

    function draw(at, total) {
      if (!canvas) { return; }
      var ratio = window.devicePixelRatio || 1;
      var width = canvas.clientWidth, height = canvas.clientHeight;
      if (!width || !height) { return; }
      if (canvas.width !== Math.round(width * ratio)) { canvas.width = Math.round(width * ratio); }
      if (canvas.height !== Math.round(height * ratio)) { canvas.height = Math.round(height * ratio); }
      var context = canvas.getContext("2d");
      var styles = getComputedStyle(slider);
      var played = styles.getPropertyValue("--wave-played").trim() || "#0b5394";
      var rest = styles.getPropertyValue("--wave").trim() || "#b9c7d6";
      var split = total ? at / total * canvas.width : 0;
      context.clearRect(0, 0, canvas.width, canvas.height);
      if (!peaks) {
        context.fillStyle = rest;
        context.fillRect(0, canvas.height * 0.4, canvas.width, canvas.height * 0.2);
        context.fillStyle = played;
        context.fillRect(0, canvas.height * 0.4, split, canvas.height * 0.2);
        return;
      }
      var bar = 3 * ratio, gap = ratio, bars = Math.floor(canvas.width / (bar + gap));
      var per = peaks.length / bars, middle = canvas.height / 2;
      for (var n = 0; n < bars; n += 1) {
        var top = 0;
        for (var i = Math.floor(n * per); i < Math.floor((n + 1) * per) && i < peaks.length; i += 1) {
          if (peaks[i] > top) { top = peaks[i]; }
        }
        var h = Math.max(ratio, top * (canvas.height - 4 * ratio));
        var x = n * (bar + gap);
        context.fillStyle = x < split ? played : rest;
        context.fillRect(x, middle - h / 2, bar, h);
      }
    }

    function show() {
      var at = position(), total = duration();
      if (slider) {
        slider.setAttribute("aria-valuemax", String(Math.round(total)));
        slider.setAttribute("aria-valuenow", String(Math.round(at)));
        slider.setAttribute("aria-valuetext", spoken(at) + (total ? " of " + spoken(total) : ""));
        if (head) { head.style.left = (total ? Math.min(100, at / total * 100) : 0) + "%"; }
        draw(at, total);
      }
      if (elapsed) { elapsed.textContent = clock(at); }
      if (remaining) { remaining.textContent = total ? "−" + clock(total - at) : ""; }
      if (nowChapter) {
        var chapter = chapterAt(at);
        if (chapter && nowChapter.textContent !== chapter.title) { nowChapter.textContent = chapter.title; }
      }
    }

    function save(force) {
      if (!store || !key) { return; }
      var at = media.currentTime, total = duration();
      if (!force && Math.abs(at - lastSaved) < SAVE_EVERY_S) { return; }
      lastSaved = at;
      try {
        if (at < 1 || (total && at > total - FORGET_NEAR_END_S)) { store.removeItem(key); }
        else { store.setItem(key, at.toFixed(1)); }
      } catch (e) { /* storage full or blocked: nothing to remember */ }
    }

    function loadPeaks(url) {
      fetch(url).then(function (r) { return r.ok ? r.json() : null; }).then(function (json) {
        if (!json || !json.data || !json.data.length) { return; }
        var scale = json.bits === 16 ? 32768 : 128, values = [];
        for (var i = 0; i + 1 < json.data.length; i += 2) {
          values.push(Math.max(Math.abs(json.data[i]), Math.abs(json.data[i + 1])) / scale);
        }
        peaks = values;
        slider.classList.add("has-waveform");
        show();
      }).catch(function () {});
    }

    function fromPointer(event) {
      var box = slider.getBoundingClientRect();
      var ratio = Math.max(0, Math.min(1, (event.clientX - box.left) / box.width));
      return ratio * duration();
    }

    if (slider) {
      var dragging = false;
      slider.addEventListener("pointerdown", function (event) {
        if (!duration()) { return; }
        dragging = true;
        slider.setPointerCapture(event.pointerId);
        slider.focus();
        seek(fromPointer(event), false);
      });
      slider.addEventListener("pointermove", function (event) {
        if (dragging) { seek(fromPointer(event), false); }
      });
      slider.addEventListener("pointerup", function () { dragging = false; });
      slider.addEventListener("pointercancel", function () { dragging = false; });
      slider.addEventListener("keydown", function (event) {
        var total = duration(), at = position(), to = null;
        switch (event.key) {
          case "ArrowRight": case "ArrowUp": to = at + 5; break;
          case "ArrowLeft": case "ArrowDown": to = at - 5; break;
          case "PageUp": to = at + 60; break;
          case "PageDown": to = at - 60; break;
          case "Home": to = 0; break;
          case "End": to = total; break;
          default: return;
        }
        event.preventDefault();
        seek(clamp(to), false);
      });
      window.addEventListener("resize", show);
      if (section.dataset.waveform && window.fetch) { loadPeaks(section.dataset.waveform); }
    }

    if (playButton) { playButton.addEventListener("click", togglePlay); }
    Array.prototype.forEach.call(section.querySelectorAll("button[data-skip]"), function (button) {
      button.addEventListener("click", function () {
        seek(clamp(position() + parseFloat(button.dataset.skip)), false);
      });
    });

    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("button.seek") : null;
      if (!button) { return; }
      seek(parseFloat(button.dataset.start), true);
    });
    media.addEventListener("timeupdate", function () {
      if (pending === null) { highlight(media.currentTime); show(); save(false); }
    });
    media.addEventListener("play", showPlaying);
    media.addEventListener("pause", function () { showPlaying(); save(true); });
    media.addEventListener("ended", function () { showPlaying(); save(true); });
    media.addEventListener("loadedmetadata", function () {
      loading = true;
      if (pending !== null) {
        var to = pending, play = pendingPlay;
        pending = null;
        pendingPlay = false;
        media.currentTime = to;
        highlight(to);
        if (play) { playNow(); }
      }
      show();
    });
    window.addEventListener("pagehide", function () { if (media.currentTime > 0) { save(true); } });

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
    var named = /[#?&]t=/.test(window.location.hash + window.location.search);
    var saved = store && key && !named ? parseFloat(store.getItem(key)) : NaN;
    if (saved > 0) { pending = saved; } // resume there, without loading before they play
    fromHash();
    showPlaying();
    show();
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
