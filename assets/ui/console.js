// Switchboard operator console: refreshes the live parts of the page in place.
// Progressive: without this script the pages work, they just do not update by themselves.
(function () {
  "use strict";
  var live = document.querySelectorAll("[data-live]");
  if (live.length === 0) { return; }
  var note = document.getElementById("live-note");
  var failures = 0;

  function refresh() {
    fetch(window.location.pathname + "/live", { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (res) {
        if (res.status === 401) { window.location.assign("/console/login"); return null; }
        if (!res.ok) { throw new Error("HTTP " + res.status); }
        return res.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        failures = 0;
        var box = document.createElement("div");
        box.innerHTML = html;
        box.querySelectorAll("[data-live]").forEach(function (next) {
          var current = document.getElementById(next.id);
          // Leave a part alone while the keyboard is in it, so focus is not lost.
          if (current && current.outerHTML !== next.outerHTML && !current.contains(document.activeElement)) {
            current.replaceWith(next);
          }
        });
        if (note) { note.textContent = "Live: updated " + new Date().toLocaleTimeString() + "."; }
      })
      .catch(function () {
        failures += 1;
        if (note && failures >= 3) { note.textContent = "Cannot reach the server; retrying…"; }
      });
  }

  setInterval(refresh, 2000);
})();
