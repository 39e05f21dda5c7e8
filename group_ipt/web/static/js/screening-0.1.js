/* group-ipt 0.1: show the safety warning as soon as a risk answer is chosen.
   The server is the authority: it scores the answers and creates the referral
   whether or not this script runs. No library, nothing fetched. */
(function () {
  "use strict";
  var form = document.getElementById("screening-form");
  var box = document.getElementById("risk-warning");
  if (!form || !box) { return; }
  function update() {
    box.hidden = !form.querySelector("input[data-risk]:checked");
  }
  form.addEventListener("change", update);
  update();
}());
