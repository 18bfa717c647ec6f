/* Parley host tools on the join page: the live waiting-room queue and, in webinar rooms, the
 * stage (raised hands first raised first, speakers, invitations), both over the host socket,
 * and host actions. Every action is a call to Parley's server (/api/v1/rooms/<id>/host/...),
 * authorised by the host link's secret (X-Host-Secret) or the member's session (CSRF).
 * Names come from guests: they are written with textContent only.
 *
 * Loaded on host pages only; hears `parley:host-action` ({action, identity, name}) from the
 * meeting's tiles and emits `parley:room-opened` when it starts the room. */
import { emit, on, reconnectingSocket, request } from "./parley.js";

(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  let config = null;
  let socket = null;
  let entries = [];
  let receivedAt = 0;
  let known = new Set();
  let stage = null; // the last stage snapshot
  let stageAt = 0;

  function headers() {
    const h = { Accept: "application/json" };
    if (config.hostSecret) h["X-Host-Secret"] = config.hostSecret;
    else h["X-CSRFToken"] = config.csrfToken;
    return h;
  }

  function call(path, body) {
    return request(config.urls.hostApi + path, { method: "POST", body, headers: headers() });
  }

  function say(text) {
    const el = $("host-message");
    if (el) el.textContent = text;
  }

  function toast(text) {
    const el = $("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (el.hidden = true), 6000);
  }

  async function act(button, path, done, body) {
    if (button) button.disabled = true;
    say("");
    try {
      const result = await call(path, body);
      if (done) say(done(result));
      return result;
    } catch (err) {
      say(err.message);
      return null;
    } finally {
      if (button) button.disabled = false;
    }
  }

  // --- the queue ----------------------------------------------------------------------------

  function waited(seconds) {
    if (seconds < 60) return "just now";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function renderQueue() {
    const list = $("lobby-list");
    if (!list) return;
    const elapsed = Math.floor((Date.now() - receivedAt) / 1000);
    list.replaceChildren();
    for (const entry of entries) {
      const item = document.createElement("li");
      item.className = "lobby-entry";
      item.dataset.entryId = entry.entry_id;
      const who = document.createElement("div");
      const name = document.createElement("strong");
      name.className = "lobby-name";
      name.textContent = entry.name;
      const meta = document.createElement("span");
      meta.className = "muted lobby-meta";
      meta.textContent = (entry.email ? entry.email + " · " : "") + "waiting " + waited(entry.waiting_seconds + elapsed);
      who.append(name, document.createElement("br"), meta);
      const admit = document.createElement("button");
      admit.type = "button";
      admit.className = "button primary small lobby-admit";
      admit.textContent = "Admit";
      admit.onclick = () => act(admit, "/waiting/" + encodeURIComponent(entry.entry_id) + "/admit", describe);
      const reject = document.createElement("button");
      reject.type = "button";
      reject.className = "button small lobby-reject";
      reject.textContent = "Reject";
      reject.onclick = () => act(reject, "/waiting/" + encodeURIComponent(entry.entry_id) + "/reject", describe);
      item.append(who, admit, reject);
      list.append(item);
    }
    $("lobby-count").textContent = String(entries.length);
    $("lobby-empty").hidden = entries.length > 0;
    $("admit-all").disabled = entries.length === 0;
    $("reject-all").disabled = entries.length === 0;
  }

  function describe(result) {
    const parts = [];
    if (result.admitted && result.admitted.length) parts.push(result.admitted.length + " let in");
    const refused = (result.rejected || []).filter((r) => r.reason && !r.reason.startsWith("The host"));
    if (refused.length) parts.push(refused.length + " turned away: " + refused[0].reason);
    else if (result.rejected && result.rejected.length) parts.push(result.rejected.length + " turned away");
    return parts.join("; ");
  }

  function onSnapshot(message) {
    entries = message.entries || [];
    receivedAt = Date.now();
    const fresh = entries.filter((e) => !known.has(e.entry_id));
    known = new Set(entries.map((e) => e.entry_id));
    if (fresh.length && document.getElementById("join-app").dataset.state === "meeting") {
      toast(fresh.length === 1 ? fresh[0].name + " is asking to join" : fresh.length + " people are asking to join");
    }
    document.title = (entries.length ? "(" + entries.length + ") " : "") + document.title.replace(/^\(\d+\) /, "");
    const start = $("host-start");
    if (start) start.hidden = message.room_status !== "scheduled";
    renderQueue();
  }

  // --- the stage (webinar rooms) ------------------------------------------------------------

  function ago(seconds) {
    return seconds < 60 ? "raised just now" : "raised " + waited(seconds) + " ago";
  }

  function smallButton(text, className, onclick) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button small " + className;
    button.textContent = text;
    button.onclick = () => onclick(button);
    return button;
  }

  function personPath(identity, action) {
    return "/stage/" + encodeURIComponent(identity) + "/" + action;
  }

  const DONE = {
    invite: (name) => "Invited " + name + " to speak",
    promote: (name) => name + " is on stage",
    demote: (name) => name + " is back in the audience",
    remove: (name) => name + " was removed",
  };

  // With a waiting room, a removal may also ban: no asking again until the meeting ends.
  function askBan(name) {
    return !!config.waitingRoom && window.confirm("Also ban " + name + " from asking to join again until the meeting ends?");
  }

  function stageAction(identity, action, name, button, micOnly) {
    if (action === "remove" && !window.confirm("Remove " + name + " from the meeting?")) return null;
    let body = action === "invite" || action === "promote" ? { mic_only: !!micOnly } : undefined;
    if (action === "remove") body = { ban: askBan(name) };
    return act(button || null, personPath(identity, action), () => DONE[action](name), body);
  }

  function renderStage() {
    const list = $("hands-list");
    if (!list || !stage) return;
    const elapsed = Math.floor((Date.now() - stageAt) / 1000);
    const invited = new Set(stage.invited.map((p) => p.identity));
    list.replaceChildren();
    for (const hand of stage.hands) {
      const item = document.createElement("li");
      item.className = "lobby-entry hand-entry";
      item.dataset.identity = hand.identity;
      const who = document.createElement("div");
      const name = document.createElement("strong");
      name.className = "hand-name";
      name.textContent = hand.position + ". " + hand.name;
      const meta = document.createElement("span");
      meta.className = "muted lobby-meta hand-meta";
      meta.textContent = ago(hand.waiting_seconds + elapsed);
      who.append(name, document.createElement("br"), meta);
      if (invited.has(hand.identity)) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "invited";
        who.append(" ", tag);
      }
      const actions = document.createElement("div");
      actions.className = "hand-actions";
      const invite = smallButton("Invite", "hand-invite", (b) => stageAction(hand.identity, "invite", hand.name, b));
      invite.disabled = invited.has(hand.identity);
      actions.append(
        invite,
        smallButton("Promote", "primary hand-promote", (b) => stageAction(hand.identity, "promote", hand.name, b)),
        smallButton("Mic only", "hand-promote-mic", (b) => stageAction(hand.identity, "promote", hand.name, b, true))
      );
      item.append(who, actions);
      list.append(item);
    }
    $("hands-count").textContent = String(stage.hands_total);
    $("hands-empty").hidden = stage.hands.length > 0;
    $("lower-all-hands").disabled = stage.hands.length === 0;

    const speakers = $("speakers-list");
    speakers.replaceChildren();
    for (const person of stage.speakers) {
      const item = document.createElement("li");
      item.className = "lobby-entry speaker-entry";
      item.dataset.identity = person.identity;
      const who = document.createElement("div");
      const name = document.createElement("strong");
      name.className = "speaker-name";
      name.textContent = person.name || person.identity;
      who.append(name);
      if (person.mic_only) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "mic only";
        who.append(" ", tag);
      }
      const label = person.name || person.identity;
      const actions = document.createElement("div");
      actions.className = "hand-actions";
      actions.append(smallButton("Demote", "speaker-demote", (b) => stageAction(person.identity, "demote", label, b)));
      if (config.hostControls.kick_participants) {
        actions.append(smallButton("Remove", "speaker-remove", (b) => stageAction(person.identity, "remove", label, b)));
      }
      item.append(who, actions);
      speakers.append(item);
    }
    const cap = stage.max_speakers;
    $("speakers-count").textContent = String(stage.speakers.length) + (cap ? " / " + cap : "");
    $("speakers-empty").hidden = stage.speakers.length > 0;
  }

  let knownHands = null;

  function onStage(message) {
    const fresh = knownHands === null ? [] : message.hands.filter((h) => !knownHands.has(h.identity));
    knownHands = new Set(message.hands.map((h) => h.identity));
    stage = message;
    stageAt = Date.now();
    if (fresh.length && document.getElementById("join-app").dataset.state === "meeting") {
      toast(fresh.length === 1 ? fresh[0].name + " raised a hand" : fresh.length + " people raised a hand");
    }
    renderStage();
  }

  function connect() {
    socket = reconnectingSocket(config.urls.wsHost, { onMessage, onClose });
  }

  function onClose(event) {
    if (event.code === 4403) {
      say("You are no longer a host of this room.");
      return false;
    }
    return true;
  }

  function onMessage(message) {
    if (message.type === "lobby") onSnapshot(message);
    else if (message.type === "stage") onStage(message);
    else if (message.type === "stage.declined") {
      const text = (message.name || "A guest") + " declined the invitation to speak";
      say(text);
      toast(text);
    }
  }

  // --- actions ------------------------------------------------------------------------------

  function bind(id, handler) {
    const el = $(id);
    if (el) el.addEventListener("click", () => handler(el));
  }

  function init(pageConfig) {
    config = pageConfig;
    bind("admit-all", (el) => act(el, "/waiting/admit-all", describe));
    bind("reject-all", (el) => act(el, "/waiting/reject-all", describe));
    bind("host-mute-all", (el) => act(el, "/mute-all", (r) => (r.muted ? r.muted + " microphones muted" : "No one to mute")));
    bind("host-disable-video", (el) =>
      act(el, "/disable-video", (r) => (r.muted ? r.muted + " cameras turned off" : "No cameras to turn off"))
    );
    bind("lower-all-hands", (el) =>
      act(el, "/stage/hands/lower-all", (r) => (r.lowered === 1 ? "1 hand lowered" : r.lowered + " hands lowered"))
    );
    bind("host-end", (el) => {
      if (!window.confirm("End the meeting for everyone?")) return;
      act(el, "/end", () => "The meeting has ended");
    });
    bind("host-start-button", async (el) => {
      const room = await act(el, "/start", () => "The meeting has started");
      if (room) emit("room-opened", room);
    });
    connect();
    setInterval(() => {
      renderQueue(); // waiting times
      renderStage();
      // Ask for a fresh queue now and then: entries whose page never connected expire
      // without an event.
      if (socket) socket.send({ type: "refresh" });
    }, 15000);
  }

  function removeParticipant(identity, name) {
    // Webinar rooms remove through the stage, which also forgets a hand or an invitation.
    if (config.webinar) return stageAction(identity, "remove", name);
    if (!window.confirm("Remove " + name + " from the meeting?")) return;
    const ban = askBan(name);
    act(null, "/participants/" + encodeURIComponent(identity) + "/remove", () => name + (ban ? " was removed and banned" : " was removed"), { ban });
  }

  // The meeting's tiles and audience list ask for host actions with parley:host-action.
  on("host-action", ({ action, identity, name }) => {
    if (!config) return;
    if (action === "remove") removeParticipant(identity, name);
    else stageAction(identity, action, name);
  });

  const pageConfig = JSON.parse(document.getElementById("parley-config").textContent);
  if (pageConfig.isHost) init(pageConfig);
})();
