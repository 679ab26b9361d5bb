/* "Cite / share this moment" on an episode page.
   - The address names a moment with a W3C media fragment (#t=90 or #t=90,125, also npt: and
     h:mm:ss) or with ?t= (what /e/{id}?t= leads to): the player goes there, the transcript
     lines of the moment are highlighted, playback pauses once at its end, and the panel says
     where the quote starts and ends.
   - Selecting transcript text, clicking a line (Shift-click a second line for a range) or
     choosing a chapter cites that moment: a link with #t=START,END and every citation style
     with the time range (filled into the server-rendered <template>s of _citation.html). */
(function () {
  "use strict";

  var T = "__T__", RANGE = "__RANGE__";

  function seconds(text) {
    var match = /^(?:(\d{1,3}):)?(?:(\d{1,2}):)?(\d{1,7}(?:\.\d{1,3})?)$/.exec(text);
    if (!match) { return null; }
    return [match[1], match[2], match[3]].filter(function (p) { return p !== undefined; })
      .reduce(function (total, part) { return total * 60 + parseFloat(part); }, 0);
  }

  function parseMoment(value) {
    if (!value) { return null; }
    var text = value.replace(/^npt:/, "");
    var parts = text.split(",");
    if (parts.length > 2) { return null; }
    var start = parts[0] === "" ? 0 : seconds(parts[0]);
    var end = parts.length === 2 ? seconds(parts[1]) : null;
    if (start === null || (parts.length === 2 && (end === null || end <= start))) { return null; }
    return { start: start, end: end };
  }

  function fromAddress() {
    var hash = /(?:^#|&)t=([^&]*)/.exec(window.location.hash);
    if (hash) { return parseMoment(decodeURIComponent(hash[1])); }
    return parseMoment(new URLSearchParams(window.location.search).get("t"));
  }

  function number(value) { return String(Math.round(value * 1000) / 1000); }

  function fragment(moment) {
    return moment.end === null ? number(moment.start) : number(moment.start) + "," + number(moment.end);
  }

  function clock(value) {
    var total = Math.floor(value), hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60), secs = total % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return hours ? hours + ":" + two(minutes) + ":" + two(secs) : minutes + ":" + two(secs);
  }

  function rangeText(moment) {
    return moment.end === null || moment.end <= moment.start ? clock(moment.start)
      : clock(moment.start) + "\u2013" + clock(moment.end);
  }

  /* Replace the placeholders in text nodes only: nothing here ever becomes markup. */
  function fill(node, moment) {
    var walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
    var texts = [];
    while (walker.nextNode()) { texts.push(walker.currentNode); }
    texts.forEach(function (text) {
      text.nodeValue = text.nodeValue.split(T).join(fragment(moment)).split(RANGE).join(rangeText(moment));
    });
    return node;
  }

  function setup(panel, media) {
    var cueButtons = Array.prototype.slice.call(document.querySelectorAll("button.cue"));
    var anchor = null, current = null, stopAt = null;

    function timed(button) {
      return { start: parseFloat(button.dataset.start), end: parseFloat(button.dataset.end) };
    }

    function highlight(moment) {
      cueButtons.forEach(function (button) {
        var cue = timed(button);
        var quoted = moment.end === null
          ? cue.start <= moment.start + 0.001 && cue.end > moment.start + 0.001  // the line it starts in
          : cue.start < moment.end - 0.001 && cue.end > moment.start + 0.001;
        button.classList.toggle("is-quoted", quoted);
        button.parentElement.classList.toggle("is-quoted", quoted);
      });
    }

    function citations(moment) {
      var holder = panel.querySelector(".moment-citations");
      holder.textContent = "";
      Array.prototype.forEach.call(document.querySelectorAll("[data-cite-style]"), function (style) {
        var block = document.createElement("div");
        block.className = "moment-style";
        block.dataset.citeStyle = style.dataset.citeStyle;
        var heading = document.createElement("h3");
        heading.textContent = style.dataset.label;
        var entry = document.createElement("p");
        entry.className = "citation";
        entry.appendChild(fill(style.querySelector("template.moment-entry").content.cloneNode(true), moment));
        var inText = document.createElement("p");
        inText.className = "in-text";
        inText.textContent = "In the text: ";
        var span = document.createElement("span");
        span.className = "in-text-citation";
        span.appendChild(fill(style.querySelector("template.moment-in-text").content.cloneNode(true), moment));
        inText.appendChild(span);
        block.appendChild(heading);
        block.appendChild(entry);
        block.appendChild(inText);
        holder.appendChild(block);
      });
    }

    function show(moment, options) {
      current = moment;
      panel.hidden = false;
      panel.querySelector("[data-moment-start]").textContent = clock(moment.start);
      panel.querySelector("[data-moment-end]").textContent =
        moment.end === null ? "the end" : clock(moment.end);
      panel.querySelector("#moment-link").value = panel.dataset.momentBase + "#t=" + fragment(moment);
      Array.prototype.forEach.call(panel.querySelectorAll("[data-moment-download]"), function (link) {
        link.href = link.getAttribute("href").split("?")[0] + "?t=" + encodeURIComponent(fragment(moment));
      });
      citations(moment);
      highlight(moment);
      if (options.address && window.history && window.history.replaceState) {
        window.history.replaceState(null, "", "#t=" + fragment(moment));
      }
    }

    function seek(seconds) {
      var go = function () { media.currentTime = seconds; };
      if (media.readyState >= 1) { go(); } else {
        media.addEventListener("loadedmetadata", go, { once: true });
        if (media.preload === "none") { media.load(); }
      }
    }

    function openAddress() {
      var moment = fromAddress();
      if (!moment) { return; }
      show(moment, { address: false });
      stopAt = moment.end;
      seek(moment.start);
      var first = document.querySelector("button.cue.is-quoted");
      if (first && first.scrollIntoView) { first.scrollIntoView({ block: "nearest" }); }
    }

    media.addEventListener("timeupdate", function () {
      if (stopAt !== null && media.currentTime >= stopAt) {
        stopAt = null;  // once: playing on is the listener's choice
        media.pause();
      }
    });

    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("button.seek") : null;
      if (!button) { return; }
      stopAt = null;
      var picked = timed(button);
      if (button.classList.contains("cue") && event.shiftKey && anchor) {
        picked = { start: Math.min(anchor.start, picked.start), end: Math.max(anchor.end, picked.end) };
      } else if (button.classList.contains("cue")) {
        anchor = picked;
      }
      show(picked, { address: true });
    });

    var pending = null;
    document.addEventListener("selectionchange", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(fromSelection, 250);
    });

    function fromSelection() {
      var selection = window.getSelection();
      if (!selection || selection.isCollapsed || !selection.rangeCount) { return; }
      var range = selection.getRangeAt(0);
      var picked = cueButtons.filter(function (button) { return range.intersectsNode(button); });
      if (!picked.length) { return; }
      var first = timed(picked[0]), last = timed(picked[picked.length - 1]);
      show({ start: first.start, end: last.end }, { address: true });
    }

    window.addEventListener("hashchange", openAddress);
    openAddress();
    return function () { return current; };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("moment");
    var media = document.getElementById("player");
    if (panel && media) { setup(panel, media); }
  });
})();
