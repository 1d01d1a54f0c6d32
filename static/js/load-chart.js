// Measured load charts (uPlot, vendored in static/vendor/). Each [data-load-chart] element names the
// json_script holding its series: {resolution_s, at: [unix s], <column>: [...]}. Two axes: CPU % on the
// left, memory in use (MiB) on the right; a null is a gap (no measurement), never a zero.
//
// Live: the panel holds a websocket (htmx's ws extension, ws-connect on [data-load-panel]); after every
// load round the server swaps in the panel's caption (#<dom id>-latest) whose data-load-point is one more
// row, appended here. Only while that socket is closed does the chart ask its data-load-url for the hour
// again every 10 s (a round's cadence). Markers: a guest's moves, listed beside the chart
// (#<dom id>-moves li[data-at]), are drawn as labelled vertical lines.
(function () {
  "use strict";

  var WINDOW_S = 3600;
  var POLL_MS = 10000;

  function moves(domId) {
    var list = document.getElementById(domId + "-moves");
    if (!list) { return []; }
    return Array.prototype.map.call(list.querySelectorAll("li[data-at]"), function (li) {
      return {at: parseFloat(li.getAttribute("data-at")), label: li.getAttribute("data-label") || ""};
    });
  }

  // A uPlot plugin: one dashed vertical line and a label per move inside the plotted range.
  function markersPlugin(domId, color) {
    return {hooks: {draw: function (u) {
      var ctx = u.ctx, min = u.scales.x.min, max = u.scales.x.max;
      ctx.save();
      ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 1.5 * devicePixelRatio;
      ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
      ctx.font = (11 * devicePixelRatio) + "px sans-serif";
      moves(domId).forEach(function (m) {
        if (!(m.at >= min && m.at <= max)) { return; }
        var x = Math.round(u.valToPos(m.at, "x", true));
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        ctx.fillText(m.label, x + 4 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
      });
      ctx.restore();
    }}};
  }

  function setup(el) {
    var panel = el.closest("[data-load-panel]");
    var domId = panel ? panel.getAttribute("data-load-panel") : el.id.replace(/-chart$/, "");
    var seed = document.getElementById(el.getAttribute("data-load-chart"));
    var s = {at: []};
    try { if (seed) { s = JSON.parse(seed.textContent); } } catch (e) { /* start empty */ }
    var cpuKey = el.getAttribute("data-cpu") || "cpu_pct";
    var memKey = cpuKey === "cpu_pct" ? "memory_used_mib" : "memory_mib";
    var data = [s.at || [], s[cpuKey] || [], s[memKey] || []];
    var plot = null;

    function draw() {
      el.setAttribute("data-points", String(data[0].length));
      if (plot) { plot.setData(data); return; }
      if (!data[0].length || typeof uPlot === "undefined") { return; }
      el.hidden = false;
      var css = getComputedStyle(document.documentElement);
      var accent = css.getPropertyValue("--accent").trim() || "#2f6fde";
      var muted = css.getPropertyValue("--muted").trim() || "#5a6678";
      var warn = css.getPropertyValue("--warn").trim() || "#b35c00";
      plot = new uPlot({
        width: Math.max(el.clientWidth, 300),
        height: 220,
        plugins: [markersPlugin(domId, warn)],
        scales: {x: {time: true}, pct: {range: [0, 100]}, mib: {}},
        series: [
          {},
          {label: "CPU %", scale: "pct", stroke: accent, width: 2, value: function (u, v) { return v == null ? "–" : v.toFixed(0) + " %"; }},
          {label: "Memory MiB", scale: "mib", stroke: muted, width: 1.5, dash: [6, 4], value: function (u, v) { return v == null ? "–" : Math.round(v) + " MiB"; }}
        ],
        axes: [
          {},
          {scale: "pct", values: function (u, vals) { return vals.map(function (v) { return v + " %"; }); }},
          {scale: "mib", side: 1, grid: {show: false}}
        ]
      }, data, el);
      window.addEventListener("resize", function () { plot.setSize({width: Math.max(el.clientWidth, 300), height: 220}); });
    }

    // One pushed row: appended if newer than the last, rows older than the window dropped.
    function append(point) {
      var last = data[0].length ? data[0][data[0].length - 1] : -Infinity;
      if (!point || !(point.at > last)) { return; }
      data[0].push(point.at); data[1].push(point[cpuKey]); data[2].push(point[memKey]);
      while (data[0].length && data[0][0] < point.at - WINDOW_S) { data[0].shift(); data[1].shift(); data[2].shift(); }
      draw();
    }

    var live = false;
    function setLive(on) {
      live = on;
      if (!panel) { return; }
      panel.querySelectorAll("[data-load-live]").forEach(function (badge) {
        badge.dataset.live = on ? "on" : "off";
        badge.textContent = on ? "live" : "not live: checking every 10 s";
      });
    }
    if (panel) {
      panel.addEventListener("htmx:wsOpen", function () { setLive(true); });
      panel.addEventListener("htmx:wsClose", function () { setLive(false); });
      panel.addEventListener("htmx:wsAfterMessage", function () {
        var caption = document.getElementById(domId + "-latest");
        var raw = caption && caption.getAttribute("data-load-point");
        try { if (raw) { append(JSON.parse(raw)); } } catch (e) { /* a caption without a point changes nothing */ }
        if (plot) { plot.redraw(false, false); }  // a pushed list of moves brings new markers
      });
    }

    var url = el.getAttribute("data-load-url");
    if (url) {
      setInterval(function () {
        if (live || document.hidden) { return; }
        fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (d) { if (d && d.at) { data = [d.at, d[cpuKey], d[memKey]]; draw(); } })
          .catch(function () { /* the next poll tries again */ });
      }, POLL_MS);
    }
    draw();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-load-chart]").forEach(setup);
  });
})();
