/* The host's recording buttons on the meeting page. Which one shows follows the room's
 * recording indicator, which the status socket keeps true for every page. Calls the host API
 * with the same credentials as host.js (host secret or the member's session). */
import { request } from "./parley.js";

(function () {
  "use strict";
  const start = document.getElementById("host-record-start");
  const stop = document.getElementById("host-record-stop");
  const indicator = document.getElementById("rec-indicator");
  if (!start || !stop || !indicator) return;
  const config = JSON.parse(document.getElementById("parley-config").textContent);

  function headers() {
    const h = { Accept: "application/json" };
    if (config.hostSecret) h["X-Host-Secret"] = config.hostSecret;
    else h["X-CSRFToken"] = config.csrfToken;
    return h;
  }

  function recording() {
    return !indicator.hidden && /recorded/.test(indicator.textContent);
  }

  function sync() {
    start.hidden = recording();
    stop.hidden = !recording();
  }

  async function act(button, path, done) {
    button.disabled = true;
    const message = document.getElementById("host-message");
    try {
      await request(config.urls.hostApi + path, { method: "POST", headers: headers() });
      if (message) message.textContent = done;
    } catch (err) {
      if (message) message.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  }

  start.addEventListener("click", () => act(start, "/recordings/start", "Recording started"));
  stop.addEventListener("click", () => {
    if (!window.confirm("Stop recording?")) return;
    act(stop, "/recordings/stop", "Recording stopped");
  });
  new MutationObserver(sync).observe(indicator, { attributes: true, childList: true, subtree: true });
  sync();
})();
