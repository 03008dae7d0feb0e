// The counter's one step: once a photo of the member's QR code is taken, the form is sent at
// once (the server reads the code). Without this script the Redeem button does the same.
(function () {
  "use strict";
  var form = document.querySelector("form.redeem-form");
  if (!form) return;
  var photo = form.querySelector('input[type="file"][name="photo"]');
  if (!photo) return;
  var sent = false;
  form.addEventListener("submit", function (event) {
    // A double tap sends one request; the form's idempotency key covers a retried one.
    if (sent) { event.preventDefault(); return; }
    sent = true;
  });
  photo.addEventListener("change", function () {
    if (!photo.files || photo.files.length === 0) return;
    // Without a chosen benefit the server could only ask for it; let the staff choose first.
    if (!form.querySelector('input[name="benefit_id"]:checked')) return;
    if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
  });
})();
