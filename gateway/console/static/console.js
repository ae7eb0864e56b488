// The console's shared script: live updates by polling the change feed, and confirmations. Pages work without
// it (a reload shows the same); it only saves the reload.
(function () {
  "use strict";

  // Live parts: elements with data-live and an id are re-read from this same URL when the account's change
  // feed moves, and swapped in place. Focus and typed text outside them are left alone.
  function refreshLive() {
    return fetch(window.location.href, {credentials: "same-origin", headers: {"X-Console-Live": "1"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (fresh && fresh.innerHTML !== old.innerHTML) {
            old.innerHTML = fresh.innerHTML;
            old.dispatchEvent(new CustomEvent("console:updated", {bubbles: true}));
          }
        });
      });
  }

  function poll(url) {
    var cursor = null, every = 2000;
    function tick() {
      var q = cursor ? "?after=" + encodeURIComponent(cursor) : "";
      fetch(url + q, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) {
          if (r.status === 401 || r.redirected) { every = 30000; return null; }
          return r.ok ? r.json() : null;
        })
        .then(function (doc) {
          if (!doc) { return; }
          var changed = cursor !== null && doc.changed;
          cursor = doc.next || cursor;
          document.body.setAttribute("data-live-cursor", cursor || "");
          if (changed) { return refreshLive(); }
        })
        .catch(function () { /* offline for a moment: the next tick tries again */ })
        .then(function () { window.setTimeout(tick, document.hidden ? every * 5 : every); });
    }
    tick();
  }

  // <form data-confirm="..."> asks before submitting (destructive actions; the server checks again).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var url = document.body.getAttribute("data-live-poll");
    if (url) { poll(url); }
  });

  window.consoleLive = {refresh: refreshLive};
})();
