/* Parley meeting view on livekit-client: tiles (video or avatar, name, speaking, mute state),
 * microphone/camera/screen-share/chat controls as the room allows, reconnecting state, and
 * remote audio playback (local audio is never played). Host actions go through Parley's
 * server (host.js); this token carries no admin grant.
 *
 * Webinar rooms: the audience is listed apart from the stage's tiles, with a raised-hand
 * marker read from the `hand` attribute the server writes; an audience member raises or
 * lowers a hand and answers an invitation to speak through Parley's server (authorised by
 * its join token), and hears of an invitation over its stage socket. The controls follow
 * the local participant's LiveKit permissions: promotion shows the microphone (and camera
 * unless microphone-only) without reconnecting; demotion takes them away.
 *
 * The guest's own stage controls (hand, invitation, stage socket) are stage.js.
 *
 * Events: hears `parley:meeting-start` ({config, token, prefs, audioContext}); emits
 * `meeting-left` (why), `meeting-error` (Error), `host-action` ({action, identity, name})
 * for host.js, and `stage-start` / `stage-stop` / `stage-hide-invite` for stage.js. */
import { emit, initials, on } from "./parley.js";

(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  // video_quality -> capture and publish presets (simulcast layers below the top one).
  const QUALITY = {
    low: { top: "h360", layers: ["h180"] },
    medium: { top: "h540", layers: ["h180", "h360"] },
    high: { top: "h720", layers: ["h180", "h360"] },
    hd: { top: "h1080", layers: ["h360", "h720"] },
  };
  const HOST_ROLES = ["owner", "host"];
  const STAGE_ROLES = ["owner", "host", "speaker"];
  const SOURCE_NUMBERS = { camera: 1, microphone: 2, screen_share: 3 }; // LiveKit TrackSource

  let current = null; // one meeting per page

  function roomOptions(LK, media, prefs) {
    const quality = QUALITY[media.videoQuality] || QUALITY.high;
    const top = LK.VideoPresets[quality.top];
    return {
      adaptiveStream: true,
      dynacast: true,
      disconnectOnPageLeave: true,
      videoCaptureDefaults: Object.assign(
        { resolution: top.resolution },
        prefs.camId ? { deviceId: prefs.camId } : {}
      ),
      audioCaptureDefaults: Object.assign(
        { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        prefs.micId ? { deviceId: prefs.micId } : {}
      ),
      publishDefaults: {
        simulcast: true,
        videoEncoding: top.encoding,
        videoSimulcastLayers: quality.layers.map((name) => LK.VideoPresets[name]),
        dtx: true,
        red: true,
      },
    };
  }

  function start(options) {
    const LK = window.LivekitClient;
    if (!LK) {
      emit("meeting-error", new Error("The meeting software did not load. Reload the page."));
      return;
    }
    if (current) current.stop();
    current = new Meeting(LK, options);
    current.connect();
  }

  class Meeting {
    constructor(LK, options) {
      this.LK = LK;
      this.config = options.config;
      this.media = options.config.media;
      this.token = options.token;
      this.prefs = options.prefs;
      this.onLeft = (why) => emit("meeting-left", why);
      this.onError = (err) => emit("meeting-error", err);
      this.tiles = new Map(); // key -> {el, video, name, badge, mic, remove}
      this.leaving = false;
      this.allowsCamera = this.media.type !== "audio";
      this.allowsMic = this.media.type !== "video";
      this.allowsScreen =
        this.media.screenShare && !!navigator.mediaDevices && !!navigator.mediaDevices.getDisplayMedia;
      // Webinar stage: the stored role (the token's, then the server's), own hand, invite.
      this.webinar = !!this.config.webinar;
      this.role = this.token.role || "participant";
      this.hand = false;
      this.audience = new Map(); // key -> {el, name, hand, actions}
      this.room = new LK.Room(roomOptions(LK, this.media, this.prefs));
      this.wasOnStage = this.onStage();
      this.bindRoom();
      this.bindControls();
    }

    // --- connection ---------------------------------------------------------------------

    async connect() {
      this.status("Connecting…");
      try {
        await this.room.connect(this.token.ws_url, this.token.token, { autoSubscribe: true });
      } catch (err) {
        if (this.leaving) return;
        this.status("");
        const detail = err && err.message ? " Details: " + err.message : "";
        this.onError(new Error("Could not connect to the media server. Check your network and try again." + detail));
        return;
      }
      this.status("");
      this.room.startAudio().catch(() => {}); // may need a click: see AudioPlaybackStatusChanged
      this.wasOnStage = this.onStage();
      this.renderAll();
      this.updateControls();
      this.startStage();
      await this.publishChoices();
      this.updateAudioButton();
    }

    async publishChoices() {
      // The audience of a webinar publishes nothing: it joins watching and listening.
      const lp = this.room.localParticipant;
      try {
        if (this.allowsMic && this.prefs.mic && this.canPublish("microphone")) {
          await lp.setMicrophoneEnabled(true);
        }
      } catch (err) {
        this.toast("Could not turn on your microphone: " + err.message);
      }
      try {
        if (this.allowsCamera && this.prefs.cam && this.canPublish("camera")) {
          await lp.setCameraEnabled(true);
        }
      } catch (err) {
        this.toast("Could not turn on your camera: " + err.message);
      }
      this.updateControls();
    }

    stop() {
      this.leaving = true;
      emit("stage-stop");
      this.room.disconnect();
    }

    status(text) {
      const pill = $("conn-status");
      pill.textContent = text;
      pill.hidden = !text;
    }

    toast(text) {
      const toast = $("toast");
      toast.textContent = text;
      toast.hidden = false;
      clearTimeout(this.toastTimer);
      this.toastTimer = setTimeout(() => (toast.hidden = true), 5000);
    }

    // --- room events --------------------------------------------------------------------

    bindRoom() {
      const E = this.LK.RoomEvent;
      const room = this.room;
      room
        .on(E.ParticipantConnected, (p) => this.renderParticipant(p))
        .on(E.ParticipantDisconnected, (p) => this.removeParticipant(p))
        .on(E.TrackSubscribed, (track, pub, p) => {
          if (track.kind === "audio") {
            $("audio-sink").append(track.attach()); // remote audio only
          }
          this.renderParticipant(p);
        })
        .on(E.TrackUnsubscribed, (track, pub, p) => {
          track.detach().forEach((el) => el.remove());
          this.renderParticipant(p);
        })
        .on(E.TrackMuted, (pub, p) => {
          this.renderParticipant(p);
          if (p === room.localParticipant) {
            this.updateControls();
            if (pub.source === "microphone") this.toast("Your microphone was muted");
          }
        })
        .on(E.TrackUnmuted, (pub, p) => {
          this.renderParticipant(p);
          if (p === room.localParticipant) this.updateControls();
        })
        .on(E.TrackPublished, (pub, p) => this.renderParticipant(p))
        .on(E.TrackUnpublished, (pub, p) => this.renderParticipant(p))
        .on(E.LocalTrackPublished, () => {
          this.renderParticipant(room.localParticipant);
          this.updateControls();
        })
        .on(E.LocalTrackUnpublished, () => {
          this.renderParticipant(room.localParticipant);
          this.updateControls();
        })
        .on(E.ActiveSpeakersChanged, (speakers) => {
          const speaking = new Set(speakers.map((p) => p.identity));
          for (const [key, tile] of this.tiles) {
            tile.el.classList.toggle("speaking", !key.endsWith(":screen") && speaking.has(key));
          }
        })
        .on(E.ParticipantNameChanged, (name, p) => p && this.renderParticipant(p))
        .on(E.ParticipantAttributesChanged, (changed, p) => {
          // The local participant's own changes are handled below, on the participant.
          if (p && p !== room.localParticipant) this.renderParticipant(p);
        })
        .on(E.Reconnecting, () => this.reconnecting(true))
        .on(E.SignalReconnecting, () => this.reconnecting(true))
        .on(E.Reconnected, () => this.reconnecting(false))
        .on(E.AudioPlaybackStatusChanged, () => this.updateAudioButton())
        .on(E.MediaDevicesError, (err) => this.toast("Device problem: " + err.message))
        .on(E.ChatMessage, (message, participant) => this.addChat(message, participant))
        .on(E.Disconnected, (reason) => this.disconnected(reason));
      // The server changes this participant's permissions (promotion, demotion) and its
      // attributes (role, hand) live, through LiveKit: listen on the participant itself.
      const P = this.LK.ParticipantEvent;
      room.localParticipant
        .on(P.ParticipantPermissionsChanged, () => this.permissionsChanged())
        .on(P.AttributesChanged, () => this.attributesChanged());
    }

    // --- the stage (webinar rooms) ------------------------------------------------------

    onStage() {
      return this.canPublish("microphone") || this.canPublish("camera");
    }

    permissionsChanged() {
      const was = this.wasOnStage;
      const now = this.onStage();
      this.wasOnStage = now;
      if (!was && now) {
        this.hand = false;
        emit("stage-hide-invite");
        this.toast("You're on stage. Turn on your microphone when you're ready to speak.");
      } else if (was && !now) {
        this.leaveStage();
        if (this.webinar) this.toast("You're back in the audience.");
      }
      this.updateControls();
      this.renderParticipant(this.room.localParticipant);
    }

    attributesChanged() {
      const attributes = this.room.localParticipant.attributes || {};
      if (attributes.role) this.role = attributes.role;
      this.hand = attributes.hand === "raised";
      this.updateControls();
      this.renderParticipant(this.room.localParticipant);
    }

    leaveStage() {
      // LiveKit unpublishes our tracks when publishing is revoked; stop them here too so
      // the camera light goes off at once.
      const lp = this.room.localParticipant;
      for (const pub of Array.from(lp.trackPublications.values())) {
        if (!pub.track) continue;
        try {
          Promise.resolve(lp.unpublishTrack(pub.track)).catch(() => {});
        } catch (err) {
          /* already gone */
        }
      }
    }

    currentToken() {
      // LiveKit hands a connected client fresh tokens; use the newest one we have.
      const engine = this.room.engine;
      return (engine && engine.token) || this.token.token;
    }

    stageSession() {
      // What the guest's own stage controls (stage.js) need from this meeting.
      return {
        config: this.config,
        allowsCamera: this.allowsCamera,
        allowsMic: this.allowsMic,
        token: () => this.currentToken(),
        onStage: () => this.onStage(),
        hand: () => this.hand,
        apply: (state) => {
          if (state.role) this.role = state.role;
          this.hand = !!state.hand_raised;
          this.updateControls();
        },
        toast: (text) => this.toast(text),
        updateControls: () => this.updateControls(),
      };
    }

    startStage() {
      // Audience pages of webinar rooms hear of invitations (hosts have their own socket).
      if (!this.webinar || this.finished || HOST_ROLES.includes(this.token.role)) return;
      emit("stage-start", this.stageSession());
    }

    reconnecting(on) {
      $("reconnecting").hidden = !on;
      this.status(on ? "Reconnecting…" : "");
    }

    disconnected(reason) {
      if (this.finished) return;
      this.finished = true;
      const R = this.LK.DisconnectReason || {};
      this.reconnecting(false);
      emit("stage-stop");
      for (const tile of this.tiles.values()) tile.el.remove();
      this.tiles.clear();
      for (const item of this.audience.values()) item.el.remove();
      this.audience.clear();
      if ($("audience")) $("audience").hidden = true;
      $("audio-sink").replaceChildren();
      $("chat-log").replaceChildren();
      let why = "left";
      if (reason === R.ROOM_DELETED || reason === R.ROOM_CLOSED) why = "ended";
      else if (reason === R.PARTICIPANT_REMOVED) why = "removed";
      else if (reason === R.DUPLICATE_IDENTITY) why = "duplicate";
      else if (!this.leaving && reason !== R.CLIENT_INITIATED) why = "lost";
      if (current === this) current = null;
      this.onLeft(why);
    }

    updateAudioButton() {
      const button = $("enable-audio");
      button.hidden = this.room.canPlaybackAudio;
    }

    // --- tiles --------------------------------------------------------------------------

    participants() {
      return [this.room.localParticipant, ...this.room.remoteParticipants.values()];
    }

    renderAll() {
      for (const p of this.participants()) this.renderParticipant(p);
    }

    tile(key, isScreen) {
      let tile = this.tiles.get(key);
      if (tile) return tile;
      const el = document.createElement("div");
      el.className = "tile" + (isScreen ? " tile-screen" : "");
      const video = document.createElement("video");
      video.autoplay = true;
      video.playsInline = true;
      video.muted = true; // video elements never play sound; audio has its own elements
      const avatar = document.createElement("div");
      avatar.className = "avatar";
      const label = document.createElement("div");
      label.className = "tile-label";
      const mic = document.createElement("span");
      mic.className = "tile-mic";
      const name = document.createElement("span");
      name.className = "tile-name";
      const badge = document.createElement("span");
      badge.className = "tile-badge";
      const hand = handMarker("tile-hand");
      label.append(mic, name, badge, hand);
      el.append(video, avatar, label);
      tile = { el, video, avatar, name, mic, badge, hand, remove: null, demote: null, track: null };
      const host = !isScreen && this.config.isHost;
      if (host && (this.config.hostControls.kick_participants || this.webinar)) {
        const actions = document.createElement("div");
        actions.className = "tile-actions";
        if (this.webinar) {
          tile.demote = tileButton("Move to audience", "tile-demote");
          actions.append(tile.demote);
        }
        if (this.config.hostControls.kick_participants) {
          tile.remove = tileButton("Remove", "tile-remove");
          actions.append(tile.remove);
        }
        el.append(actions);
      }
      $("tiles").append(el);
      this.tiles.set(key, tile);
      return tile;
    }

    isAudience(p) {
      if (!this.webinar) return false;
      if (p === this.room.localParticipant) return !this.onStage() && !HOST_ROLES.includes(this.role);
      const role = (p.attributes && p.attributes.role) || "";
      if (STAGE_ROLES.includes(role)) return false;
      return p.trackPublications.size === 0; // whoever publishes is on stage
    }

    renderParticipant(p) {
      if (!p) return;
      if (this.isAudience(p)) {
        this.dropTile(p.identity);
        this.dropTile(p.identity + ":screen");
        this.renderAudience(p);
        this.layout();
        return;
      }
      this.dropAudience(p.identity);
      const S = this.LK.Track.Source;
      const local = p === this.room.localParticipant;
      const role = (p.attributes && p.attributes.role) || (local ? this.role : "");
      const tile = this.tile(p.identity, false);
      tile.el.dataset.identity = p.identity;
      tile.el.classList.toggle("local", local);
      const name = p.name || (local ? this.token.name : "") || p.identity;
      tile.name.textContent = name + (local ? " (you)" : "");
      tile.avatar.textContent = initials(name);
      const badge = HOST_ROLES.includes(role) ? "Host" : this.webinar && role === "speaker" ? "Speaker" : "";
      tile.badge.textContent = badge;
      tile.badge.hidden = !badge;
      tile.hand.hidden = !(p.attributes && p.attributes.hand === "raised");
      const camera = p.getTrackPublication(S.Camera);
      const showVideo = this.allowsCamera && camera && camera.track && !camera.isMuted;
      this.attach(tile, showVideo ? camera.track : null);
      const micPub = p.getTrackPublication(S.Microphone);
      const micOn = !!(micPub && !micPub.isMuted);
      tile.mic.textContent = this.allowsMic ? (micOn ? "" : "Muted") : "";
      tile.mic.hidden = !this.allowsMic || micOn;
      tile.el.classList.toggle("muted", this.allowsMic && !micOn);
      tile.el.classList.toggle("speaking", p.isSpeaking && micOn);
      if (tile.remove) {
        tile.remove.hidden = local || HOST_ROLES.includes(role);
        tile.remove.onclick = () => emit("host-action", { action: "remove", identity: p.identity, name: p.name || p.identity });
      }
      if (tile.demote) {
        tile.demote.hidden = local || role !== "speaker";
        tile.demote.onclick = () => emit("host-action", { action: "demote", identity: p.identity, name: p.name || p.identity });
      }
      // Screen share gets its own tile.
      const screen = p.getTrackPublication(S.ScreenShare);
      const screenKey = p.identity + ":screen";
      if (screen && screen.track && !screen.isMuted) {
        const screenTile = this.tile(screenKey, true);
        screenTile.name.textContent = (p.name || p.identity) + " is presenting";
        screenTile.mic.hidden = true;
        screenTile.badge.hidden = true;
        this.attach(screenTile, screen.track);
      } else if (this.tiles.has(screenKey)) {
        this.dropTile(screenKey);
      }
      this.layout();
    }

    attach(tile, track) {
      if (tile.track === track) return;
      if (tile.track) tile.track.detach(tile.video);
      tile.track = track;
      if (track) track.attach(tile.video);
      tile.video.hidden = !track;
      tile.avatar.hidden = !!track;
    }

    dropTile(key) {
      const tile = this.tiles.get(key);
      if (!tile) return;
      if (tile.track) tile.track.detach(tile.video);
      tile.el.remove();
      this.tiles.delete(key);
    }

    removeParticipant(p) {
      this.dropTile(p.identity);
      this.dropTile(p.identity + ":screen");
      this.dropAudience(p.identity);
      this.layout();
    }

    // --- the audience of a webinar: a list, not tiles -----------------------------------

    renderAudience(p) {
      const local = p === this.room.localParticipant;
      let item = this.audience.get(p.identity);
      if (!item) {
        const el = document.createElement("li");
        el.className = "audience-member";
        const name = document.createElement("span");
        name.className = "audience-name";
        const hand = handMarker("audience-hand");
        el.append(hand, name);
        item = { el, name, hand, invite: null, remove: null };
        if (!local && this.config.isHost) {
          item.invite = tileButton("Invite to speak", "audience-invite");
          el.append(item.invite);
          if (this.config.hostControls.kick_participants) {
            item.remove = tileButton("Remove", "audience-remove");
            el.append(item.remove);
          }
        }
        $("audience-list").append(el);
        this.audience.set(p.identity, item);
      }
      const name = p.name || (local ? this.token.name : "") || p.identity;
      item.el.dataset.identity = p.identity;
      item.name.textContent = name + (local ? " (you)" : "");
      const raised = !!(p.attributes && p.attributes.hand === "raised");
      item.hand.hidden = !raised;
      item.el.classList.toggle("raised", raised);
      if (item.invite) item.invite.onclick = () => emit("host-action", { action: "invite", identity: p.identity, name });
      if (item.remove) item.remove.onclick = () => emit("host-action", { action: "remove", identity: p.identity, name });
      this.updateAudience();
    }

    dropAudience(key) {
      const item = this.audience.get(key);
      if (!item) return;
      item.el.remove();
      this.audience.delete(key);
      this.updateAudience();
    }

    updateAudience() {
      const aside = $("audience");
      if (!aside) return;
      aside.hidden = this.audience.size === 0;
      $("audience-count").textContent = String(this.audience.size);
    }

    layout() {
      const count = this.tiles.size;
      const columns = count <= 1 ? 1 : count <= 4 ? 2 : count <= 9 ? 3 : 4;
      $("tiles").style.setProperty("--columns", String(columns));
    }

    // --- controls -----------------------------------------------------------------------

    canPublish(source) {
      const perms = this.room.localParticipant.permissions;
      // Until LiveKit says, the token's role decides: audiences publish nothing.
      if (!perms) return !(this.role === "viewer" || (this.webinar && !STAGE_ROLES.includes(this.role)));
      if (!perms.canPublish) return false;
      const allowed = perms.canPublishSources || [];
      if (!allowed.length) return true;
      return allowed.includes(SOURCE_NUMBERS[source]) || allowed.includes(source);
    }

    bindControls() {
      const lp = () => this.room.localParticipant;
      this.showPublishControls();
      $("ctl-chat").hidden = !this.media.chat;
      $("ctl-mic").onclick = () => this.toggle(() => lp().setMicrophoneEnabled(!lp().isMicrophoneEnabled), "microphone");
      $("ctl-cam").onclick = () => this.toggle(() => lp().setCameraEnabled(!lp().isCameraEnabled), "camera");
      $("ctl-screen").onclick = () =>
        this.toggle(
          () => lp().setScreenShareEnabled(!lp().isScreenShareEnabled, { audio: this.media.type !== "video" }),
          "screen"
        );
      $("ctl-chat").onclick = () => {
        const chat = $("chat");
        chat.hidden = !chat.hidden;
        $("ctl-chat").setAttribute("aria-pressed", String(!chat.hidden));
        $("ctl-chat").classList.remove("unread");
        if (!chat.hidden) $("chat-input").focus();
      };
      $("ctl-leave").onclick = async () => {
        this.leaving = true;
        try {
          await this.room.disconnect();
        } finally {
          // Normally the Disconnected event got here first; this covers a room that never
          // finished connecting.
          this.disconnected(this.LK.DisconnectReason ? this.LK.DisconnectReason.CLIENT_INITIATED : 1);
        }
      };
      $("enable-audio").onclick = () => this.room.startAudio().then(() => this.updateAudioButton());
      $("chat-form").onsubmit = (event) => {
        event.preventDefault();
        const input = $("chat-input");
        const text = input.value.trim();
        if (!text) return;
        lp()
          .sendChatMessage(text)
          .then((message) => {
            input.value = "";
            this.addChat(message, lp());
          })
          .catch((err) => this.toast("Message not sent: " + err.message));
      };
    }

    async toggle(action, what) {
      try {
        await action();
      } catch (err) {
        if (!(err && err.name === "NotAllowedError" && what === "screen")) {
          this.toast("Could not change your " + what + ": " + (err && err.message ? err.message : err));
        }
      }
      this.updateControls();
      this.renderParticipant(this.room.localParticipant);
    }

    showPublishControls() {
      // Shown only where the room's media and this participant's grants allow them.
      $("ctl-mic").hidden = !this.allowsMic || !this.canPublish("microphone");
      $("ctl-cam").hidden = !this.allowsCamera || !this.canPublish("camera");
      $("ctl-screen").hidden = !this.allowsScreen || !this.canPublish("screen_share");
      const audience = this.webinar && !this.onStage() && !HOST_ROLES.includes(this.role);
      const hand = $("ctl-hand");
      hand.hidden = !audience;
      hand.textContent = this.hand ? "Lower hand" : "Raise hand";
      hand.setAttribute("aria-pressed", String(this.hand));
      hand.classList.toggle("raised", this.hand);
    }

    updateControls() {
      const lp = this.room.localParticipant;
      this.showPublishControls();
      const mic = $("ctl-mic");
      mic.textContent = lp.isMicrophoneEnabled ? "Mute" : "Unmute";
      mic.setAttribute("aria-pressed", String(!lp.isMicrophoneEnabled));
      mic.classList.toggle("off", !lp.isMicrophoneEnabled);
      mic.disabled = !this.canPublish("microphone");
      const cam = $("ctl-cam");
      cam.textContent = lp.isCameraEnabled ? "Stop video" : "Start video";
      cam.setAttribute("aria-pressed", String(!lp.isCameraEnabled));
      cam.classList.toggle("off", !lp.isCameraEnabled);
      cam.disabled = !this.canPublish("camera");
      const screen = $("ctl-screen");
      screen.textContent = lp.isScreenShareEnabled ? "Stop sharing" : "Share screen";
      screen.setAttribute("aria-pressed", String(lp.isScreenShareEnabled));
      screen.disabled = !this.canPublish("screen_share");
    }

    // --- chat ---------------------------------------------------------------------------

    addChat(message, participant) {
      const item = document.createElement("li");
      const who = document.createElement("strong");
      who.textContent = participant ? participant.name || participant.identity : "Someone";
      const time = document.createElement("time");
      time.textContent = new Date(message.timestamp || Date.now()).toLocaleTimeString(undefined, {
        hour: "2-digit",
        minute: "2-digit",
      });
      const text = document.createElement("p");
      text.textContent = message.message;
      item.append(who, " ", time, text);
      $("chat-log").append(item);
      item.scrollIntoView({ block: "end" });
      if ($("chat").hidden && participant !== this.room.localParticipant) {
        $("ctl-chat").classList.add("unread");
      }
    }
  }

  function handMarker(className) {
    const hand = document.createElement("span");
    hand.className = className;
    hand.textContent = "\u270B"; // raised hand
    hand.title = "Hand raised";
    hand.setAttribute("role", "img");
    hand.setAttribute("aria-label", "Hand raised");
    hand.hidden = true;
    return hand;
  }

  function tileButton(text, className) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = className;
    button.textContent = text;
    return button;
  }

  on("meeting-start", start);
})();
