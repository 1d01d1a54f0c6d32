// kvmcluster: the little JavaScript the pages need on top of htmx. Every page works without it.
(function () {
  "use strict";

  function setLive(on) {
    document.querySelectorAll("[data-live-status]").forEach(function (el) {
      el.dataset.live = on ? "on" : "off";
      el.textContent = on ? "Live updates on" : "Live updates paused (reconnecting)";
    });
  }

  // Fallback while the socket is down: poll the picture (same partials, same ids) every 20 s.
  var poll = null;
  function startPolling() {
    var graph = document.getElementById("topology-graph");
    if (poll || !graph || !window.htmx) { return; }
    poll = setInterval(function () {
      window.htmx.ajax("GET", window.location.pathname, { target: "#topology-graph", swap: "outerHTML" });
    }, 20000);
  }
  function stopPolling() { if (poll) { clearInterval(poll); poll = null; } }

  document.addEventListener("htmx:wsOpen", function () { setLive(true); stopPolling(); });
  document.addEventListener("htmx:wsClose", function () { setLive(false); startPolling(); });

  // A full topology push replaces the picture; the guest table on the page is filtered and paged per
  // user, so instead of pushing it we ask it to re-fetch itself (same URL, same filters).
  var pending = null;
  document.addEventListener("htmx:oobAfterSwap", function (evt) {
    var target = evt.detail && evt.detail.target;
    if (!target || target.id !== "topology-graph") { return; }
    if (pending) { return; }
    pending = setTimeout(function () {
      pending = null;
      document.querySelectorAll("[data-refresh-on-topology]").forEach(function (el) {
        if (window.htmx) { window.htmx.trigger(el, "topology-changed"); }
      });
    }, 300);
  });
  // A push carries every part that changed (host cards, the summary, a guest's row); a page shows only some
  // of them. Parts whose target is not on this page are dropped before htmx swaps, instead of htmx logging
  // an error for each (enabled with hx-ext="oob-if-present" where a page listens to a wider socket).
  if (window.htmx) {
    window.htmx.defineExtension("oob-if-present", {
      transformResponse: function (text) {
        var tpl = document.createElement("template");
        tpl.innerHTML = text;
        var dropped = false;
        Array.prototype.slice.call(tpl.content.children).forEach(function (el) {
          var oob = el.getAttribute("hx-swap-oob");
          if (!oob) { return; }
          var colon = oob.indexOf(":");
          var selector = colon >= 0 ? oob.slice(colon + 1) : (el.id ? "#" + CSS.escape(el.id) : null);
          if (selector && !document.querySelector(selector)) { el.remove(); dropped = true; }
        });
        return dropped ? tpl.innerHTML : text;
      }
    });
  }
})();
