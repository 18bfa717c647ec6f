/* The page LiveKit egress records: joins hidden and subscribe-only, lays out everyone's
 * video (grid), plays their audio, and shows chat for grid+chat. Egress starts recording on
 * "START_RECORDING" in the console and stops on "END_RECORDING". */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("recorder-config").textContent);
  const LK = window.LivekitClient;
  const grid = document.getElementById("grid");
  const chat = document.getElementById("chat");
  const room = new LK.Room({ adaptiveStream: true });

  function tile(participant) {
    const id = "tile-" + participant.sid;
    let el = document.getElementById(id);
    if (!el) {
      el = document.createElement("div");
      el.className = "rec-tile";
      el.id = id;
      const label = document.createElement("span");
      label.textContent = participant.name || participant.identity;
      el.append(label);
      grid.append(el);
    }
    return el;
  }

  // Which tiles show, in which order: speakers first (SPEAKER) or hosts first (PIN), at
  // most gridSize of them.
  let speaking = [];
  function rank(p) {
    if (config.priority === "PIN") {
      const role = (p.attributes && p.attributes.role) || "";
      return role === "owner" || role === "host" ? 0 : 1;
    }
    const at = speaking.indexOf(p.identity);
    return at === -1 ? speaking.length + 1 : at;
  }
  function arrange() {
    const people = Array.from(room.remoteParticipants.values()).sort((a, b) => rank(a) - rank(b));
    people.forEach((p, i) => {
      const el = tile(p);
      el.style.order = String(i);
      el.hidden = config.gridSize > 0 && i >= config.gridSize;
    });
  }
  room.on(LK.RoomEvent.ActiveSpeakersChanged, (speakers) => {
    speaking = speakers.map((p) => p.identity);
    arrange();
  });
  room.on(LK.RoomEvent.ParticipantAttributesChanged, () => arrange());

  room.on(LK.RoomEvent.TrackSubscribed, (track, _pub, participant) => {
    const element = track.attach();
    if (track.kind === "video") {
      tile(participant).prepend(element);
      arrange();
    }
    else document.body.append(element);
  });
  room.on(LK.RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((e) => e.remove()));
  room.on(LK.RoomEvent.ParticipantConnected, () => arrange());
  room.on(LK.RoomEvent.ParticipantDisconnected, (participant) => {
    const el = document.getElementById("tile-" + participant.sid);
    if (el) el.remove();
  });
  if (chat) {
    room.on(LK.RoomEvent.ChatMessage, (message, participant) => {
      const item = document.createElement("li");
      const who = document.createElement("strong");
      who.textContent = participant ? participant.name || participant.identity : "Someone";
      item.append(who, ": ", message.message);
      chat.append(item);
      item.scrollIntoView({ block: "end" });
    });
  }
  room.on(LK.RoomEvent.Disconnected, () => console.log("END_RECORDING"));

  room
    .connect(config.wsUrl, config.token, { autoSubscribe: true })
    .then(() => {
      arrange();
      console.log("START_RECORDING");
    })
    .catch((err) => {
      console.error("recording template could not connect", err);
      console.log("END_RECORDING");
    });
})();
