// Measured load charts (uPlot, vendored in static/vendor/). Each [data-load-chart] element names the
// json_script holding its series: {resolution_s, at: [unix s], <column>: [...]}. Two axes: CPU % on the
// left, memory in use (MiB) on the right; a null is a gap (no measurement), never a zero. While the tab
// is visible the chart asks its data-load-url for the hour again every 10 s (a round's cadence).
(function () {
  "use strict";

  function draw(el) {
    var seed = document.getElementById(el.getAttribute("data-load-chart"));
    if (!seed || typeof uPlot === "undefined") { return; }
    var s;
    try { s = JSON.parse(seed.textContent); } catch (e) { return; }
    var cpuKey = el.getAttribute("data-cpu") || "cpu_pct";
    var memKey = "memory_used_mib" in s ? "memory_used_mib" : "memory_mib";
    var css = getComputedStyle(document.documentElement);
    var accent = css.getPropertyValue("--accent").trim() || "#2f6fde";
    var muted = css.getPropertyValue("--muted").trim() || "#5a6678";
    var opts = {
      width: Math.max(el.clientWidth, 300),
      height: 220,
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
    };
    var plot = new uPlot(opts, [s.at, s[cpuKey], s[memKey]], el);
    window.addEventListener("resize", function () { plot.setSize({width: Math.max(el.clientWidth, 300), height: 220}); });
    var url = el.getAttribute("data-load-url");
    if (!url) { return; }
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) { if (d && d.at) { plot.setData([d.at, d[cpuKey], d[memKey]]); } })
        .catch(function () { /* the next poll tries again */ });
    }, 10000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-load-chart]").forEach(draw);
  });
})();
