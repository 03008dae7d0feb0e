// Benefits near me: sorts by where the customer is, when they allow the browser to tell.
// Without it (denied, no script) the page sorts from the centre of their first circle and says so.
// Same page, same frame: the position only goes into the page's own lat/lon query parameters.
(function () {
  "use strict";
  var box = document.getElementById("whereabouts");
  var button = document.getElementById("use-location");
  var status = document.getElementById("location-status");
  if (!box || !button || !("geolocation" in navigator)) { return; }

  function reload(position) {
    var url = new URL(window.location.href);
    url.searchParams.set("lat", position.coords.latitude.toFixed(5));
    url.searchParams.set("lon", position.coords.longitude.toFixed(5));
    url.searchParams.delete("page");
    window.location.replace(url.toString());
  }

  function failed() {
    button.disabled = false;
    status.textContent = button.getAttribute("data-denied") || "";
  }

  function locate() {
    button.disabled = true;
    status.textContent = button.getAttribute("data-finding") || "";
    navigator.geolocation.getCurrentPosition(reload, failed, { maximumAge: 300000, timeout: 15000 });
  }

  if (box.getAttribute("data-source") === "device") { return; }
  button.hidden = false;
  button.addEventListener("click", locate);
  // Asked before and allowed: sort from here at once, without a second question.
  if (navigator.permissions && navigator.permissions.query) {
    navigator.permissions.query({ name: "geolocation" }).then(function (answer) {
      if (answer.state === "granted") { locate(); }
    }).catch(function () { /* the button still works */ });
  }
}());
