/* Room page: the participants panel follows the room's events live (joins, leaves, stage
 * changes), refreshing its server-rendered fragment; and every 15 s while the room is live. */
import { reconnectingSocket } from "./parley.js";

(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("page-config").textContent);
  var panel = document.getElementById("participants-panel");
  var timer = null;

  function refresh() {
    if (panel.contains(document.activeElement) && document.activeElement.tagName === "BUTTON") return;
    fetch(config.participantsUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) panel.innerHTML = html; })
      .catch(function () {});
  }
  function soon() { clearTimeout(timer); timer = setTimeout(refresh, 300); }

  reconnectingSocket(config.ws, {
    onMessage: function (message) {
      if (message.room_id !== config.roomId) return;
      if (message.event === "room.started" || message.event === "room.ended") { location.reload(); return; }
      soon();
    },
  });
  setInterval(function () { if (panel.querySelector(".people")) refresh(); }, 15000);
})();
