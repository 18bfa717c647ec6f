"""Real media: a real livekit-server (v1.13.5, built by `make livekit`) on loopback, Parley
served for real by uvicorn in a thread, and headless Chromium (fake camera and microphone)
joining through Parley's own join pages.

One livekit-server, one Parley server and one browser serve the whole package (started on
first use). The server's config comes from scripts/livekit_server.py (the one `make run`
uses): it listens on and advertises 127.0.0.1 only, on free ports, and posts its webhooks to
the test server's /livekit/webhook. Chromium runs with --allow-loopback-in-peer-connection so
its ICE candidates are 127.0.0.1 too: no media leaves the loopback interface.

Without the binary these tests skip; with REQUIRE_LIVEKIT=1 (CI) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import livekit_server
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LiveServer,
    launch_chromium,
    off_loop,
    wait_until,
)

REQUIRE_LIVEKIT = os.environ.get("REQUIRE_LIVEKIT") == "1"
API_KEY = "parley-media"
API_SECRET = "parley-media-tests-secret-of-at-least-32-chars"
WEBHOOK_GRACE = 1.0  # seconds a webhook already verified at teardown gets to finish

# Webhooks for a previous test's rooms can reach the test server after that test restored
# the default (short) LiveKit secret: they are refused (401), and PyJWT warns about the key.
MEDIA_WARNINGS = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

MEDIA_ARGS = [
    *CHROMIUM_ARGS,
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]

# Installed in a page before it joins: keeps the page's livekit-client Room on window.__room
# and measures the level of every remote audio track it receives with an AnalyserNode
# (window.__audio[identity]: when sound was first heard, the latest levels), and records
# the room's connection events (window.__events) so a test can tell a reconnect apart.
INSTRUMENT = """() => {
    if (window.__instrumented) return;
    window.__instrumented = true;
    const LK = window.LivekitClient;
    const Base = LK.Room;
    window.__audio = {};
    window.__events = [];
    window.__ctx = new AudioContext();
    window.__measure = (mediaTrack, identity) => {
        const ctx = window.__ctx;
        ctx.resume();
        const source = ctx.createMediaStreamSource(new MediaStream([mediaTrack]));
        const analyser = ctx.createAnalyser();
        analyser.fftSize = 2048;
        source.connect(analyser);
        const samples = new Float32Array(analyser.fftSize);
        const entry = { first: 0, max: 0, recent: [], track: mediaTrack.id };
        window.__audio[identity] = entry;
        const timer = setInterval(() => {
            if (mediaTrack.readyState === "ended") { clearInterval(timer); entry.ended = true; }
            analyser.getFloatTimeDomainData(samples);
            let sum = 0;
            for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
            const rms = Math.sqrt(sum / samples.length);
            const now = Date.now();
            if (rms > 0.01 && !entry.first) entry.first = now;
            if (rms > entry.max) entry.max = rms;
            entry.recent.push([now, rms]);
            while (entry.recent.length && entry.recent[0][0] < now - 3000) entry.recent.shift();
        }, 10);
    };
    window.__level = (identity, ms) => {
        const entry = window.__audio[identity];
        if (!entry) return 0;
        const since = Date.now() - ms;
        return Math.max(0, ...entry.recent.filter((s) => s[0] >= since).map((s) => s[1]));
    };
    LK.Room = class extends Base {
        constructor(options) {
            super(options);
            window.__room = this;
            const E = LK.RoomEvent;
            this.on(E.TrackSubscribed, (track, pub, p) => {
                if (track.kind === "audio") window.__measure(track.mediaStreamTrack, p.identity);
            });
            for (const name of ["Connected", "Reconnecting", "SignalReconnecting", "Reconnected",
                                "Disconnected"]) {
                this.on(E[name], (reason) =>
                    window.__events.push([name, reason === undefined ? null : reason]));
            }
        }
    };
}"""


def _unavailable(reason: str) -> None:
    if REQUIRE_LIVEKIT:
        pytest.fail(f"real-media tests cannot run with REQUIRE_LIVEKIT=1: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="package")
def _media_binary() -> Path:
    path = livekit_server.binary()
    if path is None:
        wanted = os.environ.get("LIVEKIT_SERVER_BIN") or livekit_server.BINARY
        _unavailable(f"livekit-server is not built ({wanted}): run `make livekit`")
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    return path  # type: ignore[return-value]


@pytest.fixture(scope="package")
def media_browser(_media_binary) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with launch_chromium(sync_playwright, MEDIA_ARGS) as browser:
        yield browser


@pytest.fixture(scope="package")
def media_live_server(media_browser, django_db_setup) -> Iterator[LiveServer]:
    server = LiveServer()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def real_livekit(media_live_server) -> Iterator[livekit_server.Server]:
    """livekit-server on free loopback ports, webhooks to the test server."""
    workdir = Path(tempfile.mkdtemp(prefix="parley-livekit-"))
    config = livekit_server.ServerConfig(
        api_key=API_KEY,
        api_secret=API_SECRET,
        port=livekit_server.free_port(),
        udp_port=livekit_server.free_port(socket.SOCK_DGRAM),
        webhook_urls=[f"{media_live_server.url}/livekit/webhook"],
        empty_timeout=10,
        departure_timeout=1,
    )
    server = livekit_server.Server(config, workdir)
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        pytest.fail(f"livekit-server did not start: {exc}")
    yield server
    server.stop()


# --- the RoomService, called directly (what the tests check against) -----------------------


def room_service(server: livekit_server.Server, method: str, request: Any) -> Any:
    """Call RoomService.<method>(request) on the real server (from a worker thread: the
    Playwright loop owns the main one)."""
    from livekit import api

    async def call() -> Any:
        lk = api.LiveKitAPI(server.http_url, API_KEY, API_SECRET)
        try:
            return await getattr(lk.room, method)(request)
        finally:
            await lk.aclose()

    return off_loop(lambda: asyncio.run(call()))


def participants(server: livekit_server.Server, room: str) -> list[Any]:
    from livekit import api

    return list(
        room_service(
            server, "list_participants", api.ListParticipantsRequest(room=room)
        ).participants
    )


def rooms(server: livekit_server.Server, name: str) -> list[Any]:
    from livekit import api

    return list(room_service(server, "list_rooms", api.ListRoomsRequest(names=[name])).rooms)


class Media:
    """What a real-media test works with: pages in fresh browser contexts (each its own
    person), the real server, and helpers to join through Parley's pages."""

    def __init__(self, browser: Any, live: LiveServer, server: livekit_server.Server) -> None:
        self.browser = browser
        self.live = live
        self.server = server
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def open(self, path: str, *, instrument: bool = True) -> Any:
        context = self.browser.new_context(base_url=self.live.url)
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(path)
        if instrument:
            page.evaluate(INSTRUMENT)
        return page

    def join(self, page: Any, name: str, *, camera: bool = False) -> None:
        """Fill the name and click Join on a pre-join page (camera off unless asked:
        the fake camera's encoder is the costliest thing on a busy machine)."""
        page.wait_for_selector("#join-app[data-state=prejoin]")
        cam = page.locator("#pre-cam")
        if cam.is_visible() and (cam.get_attribute("aria-pressed") == "true") != camera:
            cam.click()
        page.fill("#name-input", name)
        page.click("#join-button")

    def connected(self, page: Any, timeout: float = 20.0) -> str:
        """Wait until the page's LiveKit room is connected; its identity."""
        return wait_until(
            page,
            lambda: page.evaluate(
                "window.__room && window.__room.state === 'connected' && "
                "window.__room.localParticipant.identity"
            ),
            timeout=timeout,
            what="the page to connect to livekit-server",
        )

    def hears(self, page: Any, identity: str, timeout: float = 20.0) -> float:
        """Wait until the page's analyser on `identity`'s audio rises above silence."""
        return wait_until(
            page,
            lambda: page.evaluate(
                "id => { const e = window.__audio[id]; return e && e.max > 0.02 ? e.max : 0; }",
                identity,
            ),
            timeout=timeout,
            what=f"sound from {identity}",
        )

    def level(self, page: Any, identity: str, ms: int = 1500) -> float:
        return page.evaluate("([id, ms]) => window.__level(id, ms)", [identity, ms])

    def participants(self, room: str) -> list[Any]:
        return participants(self.server, room)

    def close(self) -> None:
        for context in self.contexts:
            try:
                context.close()
            except Exception:  # noqa: BLE001 -- already gone
                pass
        self.contexts.clear()


@pytest.fixture
def media(
    media_browser, media_live_server, real_livekit, transactional_db, settings
) -> Iterator[Media]:
    """Parley pointed at the real livekit-server; pages closed and rooms deleted after."""
    from livekit import api

    settings.LIVEKIT_URL = real_livekit.ws_url
    settings.LIVEKIT_PUBLIC_URL = real_livekit.ws_url
    settings.LIVEKIT_API_KEY = API_KEY
    settings.LIVEKIT_API_SECRET = API_SECRET
    settings.LIVEKIT_TIMEOUT = 5
    settings.LIVEKIT_EMPTY_TIMEOUT = 10
    settings.LIVEKIT_DEPARTURE_TIMEOUT = 1
    helper = Media(media_browser, media_live_server, real_livekit)
    yield helper
    helper.close()
    for room in room_service(real_livekit, "list_rooms", api.ListRoomsRequest()).rooms:
        try:
            room_service(real_livekit, "delete_room", api.DeleteRoomRequest(room=room.name))
        except api.TwirpError:
            pass
    # The server keeps posting webhooks (participant_left, room_finished) for a while; the test
    # database is truncated right after this teardown, and a webhook written at the same time
    # deadlocks the TRUNCATE on PostgreSQL. From here on the live server refuses them at the
    # signature check, before any query; the grace lets one already past it finish.
    settings.LIVEKIT_API_SECRET = "teardown-refuses-late-webhooks-" + "x" * 16
    time.sleep(WEBHOOK_GRACE)
    assert not helper.errors, f"uncaught errors in the page: {helper.errors}"


def poll(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll a condition that runs Django or LiveKit code (off the Playwright loop)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.1)
