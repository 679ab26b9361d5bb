/* The embeddable player's controls (templates/_embed_player.html). No framework, no cookies,
   no storage: without this script the media element keeps its own controls and chapter or
   transcript lines open the episode's page at that moment.
   - nothing is downloaded until the listener plays or seeks (preload="none"; the length shown
     comes from the page), so a page with many embeds stays light;
   - play/pause, a seek slider (arrow keys move it; it reads out "1:05 of 45:00"), speed;
   - chapter and transcript lines seek here instead of opening the page;
   - #t=SECONDS in the embed's address starts there. */
(function () {
  "use strict";

  function clock(seconds) {
    var total = Math.max(0, Math.floor(seconds || 0));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function setup(root) {
    var media = root.querySelector("audio, video");
    var bar = root.querySelector("[data-controls]");
    if (!media || !bar) { return; }
    var play = bar.querySelector("[data-play]");
    var seek = bar.querySelector("[data-seek]");
    var time = bar.querySelector("[data-time]");
    var speed = bar.querySelector("[data-speed]");
    var seekers = Array.prototype.slice.call(root.querySelectorAll("a.embed-seek"));
    var chapters = Array.prototype.slice.call(root.querySelectorAll(".embed-chapters a.embed-seek"));

    bar.hidden = false;
    media.controls = false;
    if (media.tagName === "AUDIO") { media.hidden = true; }

    function showState() {
      var playing = !media.paused && !media.ended;
      play.setAttribute("aria-label", playing ? "Pause" : "Play");
      play.querySelector(".embed-icon").textContent = playing ? "❚❚" : "▶";
    }

    var known = parseFloat(root.dataset.duration) || 0;

    function showTime() {
      var duration = isFinite(media.duration) && media.duration > 0 ? media.duration : known;
      if (String(Math.floor(duration)) !== seek.max) { seek.max = String(Math.floor(duration)); }
      if (document.activeElement !== seek) { seek.value = String(Math.floor(media.currentTime)); }
      var text = clock(media.currentTime) + (duration ? " / " + clock(duration) : "");
      time.textContent = text;
      seek.setAttribute("aria-valuetext", clock(media.currentTime) + (duration ? " of " + clock(duration) : ""));
      var current = null;
      chapters.forEach(function (link) {
        if (parseFloat(link.dataset.start) <= media.currentTime + 0.05) { current = link; }
      });
      chapters.forEach(function (link) {
        if (link === current) { link.setAttribute("aria-current", "true"); }
        else { link.removeAttribute("aria-current"); }
      });
    }

    function start() { var p = media.play(); if (p && p.catch) { p.catch(function () {}); } }

    var pending = null;  // a seek asked for before the metadata arrived
    function goTo(seconds, andPlay) {
      if (media.readyState >= 1) {
        media.currentTime = seconds;
        showTime();
        if (andPlay) { start(); }
        return;
      }
      var first = pending === null;
      pending = { seconds: seconds, play: andPlay || (pending !== null && pending.play) };
      if (first) {
        media.addEventListener("loadedmetadata", function () {
          var wanted = pending;
          pending = null;
          goTo(wanted.seconds, wanted.play);
        }, { once: true });
        media.load();
      }
    }

    play.addEventListener("click", function () {
      if (media.paused || media.ended) { start(); } else { media.pause(); }
    });
    seek.addEventListener("input", function () { goTo(parseFloat(seek.value), false); });
    speed.addEventListener("change", function () { media.playbackRate = parseFloat(speed.value); });
    seekers.forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        goTo(parseFloat(link.dataset.start), true);
      });
    });
    ["play", "pause", "ended"].forEach(function (name) { media.addEventListener(name, showState); });
    ["timeupdate", "durationchange", "loadedmetadata", "seeked"].forEach(function (name) {
      media.addEventListener(name, showTime);
    });
    showState();
    showTime();

    var match = /^#t=(\d+(?:\.\d+)?)$/.exec(window.location.hash || "");
    if (match) { goTo(parseFloat(match[1]), false); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-embed-player]"), setup);
  });
})();
