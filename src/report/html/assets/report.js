// simctl's HTML report: draws the embedded run data (see src/report/html/).
// One shared time axis in simulated ms on a canvas, a sortable job table,
// and the latency histograms (histograms.js). No library, no network. When
// everything is drawn the body gets data-lanes-drawn (the rows drawn),
// data-render-ms, data-violations (the run's count) and
// data-violations-drawn (violation markers drawn on the timeline) and
// data-violations-listed (items of the header's list), which the headless
// browser check (scripts/html-check.sh) reads; it also opens pages with
// #selfcheck, which runs selfcheck.js on the job table.
"use strict";
(function () {
  var started = performance.now();
  var errors = [];
  function caught(message) {
    errors.push(String(message));
    document.body.dataset.errors = String(errors.length);
  }
  window.addEventListener("error", function (e) { caught(e.message); });
  var consoleError = console.error;
  console.error = function () { caught(Array.prototype.join.call(arguments, " ")); consoleError.apply(console, arguments); };

  var D = JSON.parse(document.getElementById("data").textContent);
  var S = D.summary;
  var TL = D.timeline;
  var JOBS = D.jobs;
  var col = {};
  JOBS.columns.forEach(function (c, i) { col[c] = i; });

  // ---------- small helpers ----------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.className = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c != null) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  function fmtMs(ms) {
    if (ms == null) return "";
    if (Math.abs(ms) >= 10000) return (ms / 1000).toFixed(2) + " s";
    if (Math.abs(ms) >= 1000) return (ms / 1000).toFixed(3) + " s";
    return (Math.round(ms * 1000) / 1000) + " ms";
  }
  function fmtNum(v) {
    if (v == null) return "";
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    return String(Math.round(v * 100) / 100);
  }
  var CODE_COLORS = {
    out_of_capacity: "#e8871e", backend_timeout: "#8e44ad", backend_unreachable: "#8d5a2b",
    internal: "#b03060", invalid_job: "#16a085", duplicate_job: "#2f6fd6",
    model_not_loaded: "#7f8c1d", auth_rejected_by_backend: "#d35fb7"
  };
  var PALETTE = ["#2f6fd6", "#e8871e", "#16a085", "#8e44ad", "#b03060", "#7f8c1d", "#d35fb7", "#8d5a2b"];
  function hashColor(s) {
    var h = 0;
    for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
    return PALETTE[Math.abs(h) % PALETTE.length];
  }
  function markerColor(m) {
    if (m.kind === "violation") return "#c0262d";
    if (m.kind === "code") return CODE_COLORS[m.code] || hashColor(m.code);
    if (m.kind === "flag") return "#c0262d";
    if (m.kind === "stop") return "#111";
    return "#667085";
  }
  var SPAN_COLORS = {
    paused: "rgba(192,38,45,.28)", slow: "rgba(232,135,30,.30)", partition: "rgba(192,38,45,.30)",
    hold: "rgba(142,68,173,.28)", crash: "rgba(29,35,48,.40)", session: "rgba(47,111,214,.20)"
  };

  // ---------- header ----------
  function header() {
    var head = document.getElementById("head");
    if (!S) {
      head.appendChild(el("h1", null, [el("span", { cls: "badge UNKNOWN", text: "TRACE" }), D.source]));
      head.appendChild(el("p", { cls: "note", text: "No run summary (.run.json) was found beside this trace, so " +
        "the scenario, verdict, [expect] table and violations are unknown. Write the trace with " +
        "`simctl run FILE --seed N --trace OUT.jsonl` to get one beside it." }));
      return;
    }
    head.appendChild(el("h1", null, [el("span", { cls: "badge " + S.verdict, text: S.verdict }), S.scenario,
      el("small", { text: "seed " + S.seed })]));
    if (S.description) head.appendChild(el("p", { cls: "desc", text: S.description }));
    S.notes.forEach(function (n) { head.appendChild(el("p", { cls: "note", text: n })); });
    var facts = el("dl", { cls: "facts" });
    function fact(k, v) { facts.appendChild(el("dt", { text: k })); facts.appendChild(el("dd", null, [v])); }
    fact("replay", el("span", { cls: "replay" }, [el("code", { text: S.replay })]));
    fact("scenario file", S.file);
    fact("simulated", fmtMs(S.sim_ms) + (S.settled ? ", settled" : ", did not settle (settle_ms_max ran out)"));
    fact("trace", el("span", { cls: "mono", text: S.trace_hash.slice(0, 16) + "… (" + S.trace_events + " events)" }));
    fact("rules", S.rules_checked + " checked" + (S.rules_skipped.length ? ", skipped: " + S.rules_skipped.join("; ") : ", none skipped"));
    var L = S.limits;
    fact("limits", "max_concurrent " + L.max_concurrent + ", outbound_queue_bytes_max " + fmtNum(L.outbound_queue_bytes_max) +
      (L.backends.length ? ", " + L.backends.map(function (b) { return b[0] + " max_num_seqs " + b[1]; }).join(", ") : ""));
    if (S.swarm.length) fact("swarm draw", S.swarm.join(", "));
    var cols = el("div", { cls: "cols" });
    var left = el("div"), right = el("div");
    left.appendChild(facts);
    left.appendChild(el("h3", { text: "Violations (" + S.violations.length + ")" }));
    if (!S.violations.length) left.appendChild(el("p", { cls: "muted", text: "The oracle found none." }));
    var ul = el("ul", { cls: "violations" });
    S.violations.forEach(function (v) {
      ul.appendChild(el("li", { title: "Show on the timeline", onclick: function () { focusViolation(v); } }, [
        el("span", { cls: "rule", text: v.rule }), " at " + fmtMs(v.at_us / 1000) +
        (v.job ? " · job " + v.job : ""), el("br"), v.detail]));
    });
    left.appendChild(ul);
    right.appendChild(el("h3", { text: "[expect] (" + S.expect.filter(function (r) { return !r.met; }).length +
      " unmet of " + S.expect.length + ")" }));
    var t = el("table", { cls: "expect" }, [el("thead", null, [el("tr", null, [
      el("th", { text: "key" }), el("th", { text: "wanted" }), el("th", { cls: "num", text: "got" }), el("th", { text: "" })])])]);
    var tb = el("tbody");
    S.expect.slice().sort(function (a, b) { return (a.met - b.met); }).forEach(function (r) {
      tb.appendChild(el("tr", { cls: r.met ? "met" : "unmet" }, [el("td", { cls: "mono", text: r.key }),
        el("td", { text: r.wanted }), el("td", { cls: "num", text: r.got }), el("td", { text: r.met ? "met" : "UNMET" })]));
    });
    t.appendChild(tb);
    if (S.expect.length) right.appendChild(t);
    else right.appendChild(el("p", { cls: "muted", text: "The scenario sets no [expect] bounds." }));
    cols.appendChild(left); cols.appendChild(right);
    head.appendChild(cols);
  }

  // ---------- timeline ----------
  var canvas = document.getElementById("timeline");
  var tip = document.getElementById("tip");
  var GUTTER = 178, RIGHT = 14, AXIS_H = 24, LANE_H = 64, ROW_H = 20, GAP = 8;
  var view = { t0: 0, t1: Math.max(TL.end_ms, 1) };
  var hiddenCodes = {};
  var selected = null; // { job, spans: [[from, to]] }
  var rows = [];       // layout: { kind, y, h, ... }
  var width = 800;

  var spanRows = [
    { row: "reads", title: "Coordinator reads" },
    { row: "faults", title: "Faults" },
    { row: "sessions", title: "Sessions" }
  ];
  var codeMarkers = TL.markers.filter(function (m) { return m.kind === "code"; });
  var eventMarkers = TL.markers.filter(function (m) { return m.kind === "flag" || m.kind === "stop" || m.kind === "phase"; });
  var violationMarkers = TL.markers.filter(function (m) { return m.kind === "violation"; });
  [codeMarkers, eventMarkers, violationMarkers].forEach(function (a) { a.sort(function (x, y) { return x.at_ms - y.at_ms; }); });

  function layout() {
    rows = [];
    var y = AXIS_H;
    TL.lanes.forEach(function (lane) { rows.push({ kind: "lane", lane: lane, y: y, h: LANE_H }); y += LANE_H + GAP; });
    spanRows.forEach(function (r) {
      var spans = TL.spans.filter(function (s) { return s.row === r.row; });
      // Overlapping spans stack in sub-rows so that none hides another.
      var ends = [];
      spans.sort(function (a, b) { return a.from_ms - b.from_ms; }).forEach(function (s) {
        var k = 0;
        while (k < ends.length && ends[k] > s.from_ms) k++;
        ends[k] = s.to_ms; s._sub = k;
      });
      var subs = Math.max(1, Math.min(ends.length, 4));
      rows.push({ kind: "spans", title: r.title, spans: spans, subs: subs, y: y, h: ROW_H * subs });
      y += ROW_H * subs + 4;
    });
    rows.push({ kind: "markers", title: "Error codes", markers: codeMarkers, y: y, h: ROW_H + 4 }); y += ROW_H + 8;
    rows.push({ kind: "markers", title: "Events", markers: eventMarkers, y: y, h: ROW_H }); y += ROW_H + 4;
    rows.push({ kind: "markers", title: "Violations", markers: violationMarkers, y: y, h: ROW_H + 4 }); y += ROW_H + 8;
    return y;
  }

  function X(t) { return GUTTER + (t - view.t0) / (view.t1 - view.t0) * (width - GUTTER - RIGHT); }
  function T(x) { return view.t0 + (x - GUTTER) / (width - GUTTER - RIGHT) * (view.t1 - view.t0); }

  // First index whose point starts at or before t (points sorted by t).
  function indexAt(points, t) {
    var lo = 0, hi = points.length - 1, ans = -1;
    while (lo <= hi) { var mid = (lo + hi) >> 1; if (points[mid][0] <= t) { ans = mid; lo = mid + 1; } else hi = mid - 1; }
    return ans;
  }
  function firstMarkerAfter(markers, t) {
    var lo = 0, hi = markers.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (markers[mid].at_ms < t) lo = mid + 1; else hi = mid; }
    return lo;
  }

  // Limits more than this many times the data's peak would flatten the
  // data into the baseline: they are named above the lane, not drawn.
  var LIMIT_SCALE_MAX = 4;
  function laneScale(lane) {
    var max = 0;
    lane.series.forEach(function (s) {
      var i = Math.max(0, indexAt(s.points, view.t0));
      for (; i < s.points.length && s.points[i][0] <= view.t1; i++) if (s.points[i][2] > max) max = s.points[i][2];
    });
    var drawn = [], above = [], peak = max;
    lane.limits.forEach(function (l, k) {
      if (peak > 0 && l.value > LIMIT_SCALE_MAX * peak) above.push(l);
      else { drawn.push([l, k]); if (l.value > max) max = l.value; }
    });
    return { max: max > 0 ? max * 1.1 : 1, drawn: drawn, above: above };
  }

  var SERIES_COLORS = ["#2f6fd6", "#16a085", "#8e44ad", "#e8871e", "#b03060"];

  function drawLane(ctx, r) {
    var lane = r.lane, scale = laneScale(lane), max = scale.max, top = r.y, bottom = r.y + r.h;
    function Y(v) { return bottom - v / max * (r.h - 4); }
    ctx.fillStyle = "#fafbfc"; ctx.fillRect(GUTTER, top, width - GUTTER - RIGHT, r.h);
    ctx.fillStyle = "#1d2330"; ctx.font = "600 12px system-ui, sans-serif"; ctx.textAlign = "left";
    ctx.fillText(lane.title, 6, top + 13);
    ctx.fillStyle = "#667085"; ctx.font = "11px system-ui, sans-serif";
    ctx.fillText("0 – " + fmtNum(max / 1.1) + " " + lane.unit, 6, top + 28);
    lane.series.forEach(function (s, k) {
      var color = SERIES_COLORS[k % SERIES_COLORS.length];
      if (lane.series.length > 1) { ctx.fillStyle = color; ctx.fillText("■ " + s.name, 6 + (k % 2) * 84, top + 43 + Math.floor(k / 2) * 13); }
      var pts = s.points; if (!pts.length) return;
      var i = Math.max(0, indexAt(pts, view.t0));
      ctx.beginPath();
      var prev = pts[i][3], x0 = Math.max(GUTTER, X(pts[i][0]));
      ctx.moveTo(x0, bottom);
      for (; i < pts.length; i++) {
        var p = pts[i]; if (p[0] > view.t1) break;
        var x = Math.max(GUTTER, X(p[0]));
        ctx.lineTo(x, Y(prev)); ctx.lineTo(x, Y(p[1])); ctx.lineTo(x, Y(p[2])); ctx.lineTo(x, Y(p[3]));
        prev = p[3];
      }
      var xEnd = Math.min(X(Math.min(view.t1, TL.end_ms)), width - RIGHT);
      ctx.lineTo(xEnd, Y(prev)); ctx.lineTo(xEnd, bottom); ctx.closePath();
      ctx.globalAlpha = lane.series.length > 1 ? 0.10 : 0.18; ctx.fillStyle = color; ctx.fill();
      ctx.globalAlpha = 1; ctx.strokeStyle = color; ctx.lineWidth = 1.2; ctx.stroke();
    });
    ctx.font = "10px system-ui, sans-serif";
    if (scale.above.length) {
      // Named in the gutter, under the lane's series.
      ctx.fillStyle = "#8e44ad";
      scale.above.forEach(function (l, k) {
        ctx.fillText("↑ " + l.name + " " + fmtNum(l.value), 6, top + 56 - k * 11);
      });
    }
    // Each limit's label sits on its line, right-aligned; labels of lines
    // close together move left of one another instead of overlapping.
    var labelRight = width - RIGHT - 4, lastY = null;
    scale.drawn.forEach(function (lk) {
      var l = lk[0], color = lk[1] === 0 ? "#c0262d" : "#8e44ad";
      var y = Math.round(Y(l.value)) + 0.5, text = l.name + " " + fmtNum(l.value);
      ctx.save(); ctx.setLineDash([5, 4]); ctx.strokeStyle = color; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(GUTTER, y); ctx.lineTo(width - RIGHT, y); ctx.stroke(); ctx.restore();
      if (lastY === null || Math.abs(lastY - y) >= 12) labelRight = width - RIGHT - 4;
      var w = ctx.measureText(text).width;
      ctx.fillStyle = "rgba(250,251,252,.9)"; ctx.fillRect(labelRight - w - 2, y - 12, w + 4, 11);
      ctx.fillStyle = color; ctx.textAlign = "right"; ctx.fillText(text, labelRight, y - 3); ctx.textAlign = "left";
      labelRight -= w + 12; lastY = y;
    });
  }

  function drawSpans(ctx, r) {
    ctx.fillStyle = "#1d2330"; ctx.font = "600 12px system-ui, sans-serif"; ctx.textAlign = "left";
    ctx.fillText(r.title, 6, r.y + 14);
    ctx.fillStyle = "#fafbfc"; ctx.fillRect(GUTTER, r.y, width - GUTTER - RIGHT, r.h);
    r.spans.forEach(function (s) {
      if (s.to_ms < view.t0 || s.from_ms > view.t1) return;
      var x0 = Math.max(GUTTER, X(s.from_ms)), x1 = Math.min(width - RIGHT, X(s.to_ms));
      var y = r.y + Math.min(s._sub, r.subs - 1) * ROW_H + 2, w = Math.max(2, x1 - x0);
      ctx.fillStyle = SPAN_COLORS[s.kind] || "rgba(102,112,133,.3)";
      ctx.fillRect(x0, y, w, ROW_H - 4);
      if (s.row === "sessions") { ctx.fillStyle = "#2f6fd6"; ctx.fillRect(x0, y, 2, ROW_H - 4); ctx.fillRect(x0 + w - 2, y, 2, ROW_H - 4); }
      if (w > 60) {
        ctx.save(); ctx.beginPath(); ctx.rect(x0, y, w, ROW_H - 4); ctx.clip();
        ctx.fillStyle = "#1d2330"; ctx.font = "11px system-ui, sans-serif"; ctx.fillText(s.label, x0 + 4, y + 12); ctx.restore();
      }
    });
  }

  function drawMarkers(ctx, r, allHeight) {
    ctx.fillStyle = "#1d2330"; ctx.font = "600 12px system-ui, sans-serif"; ctx.textAlign = "left";
    ctx.fillText(r.title + " (" + r.markers.length + ")", 6, r.y + 14);
    var i = firstMarkerAfter(r.markers, view.t0);
    for (; i < r.markers.length && r.markers[i].at_ms <= view.t1; i++) {
      var m = r.markers[i];
      if (m.kind === "code" && hiddenCodes[m.code]) continue;
      var x = Math.round(X(m.at_ms)) + 0.5;
      ctx.strokeStyle = ctx.fillStyle = markerColor(m);
      if (m.kind === "violation") {
        violationsDrawn += 1;
        ctx.save(); ctx.globalAlpha = 0.35; ctx.setLineDash([2, 3]);
        ctx.beginPath(); ctx.moveTo(x, AXIS_H); ctx.lineTo(x, allHeight); ctx.stroke(); ctx.restore();
        ctx.beginPath(); ctx.moveTo(x, r.y + 3); ctx.lineTo(x - 6, r.y + r.h - 2); ctx.lineTo(x + 6, r.y + r.h - 2); ctx.closePath(); ctx.fill();
      } else if (m.kind === "phase") {
        ctx.beginPath(); ctx.moveTo(x, r.y + 2); ctx.lineTo(x, r.y + r.h - 2); ctx.stroke();
        ctx.font = "10px system-ui, sans-serif"; ctx.fillText(m.code, x + 3, r.y + 13);
      } else {
        ctx.lineWidth = 1.5; ctx.beginPath(); ctx.moveTo(x, r.y + 3); ctx.lineTo(x, r.y + r.h - 3); ctx.stroke(); ctx.lineWidth = 1;
      }
    }
  }

  function niceStep(span, target) {
    var raw = span / target, p = Math.pow(10, Math.floor(Math.log10(raw))), n = raw / p;
    return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * p;
  }

  function drawAxis(ctx, h) {
    var step = niceStep(view.t1 - view.t0, Math.max(2, (width - GUTTER) / 110));
    ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "center";
    for (var t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
      var x = Math.round(X(t)) + 0.5;
      ctx.strokeStyle = "#eceef2"; ctx.beginPath(); ctx.moveTo(x, AXIS_H - 4); ctx.lineTo(x, h); ctx.stroke();
      ctx.fillStyle = "#667085"; ctx.fillText(fmtMs(t), x, 14);
    }
    ctx.textAlign = "left";
  }

  // Violation markers drawn by the last draw (the whole run is in view at first).
  var violationsDrawn = 0;
  // The selected job's spans as drawn by the last draw: [x, width] in CSS px.
  var highlighted = [];
  function draw() {
    violationsDrawn = 0;
    var wrap = document.getElementById("timeline-wrap");
    width = Math.max(600, wrap.clientWidth);
    var height = layout();
    var dpr = window.devicePixelRatio || 1;
    canvas.width = width * dpr; canvas.height = height * dpr; canvas.style.height = height + "px";
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    drawAxis(ctx, height);
    highlighted = [];
    if (selected) {
      ctx.fillStyle = "rgba(47,111,214,.16)";
      selected.spans.forEach(function (s) {
        var x0 = Math.max(GUTTER, X(s[0])), x1 = Math.min(width - RIGHT, X(s[1]));
        if (x1 >= GUTTER && x0 <= width - RIGHT) {
          ctx.fillRect(x0, AXIS_H, Math.max(3, x1 - x0), height - AXIS_H);
          highlighted.push([x0, Math.max(3, x1 - x0)]);
        }
      });
    }
    var drawn = 0;
    rows.forEach(function (r) {
      if (r.kind === "lane") drawLane(ctx, r);
      else if (r.kind === "spans") drawSpans(ctx, r);
      else drawMarkers(ctx, r, height);
      drawn++;
    });
    document.getElementById("range").textContent = fmtMs(view.t0) + " – " + fmtMs(view.t1) +
      " of " + fmtMs(TL.end_ms);
    return drawn;
  }

  var pending = false;
  function redraw() { if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; draw(); }); } }
  function setView(t0, t1) {
    var span = Math.max(0.01, t1 - t0), end = Math.max(TL.end_ms, 1);
    if (span > end) { t0 = 0; t1 = end; } else {
      if (t0 < 0) { t1 -= t0; t0 = 0; }
      if (t1 > end) { t0 -= t1 - end; t1 = end; }
    }
    view.t0 = Math.max(0, t0); view.t1 = t1; redraw();
  }
  function zoom(factor, at) {
    var t = at == null ? (view.t0 + view.t1) / 2 : at;
    setView(t - (t - view.t0) * factor, t + (view.t1 - t) * factor);
  }

  function legend() {
    var box = document.getElementById("legend");
    var counts = {};
    codeMarkers.forEach(function (m) { counts[m.code] = (counts[m.code] || 0) + 1; });
    Object.keys(counts).sort().forEach(function (code) {
      var item = el("span", { title: "Show or hide " + code, onclick: function () {
        hiddenCodes[code] = !hiddenCodes[code]; item.classList.toggle("off"); redraw(); } },
        [el("i", { style: "background:" + (CODE_COLORS[code] || hashColor(code)) }), code + " " + counts[code]]);
      box.appendChild(item);
    });
    box.appendChild(el("span", null, [el("i", { style: "background:#c0262d" }), "violation"]));
    [["paused", "read paused"], ["slow", "slow read"], ["partition", "partition"], ["hold", "hold"],
     ["crash", "crash"], ["session", "session"]].forEach(function (p) {
      box.appendChild(el("span", null, [el("i", { style: "background:" + SPAN_COLORS[p[0]] }), p[1]]));
    });
    box.appendChild(el("span", { cls: "muted", text: "outbound queue: its high water only (the agent reports " +
      "each new high, never a fall)" }));
  }

  function hoverText(x, y) {
    var t = T(x);
    var r = rows.find(function (r) { return y >= r.y && y < r.y + r.h; });
    if (!r || x < GUTTER) return null;
    var at = "at " + fmtMs(t) + "\n";
    if (r.kind === "lane") {
      return at + r.lane.title + "\n" + r.lane.series.map(function (s) {
        var i = indexAt(s.points, t); if (i < 0) return s.name + ": 0";
        var p = s.points[i];
        var v = p[1] === p[2] ? fmtNum(p[3]) : fmtNum(p[1]) + "–" + fmtNum(p[2]) + " (then " + fmtNum(p[3]) + ")";
        return s.name + ": " + v + " " + r.lane.unit;
      }).join("\n");
    }
    if (r.kind === "spans") {
      var hit = r.spans.filter(function (s) { return s.from_ms <= t && t <= s.to_ms; });
      if (!hit.length) return null;
      return at + hit.slice(0, 6).map(function (s) { return s.label + " (" + fmtMs(s.from_ms) + " – " + fmtMs(s.to_ms) + ")"; }).join("\n");
    }
    var tol = 5 * (view.t1 - view.t0) / (width - GUTTER - RIGHT);
    var i = firstMarkerAfter(r.markers, t - tol), near = [];
    for (; i < r.markers.length && r.markers[i].at_ms <= t + tol; i++) {
      var m = r.markers[i];
      if (!(m.kind === "code" && hiddenCodes[m.code])) near.push(m);
    }
    if (!near.length) return null;
    var more = near.length > 5 ? "\n… and " + (near.length - 5) + " more (zoom in)" : "";
    return near.slice(0, 5).map(function (m) {
      return fmtMs(m.at_ms) + "  " + (m.kind === "violation" ? "VIOLATION " + m.code + "\n" : "") + m.text +
        (m.job ? "\njob " + m.job : "");
    }).join("\n\n") + more;
  }

  function wireTimeline() {
    var drag = null;
    canvas.addEventListener("wheel", function (e) {
      e.preventDefault();
      var rect = canvas.getBoundingClientRect();
      zoom(e.deltaY > 0 ? 1.25 : 0.8, T(e.clientX - rect.left));
    }, { passive: false });
    canvas.addEventListener("mousedown", function (e) { drag = { x: e.clientX, t0: view.t0, t1: view.t1 }; });
    window.addEventListener("mouseup", function () { drag = null; });
    canvas.addEventListener("mousemove", function (e) {
      var rect = canvas.getBoundingClientRect(), x = e.clientX - rect.left, y = e.clientY - rect.top;
      if (drag) {
        var dt = (e.clientX - drag.x) / (width - GUTTER - RIGHT) * (drag.t1 - drag.t0);
        setView(drag.t0 - dt, drag.t1 - dt); tip.hidden = true; return;
      }
      var text = hoverText(x, y);
      if (!text) { tip.hidden = true; return; }
      tip.textContent = text; tip.hidden = false;
      var left = x + 14; if (left + tip.offsetWidth > width) left = Math.max(0, x - tip.offsetWidth - 14);
      tip.style.left = left + "px"; tip.style.top = (y + 12) + "px";
    });
    canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
    canvas.addEventListener("dblclick", function () { setView(0, TL.end_ms); });
    document.getElementById("zoom-in").onclick = function () { zoom(0.5); };
    document.getElementById("zoom-out").onclick = function () { zoom(2); };
    document.getElementById("zoom-reset").onclick = function () { setView(0, TL.end_ms); };
    window.addEventListener("resize", redraw);
  }

  // ---------- jobs ----------
  var flaggedJobs = {};
  (S ? S.violations : []).forEach(function (v) { if (v.job) flaggedJobs[v.job] = true; });
  var SHOWN = [
    ["job", "job"], ["name", "name"], ["kind", "kind"], ["conn", "conn", 1], ["model", "model"],
    ["sent_ms", "sent", 2], ["first_chunk_ms", "first chunk", 2], ["terminal_ms", "terminal", 2],
    ["cancel_ms", "cancel", 2], ["outcome", "outcome"], ["code", "code"], ["chunks", "chunks", 1],
    ["bytes", "bytes", 1], ["tokens_in", "tok in", 1], ["tokens_out", "tok out", 1]
  ];
  var sortBy = { c: col.sent_ms, desc: false }, shownMax = 200, filtered = [];

  function jobEnd(row) {
    var ends = [row[col.terminal_ms], row[col.cancel_ms]].filter(function (v) { return v != null; });
    return ends.length ? Math.min.apply(null, ends) : (row[col.sent_ms] == null ? null : TL.end_ms);
  }
  function selectJob(job, zoomTo) {
    var subs = JOBS.rows.filter(function (r) { return r[col.job] === job && r[col.sent_ms] != null; });
    selected = { job: job, spans: subs.map(function (r) { return [r[col.sent_ms], jobEnd(r)]; }) };
    Array.prototype.forEach.call(document.querySelectorAll("#jobs tbody tr"), function (tr) {
      tr.classList.toggle("selected", tr.dataset.job === job);
    });
    if (zoomTo && selected.spans.length) {
      var from = Math.min.apply(null, selected.spans.map(function (s) { return s[0]; }));
      var to = Math.max.apply(null, selected.spans.map(function (s) { return s[1]; }));
      var pad = Math.max((to - from) * 0.4, 20);
      setView(from - pad, to + pad);
    }
    redraw();
  }
  function focusViolation(v) {
    var pad = Math.max(TL.end_ms / 50, 50);
    if (v.job) selectJob(v.job, false);
    setView(v.at_us / 1000 - pad, v.at_us / 1000 + pad);
    document.getElementById("timeline-card").scrollIntoView({ behavior: "smooth" });
  }

  function jobsTable() {
    var thead = document.querySelector("#jobs thead"), tr = el("tr");
    SHOWN.forEach(function (c) {
      var th = el("th", { cls: c[2] ? "num" : "", text: c[1], onclick: function () {
        var i = col[c[0]];
        sortBy = { c: i, desc: sortBy.c === i ? !sortBy.desc : false }; renderRows();
      } });
      th.dataset.col = c[0];
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    var outcomes = {};
    JOBS.rows.forEach(function (r) { outcomes[r[col.outcome]] = (outcomes[r[col.outcome]] || 0) + 1; });
    var sel = document.getElementById("job-outcome");
    Object.keys(outcomes).sort().forEach(function (o) { sel.appendChild(el("option", { value: o, text: o + " (" + outcomes[o] + ")" })); });
    sel.onchange = function () { shownMax = 200; renderRows(); };
    document.getElementById("job-filter").oninput = function () { shownMax = 200; renderRows(); };
    renderRows();
  }

  function renderRows() {
    var q = document.getElementById("job-filter").value.trim().toLowerCase();
    var outcome = document.getElementById("job-outcome").value;
    filtered = JOBS.rows.filter(function (r) {
      if (outcome && r[col.outcome] !== outcome) return false;
      if (!q) return true;
      return [r[col.job], r[col.name], r[col.model], r[col.code], r[col.outcome], r[col.kind]].some(function (v) {
        return v != null && String(v).toLowerCase().indexOf(q) >= 0; });
    });
    // Names sort in record order (`#10` after `#9`, re-sends beside their time).
    var c = sortBy.c === col.name ? col.sub : sortBy.c, sign = sortBy.desc ? -1 : 1;
    filtered.sort(function (a, b) {
      var x = a[c], y = b[c];
      if (x == null && y == null) return 0; if (x == null) return 1; if (y == null) return -1;
      return (x < y ? -1 : x > y ? 1 : 0) * sign;
    });
    Array.prototype.forEach.call(document.querySelectorAll("#jobs th"), function (th) {
      var on = col[th.dataset.col] === sortBy.c;
      th.classList.toggle("sorted", on); th.classList.toggle("desc", on && sortBy.desc);
    });
    var tbody = document.querySelector("#jobs tbody"), frag = document.createDocumentFragment();
    filtered.slice(0, shownMax).forEach(function (r) {
      var tr = el("tr", { cls: (flaggedJobs[r[col.job]] ? "flagged" : "") + (selected && selected.job === r[col.job] ? " selected" : "") });
      tr.dataset.job = r[col.job];
      SHOWN.forEach(function (s) {
        var v = r[col[s[0]]], text = s[2] === 2 ? fmtMs(v) : v == null ? "" : String(v);
        var cls = (s[2] ? "num" : "") + (s[0] === "outcome" ? " o-" + v : "") + (s[0] === "job" ? " mono" : "");
        var td = el("td", { cls: cls, text: s[0] === "job" && text.length > 14 ? text.slice(0, 13) + "…" : text });
        if (s[0] === "job") td.title = text;
        tr.appendChild(td);
      });
      tr.addEventListener("click", function () {
        selectJob(r[col.job], true);
        document.getElementById("timeline-card").scrollIntoView({ behavior: "smooth" });
      });
      frag.appendChild(tr);
    });
    tbody.textContent = ""; tbody.appendChild(frag);
    document.getElementById("jobs-count").textContent = filtered.length + " of " + JOBS.rows.length +
      " submissions" + (Object.keys(flaggedJobs).length ? " · red edge: a violation names the job" : "");
    var more = document.getElementById("jobs-more"); more.textContent = "";
    if (filtered.length > shownMax) {
      more.appendChild(el("button", { type: "button", text: "show " + Math.min(1000, filtered.length - shownMax) + " more",
        onclick: function () { shownMax += 1000; renderRows(); } }));
    }
  }

  // ---------- go ----------
  header();
  legend();
  wireTimeline();
  var lanesDrawn = draw();
  jobsTable();
  drawLatencyHistograms(document.getElementById("hists"), JOBS.histograms, fmtMs, fmtNum);
  document.getElementById("foot").textContent = "simctl report · " + D.events + " events from " + D.source +
    " · timeline lanes downsampled on the server (each bucket keeps its least, greatest and last value)";
  document.body.dataset.lanesDrawn = String(lanesDrawn);
  document.body.dataset.markers = String(TL.markers.length);
  document.body.dataset.jobRows = String(JOBS.rows.length);
  document.body.dataset.violations = String(S ? S.violations.length : 0);
  document.body.dataset.violationsDrawn = String(violationsDrawn);
  document.body.dataset.violationsListed = String(document.querySelectorAll("ul.violations li").length);
  document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  document.body.dataset.errors = String(errors.length);
  // Only scripts/html-check.sh opens a page so: drive the table (selfcheck.js).
  if (location.hash === "#selfcheck") window.simctlSelfcheck({ columns: col, rows: JOBS.rows, draw: draw,
    shown: function () { return filtered.slice(0, shownMax); }, highlighted: function () { return highlighted; } });
})();
