/* API tester: create a room with a pasted API key (kept only in this page's memory), then
 * "Connect & test audio" joins it with the microphone and shows connection status and audio
 * levels; "Open second window" opens the room's join link as a second participant. */
import { levelMeter } from "./parley.js";

(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  if (!$("create-form")) return; // no workspace
  const LK = window.LivekitClient;
  let created = null;
  let room = null;
  let meterTimer = null;
  let stopMeter = () => {};

  function status(state, text) {
    const el = $("connection-status");
    el.dataset.status = state;
    el.textContent = text;
  }

  function show(response, body) {
    $("response-status").textContent = response ? response.status + " " + response.statusText : "network error";
    $("response").textContent = typeof body === "string" ? body : JSON.stringify(body, null, 2);
  }

  async function apiCall(path, payload) {
    const key = $("api-key").value.trim();
    const response = await fetch(path, {
      method: "POST",
      credentials: "omit", // the API authenticates by key only
      headers: { "Content-Type": "application/json", "X-API-Key": key, Accept: "application/json" },
      body: JSON.stringify(payload),
    });
    let body;
    try {
      body = await response.json();
    } catch (err) {
      body = "(no JSON body)";
    }
    return { response, body };
  }

  $("create-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("create-error").textContent = "";
    if (!$("api-key").value.trim()) {
      $("create-error").textContent = "Paste an API key first (Dashboard → API keys).";
      return;
    }
    let payload;
    try {
      payload = JSON.parse($("request-body").value);
    } catch (err) {
      $("create-error").textContent = "The request body is not valid JSON: " + err.message;
      return;
    }
    $("create-button").disabled = true;
    try {
      const { response, body } = await apiCall("/api/v1/rooms", payload);
      show(response, body);
      if (response.ok) {
        created = body;
        $("connect-button").disabled = false;
        $("second-window").disabled = false;
      }
    } catch (err) {
      show(null, String(err));
    } finally {
      $("create-button").disabled = false;
    }
  });

  function setLevel(el, level) {
    el.style.width = Math.round(Math.min(1, level) * 100) + "%";
    el.dataset.level = level.toFixed(3);
  }

  function renderRemotes() {
    const list = $("remote-list");
    list.replaceChildren();
    const people = room ? [...room.remoteParticipants.values()] : [];
    if (!people.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "None yet: open a second window";
      list.append(li);
      return;
    }
    for (const p of people) {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = (p.name || p.identity) + (p.isMicrophoneEnabled ? "" : " (muted)");
      const meter = document.createElement("div");
      meter.className = "meter";
      const bar = document.createElement("div");
      bar.className = "meter-bar";
      setLevel(bar, p.audioLevel || 0);
      meter.append(bar);
      li.append(name, meter);
      list.append(li);
    }
  }

  async function connect() {
    if (!created || !LK) return;
    // The click is the user gesture that lets audio play (browser autoplay rules).
    const Ctx = window.AudioContext || window.webkitAudioContext;
    const ctx = Ctx ? new Ctx() : null;
    $("connect-button").disabled = true;
    status("connecting", "Getting a token…");
    const { response, body } = await apiCall("/api/v1/rooms/" + encodeURIComponent(created.room_id) + "/tokens", {
      name: "API tester",
    });
    if (!response.ok) {
      show(response, body);
      status("error", body && body.error ? body.error.message : "Could not get a token");
      $("connect-button").disabled = false;
      return;
    }
    room = new LK.Room({ adaptiveStream: true, dynacast: true });
    room
      .on(LK.RoomEvent.TrackSubscribed, (track) => {
        if (track.kind === "audio") $("audio-sink").append(track.attach()); // remote only
        renderRemotes();
      })
      .on(LK.RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((el) => el.remove()))
      .on(LK.RoomEvent.ParticipantConnected, renderRemotes)
      .on(LK.RoomEvent.ParticipantDisconnected, renderRemotes)
      .on(LK.RoomEvent.Reconnecting, () => status("reconnecting", "Reconnecting…"))
      .on(LK.RoomEvent.Reconnected, () => status("connected", "Connected"))
      .on(LK.RoomEvent.AudioPlaybackStatusChanged, () => ($("enable-audio").hidden = room.canPlaybackAudio))
      .on(LK.RoomEvent.Disconnected, () => {
        status("idle", "Disconnected");
        clearInterval(meterTimer);
        stopMeter();
        $("connect-button").disabled = false;
        $("disconnect-button").hidden = true;
      });
    status("connecting", "Connecting to " + body.ws_url + "…");
    try {
      await room.connect(body.ws_url, body.token);
    } catch (err) {
      status("error", "Could not connect: " + err.message);
      $("connect-button").disabled = false;
      return;
    }
    status("connected", "Connected as " + body.identity);
    $("disconnect-button").hidden = false;
    room.startAudio().catch(() => {});
    try {
      await room.localParticipant.setMicrophoneEnabled(true);
    } catch (err) {
      status("connected", "Connected, but the microphone failed: " + err.message);
    }
    const pub = room.localParticipant.getTrackPublication(LK.Track.Source.Microphone);
    if (pub && pub.track) {
      // Analysed only, never played back.
      stopMeter = levelMeter(ctx, [pub.track.mediaStreamTrack], (level) => setLevel($("local-level"), level), {
        interval: 100,
      });
    }
    meterTimer = setInterval(renderRemotes, 100);
  }

  $("connect-button").addEventListener("click", () => connect().catch((err) => status("error", err.message)));
  $("disconnect-button").addEventListener("click", () => room && room.disconnect());
  $("enable-audio").addEventListener("click", () => room && room.startAudio());
  $("second-window").addEventListener("click", () => {
    if (created) window.open(created.join_url, "_blank", "noopener");
  });
})();
