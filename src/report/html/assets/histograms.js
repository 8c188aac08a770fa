// simctl's HTML report: the latency histograms (bars on log-spaced
// buckets, with p50 and p99 marked), drawn on canvases. Loaded before
// report.js, which calls drawLatencyHistograms.
"use strict";
(function () {
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs && attrs.text != null) node.textContent = attrs.text;
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  window.drawLatencyHistograms = function (box, histograms, fmtMs, fmtNum) {
    histograms.forEach(function (h) {
      var p = h.percentiles;
      var cap = el("figcaption", null, [el("b", { text: h.name }), " · " + p.count + " samples" +
        (p.count ? " · p50 " + fmtMs(p.p50) + " · p90 " + fmtMs(p.p90) + " · p99 " + fmtMs(p.p99) + " · max " + fmtMs(p.max) : "")]);
      var c = el("canvas");
      box.appendChild(el("figure", null, [cap, c]));
      drawHistogram(c, h, fmtMs, fmtNum);
    });
  };
  function drawHistogram(c, h, fmtMs, fmtNum) {
    var w = c.clientWidth || 320, ht = 170, dpr = window.devicePixelRatio || 1;
    c.width = w * dpr; c.height = ht * dpr;
    var ctx = c.getContext("2d"); ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    var L = 34, R = 8, TOP = 8, B = 22;
    ctx.fillStyle = "#fafbfc"; ctx.fillRect(L, TOP, w - L - R, ht - TOP - B);
    if (!h.buckets.length) { ctx.fillStyle = "#667085"; ctx.font = "12px system-ui"; ctx.fillText("no samples", L + 8, 40); return; }
    var lo = Math.log10(h.buckets[0][0]), hi = Math.log10(h.end_ms);
    if (hi - lo < 1) { lo -= 0.5; hi += 0.5; }
    function HX(ms) { return L + (Math.log10(ms) - lo) / (hi - lo) * (w - L - R); }
    var max = Math.max.apply(null, h.buckets.map(function (b) { return b[1]; }));
    function HY(n) { return ht - B - n / max * (ht - TOP - B - 4); }
    ctx.fillStyle = "#2f6fd6";
    h.buckets.forEach(function (b, i) {
      var next = i + 1 < h.buckets.length ? h.buckets[i + 1][0] : h.end_ms;
      if (b[1]) ctx.fillRect(HX(b[0]) + 0.5, HY(b[1]), Math.max(1, HX(next) - HX(b[0]) - 1), ht - B - HY(b[1]));
    });
    ctx.font = "10px system-ui, sans-serif"; ctx.fillStyle = "#667085"; ctx.textAlign = "center";
    // Ticks at each power of ten, and at 2 and 5 times it on a short axis.
    var steps = hi - lo < 2.2 ? [1, 2, 5] : [1];
    for (var d = Math.floor(lo); d <= Math.ceil(hi); d++) {
      steps.forEach(function (m) {
        var v = m * Math.pow(10, d), lv = Math.log10(v);
        if (lv < lo || lv > hi) return;
        var x = HX(v);
        ctx.fillRect(x, ht - B, 1, 4); ctx.fillText(fmtMs(Math.round(v * 1000) / 1000), x, ht - 6);
      });
    }
    ctx.textAlign = "right"; ctx.fillText(fmtNum(max), L - 4, TOP + 10); ctx.fillText("0", L - 4, ht - B);
    [["p50", h.percentiles.p50, "#16a085"], ["p99", h.percentiles.p99, "#c0262d"]].forEach(function (q) {
      if (!(q[1] > 0)) return;
      var x = Math.round(HX(q[1])) + 0.5;
      ctx.strokeStyle = ctx.fillStyle = q[2]; ctx.setLineDash([3, 3]);
      ctx.beginPath(); ctx.moveTo(x, TOP); ctx.lineTo(x, ht - B); ctx.stroke(); ctx.setLineDash([]);
      ctx.textAlign = "left"; ctx.fillText(q[0], x + 3, TOP + 10);
    });
  }

})();
