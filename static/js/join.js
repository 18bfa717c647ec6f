/* Parley join page: room state, access checks, pre-join (devices, preview, microphone level)
 * and the waiting room. The meeting itself is static/js/meeting.js; host tools host.js.
 * Talks to them through parley:* events: it emits `meeting-start` and hears `meeting-left`,
 * `meeting-error` and `room-opened`; it announces each view with `view`.
 *
 * Every string that came from a user (names, messages) is written with textContent. */
import { emit, initials, levelMeter, on, reconnectingSocket, request, wsUrl } from "./parley.js";

(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("parley-config").textContent);
  const app = document.getElementById("join-app");
  const $ = (id) => document.getElementById(id);
  const media = config.media;
  const allowsCamera = media.type !== "audio";
  const allowsMic = media.type !== "video";

  // --- helpers --------------------------------------------------------------------------

  function show(view) {
    app.dataset.state = view;
    for (const section of app.querySelectorAll(":scope > [data-view]")) {
      section.hidden = section.dataset.view !== view;
    }
    emit("view", view);
  }

  function api(url, body) {
    const headers = body === undefined ? {} : { "X-CSRFToken": config.csrfToken };
    return request(url, { body, headers });
  }

  function setText(id, text) {
    const el = $(id);
    if (el) el.textContent = text || "";
  }

  for (const el of document.querySelectorAll('[data-needs="camera"]')) el.hidden = !allowsCamera;
  for (const el of document.querySelectorAll('[data-needs="microphone"]')) el.hidden = !allowsMic;

  // --- routing between views ------------------------------------------------------------

  function route() {
    if (config.status === "ended") return show("ended");
    if (config.status === "scheduled") return showScheduled();
    if (config.full) return show("full");
    if (!config.isHost && !config.access.granted) return showAccess(config.access);
    return showPrejoin();
  }

  function applyError(err, fallbackView) {
    switch (err.code) {
      case "ROOM_ENDED":
        config.status = "ended";
        return route();
      case "ROOM_NOT_STARTED":
        config.status = "scheduled";
        return refreshState();
      case "ROOM_FULL":
        config.full = true;
        return route();
      case "PASSWORD_REQUIRED":
      case "EMAIL_VERIFICATION_REQUIRED":
      case "NOT_ON_GUEST_LIST":
      case "LOGIN_REQUIRED":
        config.access = { granted: false, needs: err.code, message: err.message };
        return route();
      default:
        if (fallbackView) {
          setText("error-message", err.message);
          show(fallbackView);
        }
        return null;
    }
  }

  async function refreshState() {
    try {
      const state = await api(config.urls.state);
      config.status = state.status;
      config.full = state.full;
      config.startsAt = state.starts_at || config.startsAt;
    } catch (err) {
      /* keep what we know */
    }
    route();
  }

  // --- the room's status socket: opens scheduled rooms, notices ends --------------------

  // "This meeting is being recorded": pushed on the status socket to every page of the room.
  function showRecording(message) {
    const indicator = document.getElementById("rec-indicator");
    if (!indicator) return;
    const recording = Boolean(message.recording);
    const streaming = Boolean(message.streaming);
    indicator.hidden = !(recording || streaming);
    document.getElementById("rec-indicator-text").textContent = recording
      ? "This meeting is being recorded" + (streaming ? " and streamed live" : "")
      : "This meeting is being streamed live";
  }

  function watchStatus() {
    if (config.status === "ended") return;
    reconnectingSocket(config.urls.wsStatus, { onMessage: onStatus, onClose: (event) => event.code !== 4404 });
  }

  function onStatus(message) {
    if (message.type !== "room") return;
    showRecording(message);
    const before = config.status;
    config.status = message.status;
    if (message.starts_at) config.startsAt = message.starts_at;
    const view = app.dataset.state;
    const inProgress = ["meeting", "waiting", "left", "rejected"].includes(view);
    if (message.status === "ended" && !inProgress) return route();
    if (before === "scheduled" && message.status !== "scheduled") return route();
  }

  // --- scheduled rooms: local start time and countdown ----------------------------------

  let countdownTimer = null;

  function showScheduled() {
    show("scheduled");
    const startsEl = $("starts-at");
    if (!config.startsAt || !startsEl) return;
    const start = new Date(config.startsAt);
    startsEl.textContent = start.toLocaleString(undefined, {
      weekday: "long",
      day: "numeric",
      month: "long",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
    try {
      setText("starts-zone", " (" + Intl.DateTimeFormat().resolvedOptions().timeZone + ")");
    } catch (err) {
      /* no zone name */
    }
    clearInterval(countdownTimer);
    let nudged = 0;
    const tick = () => {
      if (config.status !== "scheduled") {
        clearInterval(countdownTimer);
        return;
      }
      const left = Math.round((start.getTime() - Date.now()) / 1000);
      if (left > 0) {
        setText("countdown", "Starts in " + formatDuration(left));
        return;
      }
      setText("countdown", "Starting any moment now…");
      // Past the start: ask every few seconds, in case an event was missed.
      if (Date.now() - nudged > 5000) {
        nudged = Date.now();
        if (statusSocket && statusSocket.readyState === WebSocket.OPEN) {
          statusSocket.send(JSON.stringify({ type: "refresh" }));
        } else {
          refreshState();
        }
      }
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
  }

  function formatDuration(seconds) {
    const d = Math.floor(seconds / 86400);
    const h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    const parts = [];
    if (d) parts.push(d + (d === 1 ? " day" : " days"));
    if (d || h) parts.push(h + " h");
    if (d || h || m) parts.push(String(m).padStart(d || h ? 2 : 1, "0") + " min");
    if (!d) parts.push(String(s).padStart(2, "0") + " s");
    return parts.join(" ");
  }

  // --- access: password, email code, sign-in ----------------------------------------------

  function showAccess(access) {
    if (access.needs === "PASSWORD_REQUIRED") {
      show("password");
      $("password-input").focus();
    } else if (access.needs === "EMAIL_VERIFICATION_REQUIRED") {
      show("email");
      $("email-input").focus();
    } else if (access.needs === "NOT_ON_GUEST_LIST") {
      show("email");
      $("email-form").hidden = false;
      $("code-form").hidden = true;
      setText("email-error", access.message);
    } else if (access.needs === "LOGIN_REQUIRED") {
      show("login");
    } else {
      setText("denied-message", access.message);
      show("denied");
    }
  }

  function granted() {
    config.access = { granted: true, needs: null, message: "" };
    route();
  }

  function busy(form, on) {
    for (const el of form.querySelectorAll("button, input")) el.disabled = on;
  }

  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const input = $("password-input");
    if (!input.value) {
      setText("password-error", "Enter the password");
      return;
    }
    busy(form, true);
    setText("password-error", "");
    try {
      await api(config.urls.password, { password: input.value });
      input.value = "";
      busy(form, false);
      granted();
    } catch (err) {
      busy(form, false);
      if (["ROOM_ENDED", "ROOM_NOT_STARTED", "ROOM_FULL"].includes(err.code)) {
        applyError(err, null);
        return;
      }
      setText("password-error", err.message);
      input.select();
      if (err.code === "TOO_MANY_ATTEMPTS") {
        // Locked out: the message says for how long; let them try again in a minute.
        busy(form, true);
        setTimeout(() => busy(form, false), 60 * 1000);
      }
    }
  });

  let pendingEmail = "";

  $("email-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const email = $("email-input").value.trim();
    if (!email) {
      setText("email-error", "Enter your email address");
      return;
    }
    busy(form, true);
    setText("email-error", "");
    try {
      const sent = await api(config.urls.email, { email });
      pendingEmail = sent.email;
      setText("code-email", sent.email);
      form.hidden = true;
      $("code-form").hidden = false;
      setText("code-error", "");
      $("code-input").value = "";
      $("code-input").focus();
    } catch (err) {
      setText("email-error", err.message);
    } finally {
      busy(form, false);
    }
  });

  $("code-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    busy(form, true);
    setText("code-error", "");
    try {
      const result = await api(config.urls.code, { email: pendingEmail, code: $("code-input").value });
      config.access.email = result.email;
      busy(form, false);
      granted();
    } catch (err) {
      busy(form, false);
      setText("code-error", err.message);
    }
  });

  $("code-back").addEventListener("click", () => {
    $("code-form").hidden = true;
    $("email-form").hidden = false;
    $("email-input").focus();
  });

  $("full-retry").addEventListener("click", refreshState);

  // --- pre-join: devices, preview, level meter --------------------------------------------

  const prefs = {
    mic: allowsMic,
    cam: allowsCamera && !media.audioOnly,
    micId: localStorage.getItem("parley.micId") || "",
    camId: localStorage.getItem("parley.camId") || "",
  };
  let previewStream = null;
  let audioContext = null;
  let stopMeter = null;
  let prejoinStarted = false;

  function ensureAudioContext() {
    // Browsers only let audio start from a user gesture: this runs on clicks and keys.
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    if (!audioContext) audioContext = new Ctx();
    if (audioContext.state === "suspended") audioContext.resume().catch(() => {});
    return audioContext;
  }

  function renderPreview() {
    const video = $("preview-video");
    const hasVideo = previewStream && previewStream.getVideoTracks().length > 0;
    video.hidden = !hasVideo;
    video.srcObject = hasVideo ? new MediaStream(previewStream.getVideoTracks()) : null;
    const avatar = $("preview-avatar");
    avatar.hidden = hasVideo;
    avatar.textContent = initials($("name-input").value || config.user.name || "You");
    let note = "";
    if (!allowsCamera) note = "This is an audio-only meeting.";
    else if (!prefs.cam) note = media.audioOnly ? "Camera starts off in this meeting." : "Camera is off.";
    setText("preview-note", note);
    const micButton = $("pre-mic");
    micButton.setAttribute("aria-pressed", String(prefs.mic));
    micButton.textContent = prefs.mic ? "Mic on" : "Mic off";
    micButton.classList.toggle("off", !prefs.mic);
    const camButton = $("pre-cam");
    camButton.setAttribute("aria-pressed", String(prefs.cam));
    camButton.textContent = prefs.cam ? "Camera on" : "Camera off";
    camButton.classList.toggle("off", !prefs.cam);
  }

  function stopPreview() {
    if (stopMeter) stopMeter();
    stopMeter = null;
    setLevel(0);
    if (previewStream) {
      for (const track of previewStream.getTracks()) track.stop();
      previewStream = null;
    }
  }

  function setLevel(level) {
    const bar = $("mic-meter");
    bar.style.width = Math.round(Math.min(1, level) * 100) + "%";
    bar.dataset.level = level.toFixed(3);
    bar.parentElement.setAttribute("aria-valuenow", level.toFixed(2));
  }

  function startMeter() {
    const audioTracks = previewStream ? previewStream.getAudioTracks() : [];
    if (!audioTracks.length) return;
    const ctx = ensureAudioContext();
    if (!ctx) return;
    if (stopMeter) stopMeter();
    stopMeter = levelMeter(ctx, audioTracks, setLevel);
  }

  function deviceProblem(err) {
    if (!err) return "";
    if (err.name === "NotAllowedError") {
      return "Your browser blocked the camera and microphone. Allow them in the address bar, then reload.";
    }
    if (err.name === "NotFoundError" || err.name === "OverconstrainedError") {
      return "No camera or microphone was found. You can still join and listen.";
    }
    if (err.name === "NotReadableError") {
      return "Your camera or microphone is in use by another app.";
    }
    return "Could not start your camera or microphone (" + err.name + ").";
  }

  async function startPreview() {
    stopPreview();
    const audio = allowsMic && prefs.mic ? (prefs.micId ? { deviceId: { exact: prefs.micId } } : true) : false;
    const video =
      allowsCamera && prefs.cam
        ? Object.assign({ width: { ideal: 1280 }, height: { ideal: 720 } }, prefs.camId ? { deviceId: { exact: prefs.camId } } : {})
        : false;
    setText("device-error", "");
    if ((audio || video) && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
      try {
        previewStream = await navigator.mediaDevices.getUserMedia({ audio, video });
      } catch (err) {
        if (err.name === "OverconstrainedError" && (prefs.micId || prefs.camId)) {
          prefs.micId = "";
          prefs.camId = "";
          return startPreview();
        }
        setText("device-error", deviceProblem(err));
      }
    } else if (audio || video) {
      setText("device-error", "This browser cannot use a camera or microphone here (it needs HTTPS).");
    }
    renderPreview();
    startMeter();
    await listDevices();
  }

  async function listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch (err) {
      return;
    }
    fillSelect($("mic-select"), devices.filter((d) => d.kind === "audioinput"), "Microphone", currentId("audio") || prefs.micId);
    fillSelect($("camera-select"), devices.filter((d) => d.kind === "videoinput"), "Camera", currentId("video") || prefs.camId);
  }

  function currentId(kind) {
    if (!previewStream) return "";
    const track = kind === "audio" ? previewStream.getAudioTracks()[0] : previewStream.getVideoTracks()[0];
    return track && track.getSettings ? track.getSettings().deviceId || "" : "";
  }

  function fillSelect(select, devices, label, selected) {
    select.replaceChildren();
    devices.forEach((device, i) => {
      const option = document.createElement("option");
      option.value = device.deviceId;
      option.textContent = device.label || label + " " + (i + 1);
      option.selected = device.deviceId === selected;
      select.append(option);
    });
    select.disabled = devices.length === 0;
    if (!devices.length) {
      const option = document.createElement("option");
      option.textContent = "None found";
      select.append(option);
    }
  }

  $("mic-select").addEventListener("change", (event) => {
    prefs.micId = event.target.value;
    localStorage.setItem("parley.micId", prefs.micId);
    startPreview();
  });
  $("camera-select").addEventListener("change", (event) => {
    prefs.camId = event.target.value;
    localStorage.setItem("parley.camId", prefs.camId);
    startPreview();
  });
  $("pre-mic").addEventListener("click", () => {
    prefs.mic = !prefs.mic;
    startPreview();
  });
  $("pre-cam").addEventListener("click", () => {
    prefs.cam = !prefs.cam;
    startPreview();
  });
  $("name-input").addEventListener("input", () => {
    $("preview-avatar").textContent = initials($("name-input").value || "You");
  });
  // Any gesture lets a suspended audio context (the level meter) run.
  for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, () => ensureAudioContext(), { passive: true });
  }
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener("devicechange", () => listDevices());
  }

  function showPrejoin() {
    show("prejoin");
    const nameInput = $("name-input");
    if (!nameInput.value) nameInput.value = localStorage.getItem("parley.name") || config.user.name || "";
    if (!prejoinStarted || !previewStream) {
      prejoinStarted = true;
      startPreview();
    } else {
      renderPreview();
    }
    if (!nameInput.value) nameInput.focus();
  }

  // --- joining ----------------------------------------------------------------------------

  let joinName = "";

  $("join-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    ensureAudioContext(); // inside the click: lets the meeting's audio start
    const button = $("join-button");
    const name = $("name-input").value.trim();
    setText("join-error", "");
    if (!name) {
      setText("join-error", "Enter your name so others know who you are");
      $("name-input").focus();
      return;
    }
    button.disabled = true;
    try {
      const result = await api(config.urls.join, { name });
      joinName = name;
      localStorage.setItem("parley.name", name);
      if (result.status === "waiting") enterLobby(result);
      else enterMeeting(result);
    } catch (err) {
      if (applyError(err, null) === null) setText("join-error", err.message);
    } finally {
      button.disabled = false;
    }
  });

  // --- the waiting room ---------------------------------------------------------------------

  let lobby = null;

  function enterLobby(entry) {
    app.dataset.lobby = "connecting";
    show("waiting");
    lobby = { entry, decided: false, socket: null, retries: 0 };
    openLobbySocket(lobby);
  }

  function openLobbySocket(current) {
    const socket = new WebSocket(wsUrl(config.urls.wsLobby + encodeURIComponent(current.entry.entry_id)));
    current.socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (lobby !== current) return;
      switch (message.type) {
        case "waiting":
          current.retries = 0;
          app.dataset.lobby = "connected";
          return;
        case "admitted":
          current.decided = true;
          socket.close();
          return enterMeeting(message);
        case "rejected":
          current.decided = true;
          setText("rejected-message", message.message);
          stopPreview();
          return show("rejected");
        case "ended":
          current.decided = true;
          config.status = "ended";
          stopPreview();
          return route();
        case "error":
          current.decided = true;
          if (applyError({ code: message.code, message: message.message }, null) === null) {
            setText("join-error", message.message);
            showPrejoin();
          }
          return;
        default: // "gone": the entry left the queue (e.g. after a network drop)
          current.decided = true;
          return askAgain(current);
      }
    };
    socket.onclose = () => {
      if (lobby !== current || current.decided) return;
      // Our entry leaves the queue when the socket drops: ask again.
      askAgain(current);
    };
  }

  async function askAgain(current) {
    if (current.retries >= 3) {
      setText("join-error", "Lost the connection to the waiting room. Try again.");
      return showPrejoin();
    }
    current.retries += 1;
    await new Promise((resolve) => setTimeout(resolve, 1000 * current.retries));
    try {
      const result = await api(config.urls.join, { name: joinName });
      if (result.status === "waiting") {
        lobby = { entry: result, decided: false, socket: null, retries: current.retries };
        openLobbySocket(lobby);
      } else {
        enterMeeting(result);
      }
    } catch (err) {
      if (applyError(err, null) === null) {
        setText("join-error", err.message);
        showPrejoin();
      }
    }
  }

  $("lobby-cancel").addEventListener("click", async () => {
    if (!lobby) return showPrejoin();
    const current = lobby;
    current.decided = true;
    lobby = null;
    if (current.socket) current.socket.close();
    try {
      await api(config.urls.lobbyLeave + encodeURIComponent(current.entry.entry_id) + "/leave", {});
    } catch (err) {
      /* the socket closing already took us out */
    }
    showPrejoin();
  });

  // --- the meeting ------------------------------------------------------------------------

  function enterMeeting(tokenResponse) {
    const choices = Object.assign({}, prefs);
    stopPreview();
    show("meeting");
    emit("meeting-start", { config, token: tokenResponse, prefs: choices, audioContext });
  }

  on("meeting-left", (reason) => {
    const titles = {
      ended: "The meeting has ended",
      removed: "You were removed from the meeting",
      duplicate: "You joined from another tab",
      left: "You left the meeting",
      lost: "You were disconnected",
    };
    setText("left-title", titles[reason] || titles.left);
    $("rejoin").hidden = reason === "ended" || reason === "removed";
    if (reason === "ended") config.status = "ended";
    show("left");
  });

  on("meeting-error", (err) => {
    setText("error-message", err.message);
    show("error");
  });

  // A host started the room from this page (host.js).
  on("room-opened", () => {
    config.status = "open";
    route();
  });

  $("rejoin").addEventListener("click", () => refreshState());
  $("error-retry").addEventListener("click", () => refreshState());

  route();
  watchStatus();
})();
