/* Keyturn guided rotation: refresh the activity panel from its JSON endpoint. No inline
   script, no third parties; without JavaScript the panel shows what the page was sent with. */
(function () {
  "use strict";

  var POLL_MS = 3000;

  function describe(version, isNew) {
    if (!version) { return "—"; }
    var text = version.masked + ": ";
    if (!version.last_used_at) {
      return text + (isNew ? "no use recorded yet" : "no use recorded");
    }
    text += "last used " + version.last_used_at;
    if (isNew) { text += " (" + version.use_count + "×)"; }
    if (!isNew && version.used_since_step) { text += " — used since this step began"; }
    return text;
  }

  function render(panel, data) {
    var fresh = panel.querySelector(".kt-activity-new");
    var old = panel.querySelector(".kt-activity-old");
    var verdict = panel.querySelector(".kt-activity-verdict");
    if (fresh) { fresh.textContent = describe(data.new, true); }
    if (old) { old.textContent = describe(data.old, false); }
    if (verdict) {
      verdict.textContent = data.passed
        ? "Traffic moved: the new version is used and the old one is quiet."
        : "Not yet: " + data.summary;
      verdict.setAttribute("data-passed", data.passed ? "yes" : "no");
    }
  }

  function poll(panel) {
    var url = panel.getAttribute("data-activity-url");
    // Keyturn-Background: a refresh the page makes on its own is not the person's activity,
    // so it never keeps an idle session alive (portal/session_limits.py).
    var headers = { "Accept": "application/json", "Keyturn-Background": "poll" };
    fetch(url, { credentials: "same-origin", headers: headers })
      .then(function (response) {
        if (response.redirected) {
          // Sent to the sign-in page: the session has ended. Open this page again, so the
          // person sees the sign-in page and why they were signed out.
          window.location.assign(window.location.href);
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (data) { if (data) { render(panel, data); } })
      .catch(function () { /* a missed refresh is retried on the next tick */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".kt-activity[data-activity-url]").forEach(function (panel) {
      window.setInterval(function () { poll(panel); }, POLL_MS);
    });
  });
})();
