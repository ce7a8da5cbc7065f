// Sorting, filtering and copy buttons. The page is complete without this script.
(function () {
  "use strict";
  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell) { return numeric ? 0 : ""; }
    var raw = cell.getAttribute("data-sort") || cell.textContent.trim();
    return numeric ? parseFloat(raw) || 0 : raw.toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, index) {
      th.addEventListener("click", function () {
        var numeric = th.getAttribute("data-type") === "num";
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        Array.prototype.slice.call(body.rows).sort(function (a, b) {
          var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
          return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
        }).forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  var filters = document.querySelector(".filters");
  var box = document.getElementById("finding-filter");
  function applyFilter() {
    var text = box.value.toLowerCase();
    var shown = {};
    document.querySelectorAll(".sev-toggle").forEach(function (t) { shown[t.value] = t.checked; });
    document.querySelectorAll("article.check").forEach(function (article) {
      var visible = 0;
      article.querySelectorAll("tr.finding").forEach(function (row) {
        var match = !text || row.textContent.toLowerCase().indexOf(text) >= 0;
        row.hidden = !match;
        if (match) { visible += 1; }
      });
      article.hidden = !shown[article.getAttribute("data-severity")] || visible === 0;
    });
  }
  if (filters && box) {
    filters.hidden = false;
    box.addEventListener("input", applyFilter);
    document.querySelectorAll(".sev-toggle").forEach(function (t) { t.addEventListener("change", applyFilter); });
  }
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var code = button.parentNode.querySelector("code");
      if (navigator.clipboard && code) {
        navigator.clipboard.writeText(code.textContent).then(function () { button.textContent = "Copied"; });
      }
    });
  });
  // A link into the folded connection listing (a map cell) opens it first.
  function openTarget() {
    var target = location.hash && document.getElementById(location.hash.slice(1));
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
    if (target) { target.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
}());
