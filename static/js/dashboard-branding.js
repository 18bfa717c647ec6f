/* Branding: colour pickers mirror the hex fields, the contrast check and the preview update
 * as you type (the server checks the same rule on save). */
(function () {
  "use strict";
  var MIN_PRIMARY = 4.5, MIN_ACCENT = 3.0;
  function lum(hex) {
    var c = [1, 3, 5].map(function (i) { return parseInt(hex.substr(i, 2), 16) / 255; })
      .map(function (v) { return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  function ratio(a, b) { var x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); }
  var valid = /^#[0-9a-fA-F]{6}$/;
  var primary = document.getElementById("id_primary_color");
  var accent = document.getElementById("id_accent_color");
  var nameInput = document.getElementById("id_product_name");

  function update() {
    if (valid.test(primary.value)) {
      var r = ratio(primary.value, "#ffffff");
      var out = document.getElementById("primary-contrast");
      out.textContent = "White text on it: " + r.toFixed(1) + ":1 " + (r >= MIN_PRIMARY ? "(passes AA)" : "(needs " + MIN_PRIMARY + ":1)");
      out.className = "contrast " + (r >= MIN_PRIMARY ? "pass" : "fail");
      document.getElementById("preview-button").style.background = primary.value;
    }
    if (valid.test(accent.value)) {
      var a = ratio(accent.value, "#ffffff");
      var out2 = document.getElementById("accent-contrast");
      out2.textContent = "On white: " + a.toFixed(1) + ":1 " + (a >= MIN_ACCENT ? "(fine for highlights)" : "(low: use it for decoration only)");
      out2.className = "contrast " + (a >= MIN_ACCENT ? "pass" : "fail");
      document.getElementById("preview-accent").style.background = accent.value;
    }
    document.getElementById("preview-name").textContent = nameInput.value || "Parley";
  }
  document.querySelectorAll("input[type=color][data-mirror]").forEach(function (picker) {
    var target = document.querySelector(picker.getAttribute("data-mirror"));
    picker.addEventListener("input", function () { target.value = picker.value; update(); });
    target.addEventListener("input", function () { if (valid.test(target.value)) picker.value = target.value.toLowerCase(); update(); });
  });
  nameInput.addEventListener("input", update);
})();
