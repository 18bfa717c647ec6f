/* Room form: presets fill the form; fields that do not apply are hidden (their values are
 * not sent: the server does the same translation). */
import { emit } from "./parley.js";

(function () {
  "use strict";
  var form = document.getElementById("room-form");
  var presets = JSON.parse(document.getElementById("room-presets").textContent || "{}");

  function field(name) { return form.elements.namedItem(name); }
  function wrapper(name) { return form.querySelector('[data-field="' + name + '"]'); }

  function setValue(name, value) {
    var el = field(name);
    if (!el) return;
    if (el.type === "checkbox") el.checked = !!value;
    else el.value = value === null || value === undefined ? "" : String(value);
    el.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.querySelectorAll("[data-preset]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      var preset = presets[button.getAttribute("data-preset")];
      if (!preset) return;
      event.preventDefault();
      var name = field("name");
      var typed = name && name.value && !Object.keys(presets).some(function (k) { return presets[k].values.name === name.value; });
      Object.keys(preset.values).forEach(function (key) {
        if (key === "name" && typed) return;
        setValue(key, preset.values[key]);
      });
      document.querySelectorAll("[data-preset]").forEach(function (b) { b.setAttribute("aria-pressed", String(b === button)); });
      emit("announce", preset.label + " settings filled in");
      if (name) name.focus();
    });
  });

  function toggle() {
    var access = field("access_type") ? field("access_type").value : "";
    var type = field("room_type") ? field("room_type").value : "";
    var recurring = field("recurring") && field("recurring").checked;
    show("password", access === "password");
    show("whitelist_emails", access === "whitelist");
    show("allowed_email_domains", access === "authenticated");
    show("recurrence", recurring);
    ["start_time", "end_time", "join_before_minutes"].forEach(function (n) { show(n, type === "scheduled" || !!(field(n) && field(n).value)); });
    var webinar = field("allow_webinar_mode") && field("allow_webinar_mode").checked;
    show("max_speakers", !!webinar);
  }
  function show(name, visible) {
    var el = wrapper(name);
    if (el) el.hidden = !visible && !el.classList.contains("invalid");
  }
  form.addEventListener("change", toggle);
  toggle();
})();
