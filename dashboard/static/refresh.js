// Refreshes the page's live parts every 15 seconds: the dashboard works
// without it (reload the page), and it never touches a form being filled.
(function () {
  "use strict";
  var main = document.getElementById("content");
  if (!main || !main.hasAttribute("data-refresh")) {
    return;
  }
  // A one-time outcome (?done=...) is not shown again on refresh.
  var url = new URL(window.location.href);
  if (url.searchParams.has("done")) {
    url.searchParams.delete("done");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  function busy() {
    var a = document.activeElement;
    return document.hidden || (a && a.closest && a.closest("form") && a.matches("input, textarea, select"));
  }
  function swap(doc, id) {
    var fresh = doc.getElementById(id), old = document.getElementById(id);
    if (fresh && old) {
      old.replaceWith(fresh);
    }
  }
  function refresh() {
    if (busy()) {
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", redirect: "manual" }).then(function (res) {
      if (res.type === "opaqueredirect" || res.status === 403) {
        window.location.reload(); // the session ended: show the sign-in form
        return null;
      }
      return res.ok ? res.text() : null;
    }).then(function (text) {
      if (!text || busy()) {
        return;
      }
      var doc = new DOMParser().parseFromString(text, "text/html");
      swap(doc, "banner");
      swap(doc, "content");
      swap(doc, "updated");
    }).catch(function () {
      var u = document.getElementById("updated");
      if (u) {
        u.textContent = "holdfast cannot be reached; retrying";
      }
    });
  }
  window.setInterval(refresh, 15000);
})();
