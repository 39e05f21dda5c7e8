/* group-ipt 0.1: on a narrow screen every table row becomes a card (see the stylesheet);
   each cell then shows its column's heading, copied here from the table's head into
   data-label. Without this script the cards simply have no headings. Nothing fetched. */
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("main table"), function (table) {
    var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!head) { return; }
    var labels = [];
    Array.prototype.forEach.call(head.cells, function (cell) {
      for (var i = 0; i < (cell.colSpan || 1); i++) { labels.push(cell.textContent.trim()); }
    });
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var at = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          if (labels[at] && !cell.hasAttribute("data-label")) { cell.setAttribute("data-label", labels[at]); }
          at += cell.colSpan || 1;
        });
      });
    });
  });
}());
