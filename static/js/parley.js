/* Parley's shared browser helpers, one copy for every page script (an ES module, no bundler):
 *
 * - request(url, options): fetch with JSON in and out; a failure throws an Error carrying the
 *   error envelope's `code`, `field` and the HTTP `status` (code "NETWORK" when offline).
 * - reconnectingSocket(url, handlers): a JSON websocket that reconnects with backoff.
 * - wsUrl(path), initials(name), levelMeter(context, tracks, onLevel).
 * - emit(name, detail) / on(name, handler): page scripts talk to each other through
 *   `parley:<name>` DOM events on the document, never through window globals.
 */

export function wsUrl(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

export function initials(name) {
  const parts = (name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || "?").slice(0, 2);
  return letters.toUpperCase();
}

export function emit(name, detail) {
  document.dispatchEvent(new CustomEvent("parley:" + name, { detail }));
}

export function on(name, handler) {
  document.addEventListener("parley:" + name, (event) => handler(event.detail, event));
}

/* fetch `url`; `body` (any JSON value) makes it a POST unless `method` says otherwise.
 * Resolves with the parsed JSON body (null when there is none); rejects with an Error whose
 * message is the envelope's (`{"error": {"code", "message", "field"}}`) or a generic one. */
export async function request(url, { method, body, headers = {}, credentials = "same-origin" } = {}) {
  const options = {
    method: method || (body === undefined ? "GET" : "POST"),
    credentials,
    headers: Object.assign({ Accept: "application/json" }, headers),
  };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    const error = new Error("You seem to be offline. Check your connection and try again.");
    error.code = "NETWORK";
    throw error;
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const envelope = data && data.error && typeof data.error === "object" ? data.error : null;
    const error = new Error(
      envelope ? envelope.message : "Something went wrong (" + response.status + "). Try again."
    );
    error.code = envelope ? envelope.code : "HTTP_" + response.status;
    error.field = envelope ? envelope.field : null;
    error.status = response.status;
    throw error;
  }
  return data;
}

/* A websocket to `url` (a path or a function returning one, re-read on every reconnect)
 * that parses JSON messages and reconnects after 1 s, doubling up to 30 s; any message or
 * open resets the delay. `onClose(event)` returning false (or `close()`) stops it for good. */
export function reconnectingSocket(url, { onMessage, onOpen, onClose } = {}) {
  let delay = 1000;
  let socket = null;
  let stopped = false;
  let timer = null;

  function open() {
    if (stopped) return;
    const path = typeof url === "function" ? url() : url;
    try {
      socket = new WebSocket(path.startsWith("ws") ? path : wsUrl(path));
    } catch (err) {
      retry();
      return;
    }
    const mine = socket;
    socket.onopen = () => {
      delay = 1000;
      if (onOpen) onOpen(handle);
    };
    socket.onmessage = (event) => {
      delay = 1000;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return; // ignore malformed
      }
      if (onMessage) onMessage(message, handle);
    };
    socket.onclose = (event) => {
      if (stopped || socket !== mine) return;
      if (onClose && onClose(event, handle) === false) {
        stopped = true;
        return;
      }
      retry();
    };
  }

  function retry() {
    clearTimeout(timer);
    timer = setTimeout(open, delay);
    delay = Math.min(delay * 2, 30000);
  }

  const handle = {
    send(message) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    },
    close() {
      stopped = true;
      clearTimeout(timer);
      if (socket) socket.close();
    },
    get socket() {
      return socket;
    },
  };
  open();
  return handle;
}

/* Calls onLevel(level 0..1) every `interval` ms with the loudness of `tracks` (audio
 * MediaStreamTracks), analysed only: never connected to the speakers, so local audio is
 * never played back. Fast attack, smooth fall. Returns a function that stops it. */
export function levelMeter(context, tracks, onLevel, { interval = 50 } = {}) {
  if (!context || !tracks.length) return () => {};
  const source = context.createMediaStreamSource(new MediaStream(tracks));
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let shown = 0;
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
    const level = Math.min(1, Math.sqrt(sum / samples.length) * 4); // speech RMS ~0.05-0.25
    shown = level > shown ? level : shown * 0.85;
    onLevel(shown < 0.005 ? 0 : shown);
  }, interval);
  return () => {
    clearInterval(timer);
    source.disconnect();
  };
}
