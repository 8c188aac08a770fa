// simctl's HTML report: a self-check of the job table for the headless
// browser check (scripts/html-check.sh). report.js calls it only when the
// URL ends in #selfcheck; otherwise nothing here runs. With real events it
// sorts by three columns both ways, filters by text and by outcome, clears
// the filter and clicks a row; it checks each result against the embedded
// data and the row click's highlight against the canvas's pixels, and
// writes one line into a new pre#selfcheck: "ok …" or "FAIL: why".
"use strict";
window.simctlSelfcheck = function (page) {
  var col = page.columns, ROWS = page.rows, total = ROWS.length;
  function fail(why) { throw new Error(why); }
  function $(s) { return document.querySelector(s); }
  function click(node) { node.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true, view: window })); }
  function set(node, value, type) { node.value = value; node.dispatchEvent(new Event(type, { bubbles: true })); }
  // The table's rows, checked against the rows the script means to show.
  function shown() {
    var rows = page.shown(), trs = document.querySelectorAll("#jobs tbody tr");
    if (rows.length !== trs.length) fail(trs.length + " table rows, " + rows.length + " meant");
    rows.forEach(function (r, k) {
      if (String(r[col.job]) !== trs[k].dataset.job) fail("row " + k + " shows job " + trs[k].dataset.job);
    });
    return rows;
  }
  function count() { return parseInt($("#jobs-count").textContent, 10); }
  // Ascending order with nulls last (in both directions, as the table does).
  function before(x, y, desc) {
    if (x == null || y == null) return y == null;
    return desc ? x >= y : x <= y;
  }
  // `name` is the header's column; `key` the data the table sorts it by.
  function sortBy(name, key) {
    var th = $('#jobs th[data-col="' + name + '"]'), c = col[key || name], seen = {};
    [false, true].forEach(function (desc) {
      click(th);
      if (!th.classList.contains("sorted") || th.classList.contains("desc") !== desc) fail(name + ": header not marked");
      var rows = shown();
      for (var i = 1; i < rows.length; i++) {
        if (!before(rows[i - 1][c], rows[i][c], desc)) fail(name + (desc ? " desc" : " asc") + ": row " + i + " out of order");
      }
      ROWS.forEach(function (r) { if (!before(rows[0][c], r[c], desc)) fail(name + ": first row is not the extreme"); });
      seen[desc] = rows[0][c];
    });
    if (seen[false] === seen[true]) fail(name + ": one value only, sorting not shown");
    return name;
  }
  // The most common value of `key` that not every row has.
  function pick(key) {
    var n = {}, best = null;
    ROWS.forEach(function (r) { var v = r[col[key]]; if (v != null) n[v] = (n[v] || 0) + 1; });
    Object.keys(n).forEach(function (v) { if (n[v] < total && (best == null || n[v] > n[best])) best = v; });
    if (best == null) fail("no " + key + " value to filter by");
    return best;
  }
  function filterBy(kind, node, value, type, match) {
    set(node, value, type);
    var want = ROWS.filter(match).length, rows = shown();
    if (count() !== want || want >= total) fail(kind + " " + value + ": count " + count() + ", want " + want + " < " + total);
    rows.forEach(function (r) { if (!match(r)) fail(kind + " " + value + ": shows job " + r[col.job]); });
    set(node, "", type);
    if (count() !== total) fail(kind + " cleared: count " + count() + ", want " + total);
    return kind + ":" + value + " " + want + "/" + total;
  }
  // Pixels of the highlight's tint (rgba(47,111,214,.16) on the clear canvas).
  function tinted(x) {
    var canvas = $("#timeline"), dpr = canvas.width / canvas.clientWidth;
    var px = canvas.getContext("2d").getImageData(Math.round(x * dpr), 0, 1, canvas.height).data, n = 0;
    for (var i = 0; i < px.length; i += 4) {
      if (Math.abs(px[i] - 47) < 16 && Math.abs(px[i + 1] - 111) < 16 && Math.abs(px[i + 2] - 214) < 16 && px[i + 3] > 25 && px[i + 3] < 60) n++;
    }
    return n;
  }
  function clickRow() {
    var trs = document.querySelectorAll("#jobs tbody tr"), rows = shown(), k = 0;
    while (k < rows.length && rows[k][col.sent_ms] == null) k++;
    if (k === rows.length) fail("click: no shown job was sent");
    var job = trs[k].dataset.job;
    click(trs[k].firstChild);
    Array.prototype.forEach.call(trs, function (tr) {
      if (tr.classList.contains("selected") !== (tr.dataset.job === job)) fail("click: row of " + tr.dataset.job + " marked wrongly");
    });
    page.draw(); // the click's redraw waits for a frame, which a headless dump never gives
    var spans = ROWS.filter(function (r) { return r[col.job] === job && r[col.sent_ms] != null; }).length, drawn = page.highlighted();
    if (drawn.length !== spans) fail("click: " + drawn.length + " highlights drawn for " + spans + " span(s) of " + job);
    var least = Infinity;
    drawn.forEach(function (h) {
      var n = Math.max(tinted(h[0] + h[1] / 4), tinted(h[0] + h[1] / 2), tinted(h[0] + h[1] * 3 / 4));
      if (n < 8) fail("click: " + n + " highlighted pixels in a column of " + job + "'s span");
      least = Math.min(least, n);
    });
    return job + " " + spans + " span(s) highlighted (" + least + " px a column)";
  }
  var line;
  try {
    var sorts = [sortBy("terminal_ms"), sortBy("bytes"), sortBy("name", "sub")];
    var code = pick("code"), outcome = pick("outcome");
    var filters = [filterBy("text", $("#job-filter"), code, "input", function (r) {
      return [r[col.job], r[col.name], r[col.model], r[col.code], r[col.outcome], r[col.kind]].some(function (v) {
        return v != null && String(v).toLowerCase().indexOf(code.toLowerCase()) >= 0; });
    }), filterBy("outcome", $("#job-outcome"), outcome, "change", function (r) { return r[col.outcome] === outcome; })];
    line = "ok sort=" + sorts.join(",") + " filter=" + filters.join(",") + " click=" + clickRow();
  } catch (e) {
    line = "FAIL: " + e.message;
  }
  var pre = document.createElement("pre");
  pre.id = "selfcheck"; pre.textContent = line;
  document.body.appendChild(pre);
};
