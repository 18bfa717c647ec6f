"""Issue 17, item 13, in real Chromium: with the Content-Security-Policy on, no page of the
screenshot set (scripts/screenshots.py, seeded with its own demo data) nor the other pages
people use (host page, account pages, the API tester, a guest joining a meeting) reports a
single CSP violation. Violations are collected by a listener for `securitypolicyviolation`
installed before any page script runs, and from the console ("Refused to ...")."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import off_loop, wait_until

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT / "scripts" / "screenshots_seed.py"
HLS_JS_FILE = ROOT / "node_modules" / "hls.js" / "dist" / "hls.min.js"
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`));
"""

HLS_JS = """() => {
  const video = document.createElement("video");
  const hls = new Hls({ enableWorker: true });
  hls.on(Hls.Events.MEDIA_ATTACHED, () => { window.__hls_src = video.src; });
  hls.attachMedia(video);
  hls.loadSource(JSON.parse(document.getElementById("watch-config").textContent).playlistUrl);
}"""


def _play_hls(page) -> None:
    """Chromium plays HLS natively; other browsers get hls.js (a blob: worker and a Media
    Source blob: URL): run that path too, under the watch page's policy."""
    wait_until(page, lambda: page.evaluate("player.src"), what="the player")
    if not HLS_JS_FILE.exists():  # `npm ci` installs it (package.json)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{HLS_JS_FILE} is missing: run npm ci")
        return
    page.evaluate(HLS_JS)
    wait_until(page, lambda: page.evaluate("window.__hls_src || ''").startswith("blob:"))


def _screenshot_pages() -> list[tuple[str, str]]:
    spec = importlib.util.spec_from_file_location(
        "screenshots", ROOT / "scripts" / "screenshots.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.PAGES)


def _seed() -> dict:
    """scripts/screenshots_seed.py on the test database (as `make screenshots` runs it)."""
    from tests.conftest import make_member

    make_member("Northwind", plan="enterprise")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(SEED.read_text(), str(SEED), "exec"), {"__name__": "seed"})  # noqa: S102
    seeded = json.loads(out.getvalue().strip().splitlines()[-1])
    from conferences.models import Room

    seeded["host"] = Room.objects.get(room_id=seeded["room"]).host_secret
    # A live stream of the second live room, its playlist in the local recordings folder: the
    # watch page plays it through hls.js (a blob: worker, Media Source blob: URLs).
    from django.conf import settings

    from conferences.models import Recording
    from conferences.services import recordings as recording_services

    room = Room.objects.get(room_id=seeded["live"][1])
    stream = recording_services.start(room=room, kind=Recording.Kind.HLS)
    folder = settings.RECORDINGS_DIR / stream.file_path
    folder.mkdir(parents=True)
    (folder / "live.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nsegment_00000.ts\n"
    )
    (folder / "segment_00000.ts").write_bytes(b"\x47" * 188)
    seeded["stream"] = stream.recording_id
    return seeded


class Watch:
    """A browser context whose pages report CSP violations; LiveKit is intercepted."""

    def __init__(self, browser, base: str, livekit, session: str | None = None) -> None:
        self.context = browser.new_context(base_url=base)
        self.context.set_default_timeout(15_000)
        self.context.add_init_script(LISTEN)
        if session:
            self.context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
        self.console: list[str] = []
        self.pattern = re.compile(rf"^ws://127\.0\.0\.1:{livekit.port}/rtc(/v1)?\?")

    def open(self, path: str):
        page = self.context.new_page()
        page.on(
            "console",
            lambda m: (
                self.console.append(f"{path}: {m.text}")
                if "Content Security Policy" in m.text
                else None
            ),
        )
        page.route_web_socket(self.pattern, lambda ws: ws.close(code=1011, reason="no LiveKit"))
        page.goto(path)
        page.wait_for_load_state("load")
        return page

    @staticmethod
    def violations(page) -> list[str]:
        page.wait_for_timeout(150)  # let late loads (sockets, images, workers) report
        return page.evaluate("window.__csp")


def test_no_page_reports_a_csp_violation(
    _playwright_browser, live_server_asgi, livekit, transactional_db, settings, tmp_path
):
    settings.RECORDINGS_DIR = tmp_path / "recordings"
    seeded = off_loop(_seed)
    base = live_server_asgi.url
    member = Watch(_playwright_browser, base, livekit, seeded["session"])
    guest = Watch(_playwright_browser, base, livekit)
    room, host = seeded["room"], seeded["host"]
    visits = [(member, path.format(room=room)) for _, path in _screenshot_pages()]
    visits += [
        (guest, "/accounts/login/"),
        (guest, f"/room/{room}"),
        (member, f"/dashboard/rooms/{room}/edit/"),
        (member, "/dashboard/settings/"),
        (member, "/dashboard/webhooks/"),
        (member, "/accounts/2fa/"),
        (member, "/api-tester/"),
        (guest, "/accounts/signup/"),
        (guest, "/accounts/password/reset/"),
        (guest, f"/room/{room}/host/{host}"),
        (guest, "/room/nosuchroom1"),
        (guest, "/api/v1/docs/"),
        (guest, "/api/v1/redoc/"),
        (guest, f"/watch/{seeded['stream']}"),
    ]
    found: dict[str, list[str]] = {}
    try:
        for watch, path in visits:
            page = watch.open(path)
            if path.startswith("/watch/"):
                _play_hls(page)
            bad = watch.violations(page)
            if bad:
                found[path] = bad
            page.close()
        # A guest joins the meeting: the page connects to LiveKit (intercepted here).
        page = guest.open(f"/room/{room}")
        page.fill("#name-input", "Guest")
        page.click("#join-button")
        expect(page.locator("#join-app")).not_to_have_attribute("data-state", "prejoin")
        page.wait_for_timeout(1000)  # the connection attempt and livekit-client's retry
        bad = guest.violations(page)
        if bad:
            found["join"] = bad
        console = member.console + guest.console  # before the deliberate violations below
        # The listener works and the policy is enforced: an inline style attribute and an
        # inline script are refused and reported.
        page.evaluate(
            """() => { document.body.insertAdjacentHTML("beforeend", '<i style="color:red"></i>');
                       const s = document.createElement("script");
                       s.textContent = "window.__ran = 1"; document.body.append(s); }"""
        )
        wait_until(page, lambda: len(page.evaluate("window.__csp")) >= 2, what="reports")
        reported = page.evaluate("window.__csp")
        assert any(v.startswith("style-src-attr") for v in reported), reported
        assert any(v.startswith("script-src-elem") for v in reported), reported
        assert page.evaluate("window.__ran") is None
    finally:
        member.context.close()
        guest.context.close()
    assert not found and not console, (found, console)
