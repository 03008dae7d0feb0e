// Keeps the member's code fresh on screen: when the shown code expires, fetch the next one.
// The page works without this script (a "Show a fresh code" link reloads it).
(function () {
  "use strict";
  var figure = document.getElementById("member-code");
  if (!figure || !window.fetch) { return; }
  var qr = document.getElementById("member-code-qr");
  var digits = document.getElementById("member-code-digits");
  var expiry = document.getElementById("member-code-expiry");

  function schedule(seconds) {
    var wait = Math.max(1, Number(seconds) || 30) * 1000;
    window.setTimeout(refresh, wait);
  }

  function refresh() {
    fetch(figure.getAttribute("data-source"), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
      cache: "no-store"
    }).then(function (response) {
      if (!response.ok) { throw new Error("status " + response.status); }
      return response.json();
    }).then(function (code) {
      figure.classList.remove("stale");
      qr.src = code.qr;
      digits.textContent = code.grouped;
      var at = new Date(code.expires_at);
      expiry.setAttribute("datetime", code.expires_at);
      expiry.textContent = at.toLocaleTimeString();
      schedule(code.refresh_after_seconds);
    }).catch(function () {
      // Signed out or offline: mark the code as possibly stale and try again a little later.
      figure.classList.add("stale");
      schedule(10);
    });
  }

  schedule(figure.getAttribute("data-refresh-after"));
}());
