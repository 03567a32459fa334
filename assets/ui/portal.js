// Switchboard expert portal: live queue and SLA countdowns.
// Progressive: without this script the pages work, they just do not update by themselves.
(function () {
  "use strict";

  function format(ms) {
    var overdue = ms < 0;
    var s = Math.floor(Math.abs(ms) / 1000);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var text = h > 0 ? h + "h " + pad(m) + "m" : m > 0 ? m + "m " + pad(r) + "s" : r + "s";
    return overdue ? "overdue by " + text : text + " left";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-deadline]").forEach(function (el) {
      var left = Number(el.getAttribute("data-deadline")) - now;
      el.textContent = format(left);
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 5 * 60 * 1000);
    });
  }

  function ids(el) {
    var raw = el ? el.getAttribute("data-ids") || "" : "";
    return raw.split(" ").filter(Boolean);
  }

  var live = document.getElementById("queue-live");
  var note = document.getElementById("live-note");
  var failures = 0;

  function refresh() {
    fetch("/portal/queue", { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (res) {
        if (res.status === 401) { window.location.assign("/portal/login"); return null; }
        if (!res.ok) { throw new Error("HTTP " + res.status); }
        return res.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        failures = 0;
        var before = ids(document.getElementById("queue"));
        var box = document.createElement("div");
        box.innerHTML = html;
        var next = box.firstElementChild;
        var after = ids(next);
        var fresh = after.filter(function (id) { return before.indexOf(id) < 0; });
        var current = document.getElementById("queue");
        if (current && next && current.outerHTML !== next.outerHTML) {
          current.replaceWith(next);
          fresh.forEach(function (id) {
            var row = next.querySelector('tr[data-case="' + id + '"]');
            if (row) { row.classList.add("new"); }
          });
          if (note) {
            note.textContent = fresh.length > 0
              ? fresh.length + (fresh.length === 1 ? " new case" : " new cases") + " just arrived."
              : "This list updates by itself.";
          }
        }
        tick();
      })
      .catch(function () {
        failures += 1;
        if (note && failures >= 3) { note.textContent = "Cannot reach the server; retrying…"; }
      });
  }

  tick();
  setInterval(tick, 1000);
  if (live) { setInterval(refresh, 2000); }

  // After a refused resolution, take keyboard focus to the list of errors.
  var alert = document.getElementById("form-alert");
  if (alert) { alert.focus(); }
})();
