// Every page: a wide table scrolls sideways inside its box on a phone; that box must then be
// reachable by keyboard (arrow keys scroll it) and named for screen readers by the table's caption.
(function () {
  "use strict";
  function label(box) {
    var caption = box.querySelector("caption");
    var text = caption ? caption.textContent.trim() : "";
    return text || box.getAttribute("data-label") || document.title;
  }
  function mark() {
    var boxes = document.querySelectorAll(".table-wrap");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      if (box.scrollWidth > box.clientWidth + 1) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", label(box));
      } else if (box.getAttribute("role") === "region") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    }
  }
  mark();
  window.addEventListener("resize", mark);
}());
