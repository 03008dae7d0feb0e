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
  // A page brought back with the Back button may send again.
  window.addEventListener("pageshow", function () { sent = false; });
  photo.addEventListener("change", function () {
    if (!photo.files || photo.files.length === 0) return;
    // Without a chosen benefit, or the bill a discount is worked out from, the server could only
    // ask for it: let the staff fill it in, then press Redeem.
    var chosen = form.querySelector('input[name="benefit_id"]:checked');
    if (!chosen) return;
    var needed = (form.getAttribute("data-amount-needed") || "").split(" ");
    var amount = form.querySelector('input[name="purchase_amount"]');
    if (amount && !amount.value.trim() && needed.indexOf(chosen.value) !== -1) {
      amount.focus();
      return;
    }
    if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
  });
})();
