/* Keyturn: copy buttons and reactivation countdowns. No inline script, no third parties. */
(function () {
  "use strict";

  function setUpCopyButtons() {
    document.querySelectorAll("[data-copy-target]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.getElementById(button.getAttribute("data-copy-target"));
        var status = button.parentElement.querySelector(".kt-copied");
        if (!field) { return; }
        var done = function () { if (status) { status.textContent = "Copied."; } };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, function () {
            field.select();
            if (status) { status.textContent = "Press Ctrl+C (⌘C) to copy."; }
          });
        } else {
          field.select();
          var copied = document.execCommand && document.execCommand("copy");
          if (status) { status.textContent = copied ? "Copied." : "Press Ctrl+C (⌘C) to copy."; }
        }
      });
    });
  }

  function describe(msLeft) {
    if (msLeft <= 0) { return "window closed"; }
    var total = Math.floor(msLeft / 1000);
    var minutes = Math.floor(total / 60);
    var seconds = total % 60;
    return minutes + " min " + (seconds < 10 ? "0" : "") + seconds + " s left";
  }

  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll(".kt-countdown[data-deadline]").forEach(function (node) {
      var deadline = Date.parse(node.getAttribute("data-deadline"));
      if (isNaN(deadline)) { return; }
      node.textContent = describe(deadline - now);
      node.classList.toggle("kt-closed", deadline <= now);
    });
  }

  // A form that mints a secret is sent once: a second click while the first request is in
  // flight would make the browser drop the response that carries the secret.
  function setUpSubmitOnce() {
    document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.getAttribute("data-sent") === "1") {
          event.preventDefault();
          return;
        }
        form.setAttribute("data-sent", "1");
        form.querySelectorAll("[type=submit]").forEach(function (button) {
          button.setAttribute("aria-disabled", "true");
          button.classList.add("kt-sending");
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpSubmitOnce();
    setUpCopyButtons();
    tickCountdowns();
    window.setInterval(tickCountdowns, 1000);
  });
})();
