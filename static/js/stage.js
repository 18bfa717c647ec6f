/* The webinar stage from an audience member's page: "Raise hand", the invitation to speak
 * (Accept or Decline) and the stage socket that brings invitations and role changes. Each
 * action is a call to Parley's server authorised by the guest's join token (Bearer).
 *
 * Events: hears `parley:stage-start` (the meeting's session: its token, role and controls),
 * `parley:stage-stop` and `parley:stage-hide-invite` from meeting.js. */
import { on, reconnectingSocket, request } from "./parley.js";

(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  let session = null; // set while an audience member's meeting runs
  let socket = null;

  function call(url, body) {
    return request(url, {
      method: "POST",
      body: body || {},
      credentials: "omit", // the join token authorises these, not the session
      headers: { Authorization: "Bearer " + session.token() },
    });
  }

  function apply(state) {
    if (!session) return;
    session.apply(state);
    if (state.invited && !session.onStage()) showInvite(state.invite_mic_only);
    else hideInvite();
    session.updateControls();
  }

  async function toggleHand() {
    if (!session) return;
    const button = $("ctl-hand");
    button.disabled = true;
    try {
      apply(await call(session.config.urls.stageHand, { raised: !session.hand() }));
    } catch (err) {
      session.toast(err.message);
    } finally {
      button.disabled = false;
      if (session) session.updateControls();
    }
  }

  function showInvite(micOnly) {
    const prompt = $("stage-invite");
    if (!prompt) return;
    $("stage-invite-detail").textContent = micOnly
      ? "with your microphone."
      : session.allowsCamera && session.allowsMic
        ? "with your microphone and camera."
        : "";
    const fresh = prompt.hidden;
    prompt.hidden = false;
    for (const button of prompt.querySelectorAll("button")) button.disabled = false;
    if (fresh) $("stage-accept").focus();
  }

  function hideInvite() {
    const prompt = $("stage-invite");
    if (prompt) prompt.hidden = true;
  }

  async function answerInvite(accept) {
    if (!session) return;
    const prompt = $("stage-invite");
    for (const button of prompt.querySelectorAll("button")) button.disabled = true;
    try {
      const urls = session.config.urls;
      apply(await call(accept ? urls.stageAccept : urls.stageDecline, {}));
      hideInvite();
      if (accept) session.toast("Joining the stage…");
    } catch (err) {
      session.toast(err.message);
      if (err.code === "NO_INVITATION") hideInvite();
      for (const button of prompt.querySelectorAll("button")) button.disabled = false;
    }
  }

  function stop() {
    if (socket) socket.close();
    socket = null;
    session = null;
    hideInvite();
  }

  on("stage-start", (meeting) => {
    stop();
    session = meeting;
    const current = session;
    // The join token is the socket's first message, never part of its URL (URLs are logged).
    socket = reconnectingSocket(current.config.urls.wsStage, {
      onOpen: (handle) => handle.send({ type: "auth", token: current.token() }),
      onMessage: (message) => message.type === "stage" && apply(message),
    });
  });
  on("stage-stop", stop);
  on("stage-hide-invite", hideInvite);

  const hand = $("ctl-hand");
  if (hand) hand.addEventListener("click", toggleHand);
  if ($("stage-invite")) {
    $("stage-accept").addEventListener("click", () => answerInvite(true));
    $("stage-decline").addEventListener("click", () => answerInvite(false));
  }
})();
