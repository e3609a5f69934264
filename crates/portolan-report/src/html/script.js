"use strict";
(function () {
  var doc = document;
  doc.documentElement.setAttribute("data-js", "on");
  doc.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });

  // Copy buttons: the clipboard API where allowed, else a selection and execCommand.
  doc.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      var code = b.parentNode.querySelector("code");
      var text = code ? code.textContent : "";
      var done = function () { b.textContent = "Copied"; b.classList.add("done"); setTimeout(function () { b.textContent = "Copy"; b.classList.remove("done"); }, 1500); };
      var fallback = function () {
        var r = doc.createRange(); r.selectNodeContents(code);
        var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
        try { doc.execCommand("copy"); done(); } catch (e) { b.textContent = "Press Ctrl+C"; }
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, fallback);
      } else { fallback(); }
    });
  });

  // Findings: one severity, or all.
  var list = doc.getElementById("finding-list");
  var shownF = doc.getElementById("findings-shown");
  function showSeverity(sev) {
    var n = 0, all = 0;
    list.querySelectorAll(".finding").forEach(function (f) {
      all++;
      var on = !sev || f.getAttribute("data-severity") === sev;
      f.hidden = !on; if (on) n++;
    });
    doc.querySelectorAll(".sev-filter").forEach(function (b) {
      b.setAttribute("aria-pressed", String((b.getAttribute("data-severity") || "") === sev));
    });
    if (shownF) shownF.textContent = sev ? n + " of " + all + " shown" : "";
  }
  doc.querySelectorAll(".sev-filter").forEach(function (b) {
    b.addEventListener("click", function () { showSeverity(b.getAttribute("data-severity") || ""); });
  });
  window.portolanShowSeverity = list ? showSeverity : function () {};

  // Tables: text and exposure filters.
  function filterTable(id) {
    var table = doc.getElementById(id); if (!table) return;
    var text = doc.querySelector('.row-filter[data-table="' + id + '"]');
    var exp = doc.querySelector('.exposure-filter[data-table="' + id + '"]');
    var q = text ? text.value.trim().toLowerCase() : "";
    var x = exp ? exp.value : "";
    var fold = table.closest("details.rows");
    if (fold && (q || x)) fold.open = true;
    var n = 0, all = 0;
    var rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i]; all++;
      var cell = r.querySelector("td[class^=x-]");
      var on = (!x || (cell && cell.className === "x-" + x)) && (!q || r.textContent.toLowerCase().indexOf(q) >= 0);
      r.hidden = !on; if (on) n++;
    }
    var out = doc.querySelector('[data-shown="' + id + '"]');
    if (out) out.textContent = (q || x) ? n + " of " + all + " shown" : "";
  }
  doc.querySelectorAll(".row-filter,.exposure-filter").forEach(function (el) {
    el.addEventListener("input", function () { filterTable(el.getAttribute("data-table")); });
  });

  // Tables: sort by a column.
  doc.querySelectorAll("table.sortable th[data-sort]").forEach(function (th) {
    th.tabIndex = 0;
    var go = function () {
      var table = th.closest("table"), body = table.tBodies[0];
      var col = th.cellIndex, num = th.getAttribute("data-sort") === "num";
      var asc = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (r) { var t = r.cells[col] ? r.cells[col].textContent : ""; return num ? (parseFloat(t) || 0) : t.toLowerCase(); };
      var keyed = rows.map(function (r, i) { return [key(r), i, r]; });
      keyed.sort(function (a, b) { return a[0] < b[0] ? (asc ? -1 : 1) : a[0] > b[0] ? (asc ? 1 : -1) : a[1] - b[1]; });
      var frag = doc.createDocumentFragment();
      keyed.forEach(function (k) { frag.appendChild(k[2]); });
      body.appendChild(frag);
    };
    th.addEventListener("click", go);
    th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); } });
  });

  // Chart: what a focused or hovered mark holds.
  var info = doc.getElementById("mark-info");
  doc.querySelectorAll("#chart .mark").forEach(function (m) {
    var show = function () { var t = m.querySelector("title"); if (info && t) info.textContent = t.textContent.trim(); };
    m.addEventListener("focus", show);
    m.addEventListener("mouseenter", show);
  });

  // Print everything, collapsed or not.
  window.addEventListener("beforeprint", function () {
    doc.querySelectorAll("details:not([open])").forEach(function (d) { d.setAttribute("data-was-closed", ""); d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    doc.querySelectorAll("details[data-was-closed]").forEach(function (d) { d.removeAttribute("data-was-closed"); d.open = false; });
  });
})();
