// Live chart of one guest migration: remaining memory, throughput and dirty rate against time.
// Hand-written SVG, no dependencies. Points come from the page's json_script, then from every
// progress card the websocket (or the htmx poll) swaps in (its hidden .migration-sample span).
(function () {
  "use strict";
  var charts = {};

  function chart(jobId) {
    if (charts[jobId]) { return charts[jobId]; }
    var fig = document.querySelector('[data-migration-chart="' + jobId + '"]');
    if (!fig) { return null; }
    var pts = [];
    var seed = document.getElementById("migration-" + jobId + "-samples");
    if (seed) {
      try {
        JSON.parse(seed.textContent).forEach(function (s) {
          pts.push({t: s.elapsed_ms, rem: s.data_remaining, thr: s.throughput_bps, dirty: s.dirty_rate_bps});
        });
      } catch (e) { /* an empty chart is fine */ }
    }
    charts[jobId] = {fig: fig, svg: fig.querySelector("svg"), pts: pts};
    return charts[jobId];
  }

  function line(points, key, maxT, maxV, cls) {
    var d = points.map(function (p) {
      var x = maxT ? (p.t / maxT) * 600 : 0;
      var y = 195 - (maxV ? (p[key] / maxV) * 185 : 0);
      return x.toFixed(1) + "," + y.toFixed(1);
    }).join(" ");
    return '<polyline class="line ' + cls + '" points="' + d + '"/>';
  }

  function draw(c) {
    if (!c.svg || !c.pts.length) { return; }
    var maxT = Math.max.apply(null, c.pts.map(function (p) { return p.t; })) || 1;
    var maxRem = Math.max.apply(null, c.pts.map(function (p) { return p.rem; })) || 1;
    var maxRate = Math.max.apply(null, c.pts.map(function (p) { return Math.max(p.thr, p.dirty); })) || 1;
    c.svg.innerHTML = line(c.pts, "rem", maxT, maxRem, "line--remaining") +
      line(c.pts, "thr", maxT, maxRate, "line--throughput") + line(c.pts, "dirty", maxT, maxRate, "line--dirty");
    // Each line is scaled to its own peak: say what the top of the chart means.
    var scale = c.fig.querySelector("[data-chart-scale]");
    if (scale) {
      scale.textContent = "0–" + (maxT / 1000).toFixed(1) + " s · top of chart: remaining " + mib(maxRem) +
        " MiB, rates " + mib(maxRate) + " MiB/s";
    }
  }

  function mib(bytes) { return (bytes / 1048576).toFixed(1); }

  function ingest(root) {
    (root.querySelectorAll ? root.querySelectorAll(".migration-sample") : []).forEach(function (el) {
      var c = chart(el.dataset.job);
      if (!c) { return; }
      var t = parseInt(el.dataset.elapsedMs || "", 10);
      if (!isNaN(t) && el.dataset.total !== "0") {
        var last = c.pts[c.pts.length - 1];
        if (!last || t > last.t) {
          c.pts.push({t: t, rem: +el.dataset.remaining, thr: +el.dataset.throughput, dirty: +el.dataset.dirty});
        }
      }
      var controls = document.getElementById("migration-" + el.dataset.job + "-controls");
      if (controls && el.dataset.terminal === "1") { controls.hidden = true; }
      if (controls && el.dataset.state === "running") {
        // Controls rendered while the job waited (greyed out) now apply.
        controls.querySelectorAll("[data-enable-when='running']").forEach(function (c) {
          if (c.tagName === "P") { c.hidden = true; } else { c.disabled = false; }
        });
      }
      draw(c);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-migration-chart]").forEach(function (f) { draw(chart(f.dataset.migrationChart)); });
  });
  document.addEventListener("htmx:oobAfterSwap", function (e) { ingest(e.detail.target || document); });
  document.addEventListener("htmx:afterSwap", function (e) { ingest(e.detail.target || document); });
})();
