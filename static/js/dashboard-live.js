/* Overview: the "Live now" list, refreshed when the tenant's websocket reports a change
 * (a room started or ended, someone joined or left, a usage sample), and every 30 s. */
import { reconnectingSocket } from "./parley.js";

(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("page-config").textContent);
  var list = document.getElementById("live-rooms");
  var status = document.getElementById("live-status");
  var timer = null;

  function render(data) {
    list.textContent = "";
    if (!data.rooms.length) {
      var empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = "No room is live. Rooms go live when they start or when the first guest joins.";
      list.appendChild(empty);
      return;
    }
    data.rooms.forEach(function (room) {
      var li = document.createElement("li");
      li.setAttribute("data-room", room.room_id);
      var a = document.createElement("a");
      a.href = room.url; a.textContent = room.name;
      var right = document.createElement("span");
      var count = document.createElement("span");
      count.className = "count"; count.setAttribute("data-count", "");
      count.textContent = room.participants === null ? "–" : String(room.participants);
      var of = document.createElement("span");
      of.className = "muted small"; of.textContent = " / " + room.max_participants + " people";
      right.appendChild(count); right.appendChild(of);
      li.appendChild(a); li.appendChild(right);
      list.appendChild(li);
    });
    if (!data.livekit) status.textContent = "Media server unreachable";
  }

  function refresh() {
    fetch(config.liveUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) render(data); })
      .catch(function () {});
  }
  function soon() { clearTimeout(timer); timer = setTimeout(refresh, 300); }

  function state(up) {
    status.textContent = up ? "Updates live" : "Reconnecting…";
    if (up) soon();
  }

  reconnectingSocket(config.ws, {
    onOpen: function () { state(true); },
    onClose: function () { state(false); return true; },
    onMessage: function (message) {
      if (message.event === "usage.sampled" && message.data && message.data.participants) {
        Object.keys(message.data.participants).forEach(function (roomId) {
          var el = list.querySelector('li[data-room="' + roomId + '"] [data-count]');
          if (el) el.textContent = String(message.data.participants[roomId]);
        });
        return;
      }
      soon();
    },
  });
  setInterval(refresh, 30000);
})();
