/* group-ipt 0.1: the session sheet. Enter in a field moves to the next field and never
   saves a half-filled sheet (without this script Enter does nothing: the form's first
   submit button is a disabled guard). No library, nothing fetched. */
(function () {
  "use strict";
  var form = document.getElementById("session-sheet");
  if (!form) { return; }

  // The fields Tab would visit, one per radio group (its checked button, else its first).
  function stops() {
    var seen = {};
    return Array.prototype.filter.call(form.elements, function (el) {
      if (el.disabled || el.type === "hidden" || el.tabIndex < 0 || !el.offsetParent) { return false; }
      if (el.type !== "radio") { return true; }
      if (seen[el.name]) { return false; }
      var group = form.querySelectorAll("input[type=radio][name='" + el.name + "']");
      var checked = form.querySelector("input[type=radio][name='" + el.name + "']:checked");
      if (el === (checked || group[0])) { seen[el.name] = true; return true; }
      return false;
    });
  }

  form.addEventListener("keydown", function (event) {
    var el = event.target;
    if (event.key !== "Enter" || el.tagName === "TEXTAREA" || el.tagName === "BUTTON" || el.tagName === "A") {
      return;
    }
    event.preventDefault();
    var list = stops();
    var at = list.indexOf(el);
    if (el.type === "radio") {
      at = list.findIndex(function (s) { return s.name === el.name; });
    }
    if (at >= 0 && at + 1 < list.length) { list[at + 1].focus(); }
  });
}());
