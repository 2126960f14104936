// Conditional sections and fields of pack-declared forms (partial "form-fields"): an element
// with data-when-field is shown only while that field's value equals data-when-equals or is
// one of data-when-in (a JSON array). A hidden element is also disabled, so its inputs are
// neither sent nor required. The server decides again on submit (form.Validate); this only
// keeps the page in step as the person types. Conditions name earlier fields only, so one
// pass in document order settles chains (a field inside a hidden part counts as empty).
(function () {
  "use strict";
  if (window.dgovFormWhen) return; // the partial may appear more than once on a page
  window.dgovFormWhen = true;

  function controls(scope, name) {
    var out = [];
    var all = scope.querySelectorAll("input, select, textarea");
    for (var i = 0; i < all.length; i++) if (all[i].name === name) out.push(all[i]);
    return out;
  }

  // valueOf mirrors the server: a checkbox is "true" or "false", a radio group the checked
  // value, other inputs their trimmed text; anything disabled (hidden) is "".
  function valueOf(scope, name) {
    var els = controls(scope, name);
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (el.matches(":disabled")) continue;
      if (el.type === "checkbox") return el.checked ? "true" : "false";
      if (el.type === "radio") { if (el.checked) return el.value; continue; }
      return el.value.trim();
    }
    return "";
  }

  function holds(el, value) {
    if (el.hasAttribute("data-when-equals")) return value === el.getAttribute("data-when-equals");
    var list;
    try { list = JSON.parse(el.getAttribute("data-when-in") || "[]"); } catch (e) { list = []; }
    return list.indexOf(value) >= 0;
  }

  function setShown(el, shown) {
    el.hidden = !shown;
    if (el.tagName === "FIELDSET") { el.disabled = !shown; return; }
    var inner = el.querySelectorAll("input, select, textarea");
    for (var i = 0; i < inner.length; i++) inner[i].disabled = !shown;
  }

  function update(scope) {
    var conds = scope.querySelectorAll("[data-when-field]");
    for (var i = 0; i < conds.length; i++) {
      setShown(conds[i], holds(conds[i], valueOf(scope, conds[i].getAttribute("data-when-field"))));
    }
  }

  function scopeOf(el) {
    return (el && el.closest && (el.closest("form") || el.closest(".form-fields"))) || document;
  }

  function onChange(e) {
    var t = e.target;
    if (t && t.name && scopeOf(t).querySelector("[data-when-field]")) update(scopeOf(t));
  }
  document.addEventListener("input", onChange);
  document.addEventListener("change", onChange);

  function init() {
    var blocks = document.querySelectorAll(".form-fields");
    for (var i = 0; i < blocks.length; i++) update(scopeOf(blocks[i]));
    // After a refused submit, start at the list of errors (keyboard and screen-reader users
    // would otherwise begin at the top of the page and not know why it came back).
    var summary = document.getElementById("form-errors");
    if (summary) summary.focus();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
