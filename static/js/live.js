/* Keeps the marked parts of a staff page current without a reload.

   A page opts in with data-live-every="<seconds>" on <main>. Every so often the script fetches the
   page's own address again and swaps each element marked data-live-key for its fresh copy, unless
   the user is working inside it (the focus is there): nobody's typing or keyboard place is lost.
   Forms are never swapped. When the fresh page's data-live-version differs from this one's, the
   element marked data-live-changed is shown, asking for a reload before acting on stale buttons.
   It pauses while the tab is hidden, backs off after a failed fetch, and stops for good when the
   answer is not the page (signed out, gone, forbidden). No dependencies, no inline script. */
(function () {
  "use strict";

  var main = document.querySelector("main[data-live-every]");
  if (!main || !window.fetch || !window.DOMParser) {
    return;
  }
  var every = Math.max(1, parseFloat(main.getAttribute("data-live-every")) || 15) * 1000;
  var wait = every;
  var timer = null;

  function byKey(root, key) {
    var parts = root.querySelectorAll("[data-live-key]");
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].getAttribute("data-live-key") === key) {
        return parts[i];
      }
    }
    return null;
  }

  function swap(fresh) {
    var parts = fresh.querySelectorAll("[data-live-key]");
    for (var i = 0; i < parts.length; i++) {
      var current = byKey(document, parts[i].getAttribute("data-live-key"));
      if (current && !current.contains(document.activeElement)) {
        current.replaceWith(document.importNode(parts[i], true));
      }
    }
    var mine = document.querySelector("[data-live-version]");
    var theirs = fresh.querySelector("[data-live-version]");
    var notice = document.querySelector("[data-live-changed]");
    if (mine && theirs && notice &&
        mine.getAttribute("data-live-version") !== theirs.getAttribute("data-live-version")) {
      notice.hidden = false;
    }
  }

  function schedule(delay) {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, delay);
  }

  function refresh() {
    if (document.hidden) {
      return;  // resumed by visibilitychange
    }
    fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      redirect: "manual",
      headers: {"X-Live-Refresh": "1"}
    }).then(function (response) {
      if (response.ok) {
        return response.text().then(function (html) {
          swap(new DOMParser().parseFromString(html, "text/html"));
          wait = every;
          schedule(wait);
        });
      }
      if (response.status >= 500) {
        wait = Math.min(wait * 2, 300000);
        schedule(wait);
      }
      // A redirect (signed out) or a 4xx: stop; the next reload shows why.
    }, function () {
      wait = Math.min(wait * 2, 300000);
      schedule(wait);
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      schedule(0);
    }
  });
  schedule(every);
}());
