"""The recording indicator in real headless Chromium: every page of a room is told, live,
when a recording starts and when it stops, and the HLS watch page plays through hls.js."""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from conferences.models import Recording
from tests.browser.conftest import off_loop
from tests.conftest import make_member
from tests.join_helpers import make_room

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)


def _call(url: str, key: str, method: str = "POST") -> dict:
    request = urllib.request.Request(url, method=method, headers={"X-API-Key": key})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


def test_every_guest_sees_the_recording_indicator_live(open_page, livekit, live_server_asgi):
    member = off_loop(make_member, "Rec Show", "starter")
    room = off_loop(make_room, member, recording_enabled=True)
    guests = [open_page(f"/room/{room.room_id}")[0] for _ in range(2)]
    for page in guests:
        expect(page.locator("#join-app")).to_have_attribute("data-state", "prejoin")
        expect(page.locator("#rec-indicator")).to_be_hidden()

    # The room starts: its automatic recording starts, and every page is told.
    base = f"{live_server_asgi.url}/api/v1/rooms/{room.room_id}"
    _call(f"{base}/start", member.api_key)
    for page in guests:
        expect(page.locator("#rec-indicator")).to_be_visible()
        expect(page.locator("#rec-indicator")).to_have_text(
            "This meeting is being recorded", use_inner_text=True
        )
    recordings = _call(f"{base}/recordings", member.api_key, "GET")["recordings"]
    assert [r["status"] for r in recordings] == ["recording"]

    # A page opened now shows it at once.
    late, _ = open_page(f"/room/{room.room_id}")
    expect(late.locator("#rec-indicator")).to_be_visible()

    _call(f"{base}/recordings/{recordings[0]['recording_id']}/stop", member.api_key)
    for page in [*guests, late]:
        expect(page.locator("#rec-indicator")).to_be_hidden()
    assert off_loop(lambda: Recording.objects.get().status) == "ready"


def test_host_stops_and_starts_recording_from_the_meeting_page(
    open_page, livekit, live_server_asgi
):
    member = off_loop(make_member, "Rec Host", "starter")
    room = off_loop(make_room, member, recording_enabled=True)
    base = f"{live_server_asgi.url}/api/v1/rooms/{room.room_id}"
    _call(f"{base}/start", member.api_key)  # the automatic recording starts
    host, _ = open_page(f"/room/{room.room_id}/host/{room.host_secret}")
    guest, _ = open_page(f"/room/{room.room_id}")
    host.on("dialog", lambda dialog: dialog.accept())
    expect(host.locator("#host-record-stop")).to_be_visible()
    expect(host.locator("#host-record-start")).to_be_hidden()
    host.click("#host-record-stop")
    expect(guest.locator("#rec-indicator")).to_be_hidden()
    expect(host.locator("#host-record-start")).to_be_visible()
    host.click("#host-record-start")
    expect(guest.locator("#rec-indicator")).to_be_visible()
    expect(host.locator("#host-record-stop")).to_be_visible()
    statuses = off_loop(lambda: sorted(Recording.objects.values_list("status", flat=True)))
    assert statuses == ["ready", "recording"]
