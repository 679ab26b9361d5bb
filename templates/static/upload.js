// The upload page: send the form with XMLHttpRequest to show upload progress, then poll the
// processing status (converting, tagging, storing…) and go to the recording when it is ready.
// Without JavaScript the form posts normally and the status page refreshes itself.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  var panel = document.getElementById("upload-progress");
  if (!form || !panel || !window.XMLHttpRequest || !window.FormData) { return; }
  var bar = document.getElementById("upload-bar");
  var stage = document.getElementById("upload-stage");
  var message = document.getElementById("upload-message");
  var POLL_MS = 1000;

  function show(text, fraction) {
    stage.textContent = text;
    if (fraction === null) { bar.removeAttribute("value"); } else { bar.value = Math.round(fraction * 100); }
  }

  function fail(text) {
    message.textContent = text;
    message.hidden = false;
    form.querySelector("button[type=submit]").disabled = false;
  }

  function errorOf(xhr) {
    try { return JSON.parse(xhr.responseText).error || ("Error " + xhr.status); }
    catch (e) { return xhr.status ? "The upload failed (error " + xhr.status + ")." : "The connection was lost."; }
  }

  function poll(url) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", url);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onload = function () {
      if (xhr.status !== 200) { fail(errorOf(xhr)); return; }
      var job = JSON.parse(xhr.responseText);
      if (job.state === "done") { show("Done: opening the recording…", 1); window.location.assign(job.next); return; }
      if (job.state === "failed") { show("Not added", 0); fail(job.error); return; }
      show("Processing: " + job.label + "…", job.fraction > 0 ? job.fraction : null);
      window.setTimeout(function () { poll(url); }, POLL_MS);
    };
    xhr.onerror = function () { window.setTimeout(function () { poll(url); }, POLL_MS * 3); };
    xhr.send();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) { show("Sending the file… " + Math.round(100 * e.loaded / e.total) + "%", e.loaded / e.total); }
    };
    xhr.onload = function () {
      if (xhr.status !== 202) { fail(errorOf(xhr)); return; }
      show("Processing…", null);
      poll(JSON.parse(xhr.responseText).status_url);
    };
    xhr.onerror = function () { fail("The connection was lost during the upload."); };
    panel.hidden = false;
    message.hidden = true;
    form.querySelector("button[type=submit]").disabled = true;
    show("Sending the file…", 0);
    xhr.send(new FormData(form));
  });
})();
