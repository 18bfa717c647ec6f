/* Parley dashboard: behaviour shared by every page.
 * - [data-copy="#input"] buttons copy the input's value and say so.
 * - forms with [data-confirm] ask in a dialog first (and send confirm=yes; without script the
 *   server asks on a page of its own).
 * - forms with [data-progress] show progress on their submit button while the page works.
 * - selects with [data-autosubmit] submit their form on change.
 * - `parley:announce` events (text) are read out by the page's live region.
 * - meter bars take their width from data-percent.
 * Pages follow the tenant's live events with parley.js's reconnectingSocket.
 */
import { on } from "./parley.js";

(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("live-region");
    if (region) { region.textContent = ""; setTimeout(function () { region.textContent = text; }, 30); }
  }
  on("announce", announce);

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text; area.setAttribute("readonly", ""); area.style.position = "fixed"; area.style.opacity = "0";
      document.body.appendChild(area); area.select();
      try { document.execCommand("copy") ? resolve() : reject(new Error("copy failed")); }
      catch (e) { reject(e); } finally { area.remove(); }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-copy"));
    if (!input) return;
    var label = button.textContent;
    copyText(input.value).then(function () {
      button.textContent = "Copied";
      button.setAttribute("data-copied", "true");
      announce("Copied to the clipboard");
      setTimeout(function () { button.textContent = label; button.removeAttribute("data-copied"); }, 2000);
    }, function () {
      input.focus(); input.select();
      announce("Press Ctrl+C to copy");
    });
  });

  function showProgress(form, submitter) {
    var text = form.getAttribute("data-progress");
    if (!text) return;
    var button = submitter || form.querySelector("[type=submit]");
    if (!button) return;
    button.setAttribute("aria-busy", "true");
    button.disabled = true;
    button.innerHTML = '<span class="spinner" aria-hidden="true"></span> ';
    button.appendChild(document.createTextNode(text));
    announce(text);
  }

  var dialog = document.getElementById("confirm-dialog");
  var pending = null;

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("data-confirm") && !form.querySelector("input[name=confirm]")) {
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        pending = { form: form, submitter: event.submitter };
        dialog.querySelector("#confirm-title").textContent = form.getAttribute("data-confirm-title") || "Are you sure?";
        dialog.querySelector("#confirm-message").textContent = form.getAttribute("data-confirm");
        dialog.querySelector("[data-dialog-ok]").textContent = form.getAttribute("data-confirm-ok") || "Confirm";
        dialog.showModal();
        dialog.querySelector("[data-dialog-cancel]").focus();
        return;
      }
    }
    if (form.getAttribute("aria-busy") === "true") { event.preventDefault(); return; }
    form.setAttribute("aria-busy", "true");
    showProgress(form, event.submitter);
  });

  if (dialog) {
    dialog.querySelector("[data-dialog-cancel]").addEventListener("click", function () { dialog.close(); pending = null; });
    dialog.querySelector("[data-dialog-ok]").addEventListener("click", function () {
      if (!pending) return;
      var form = pending.form;
      var input = document.createElement("input");
      input.type = "hidden"; input.name = "confirm"; input.value = "yes";
      form.appendChild(input);
      dialog.close();
      form.setAttribute("aria-busy", "true");
      showProgress(form, pending.submitter);
      pending = null;
      HTMLFormElement.prototype.submit.call(form);
    });
  }

  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-autosubmit]");
    if (select && select.form) {
      if (select.form.requestSubmit) select.form.requestSubmit(); else select.form.submit();
    }
  });
  document.querySelectorAll(".js-hide").forEach(function (el) { el.classList.add("visually-hidden"); });

  // Focus the error summary of a form that came back with errors.
  var errors = document.getElementById("form-errors");
  if (errors) { errors.focus(); }

  // Meter bars: their fill from data-percent (no inline styles under the page's CSP).
  document.querySelectorAll(".bar [data-percent]").forEach(function (el) {
    var percent = Math.max(0, Math.min(100, Number(el.getAttribute("data-percent")) || 0));
    el.style.width = percent + "%";
  });

  // Times with data-local are shown in the viewer's zone.
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) el.textContent = when.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  });
})();
