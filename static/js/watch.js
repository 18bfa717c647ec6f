/* HLS watch page: a plain <video>; hls.js only where the browser lacks native HLS. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("watch-config").textContent);
  const video = document.getElementById("player");
  const message = document.getElementById("watch-message");
  const url = config.playlistUrl;
  if (!url) return;

  function say(text) {
    message.textContent = text;
  }

  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url; // Safari, iOS: native HLS
  } else if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls({ liveDurationInfinity: true });
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      if (data.type === window.Hls.ErrorTypes.NETWORK_ERROR) {
        say("The stream is not available yet; retrying…");
        setTimeout(() => hls.loadSource(url), 3000);
      } else {
        say("This stream cannot be played here.");
      }
    });
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => {
      say("");
      video.play().catch(() => say("Press play to watch."));
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else {
    say("This browser cannot play live streams.");
  }
})();
