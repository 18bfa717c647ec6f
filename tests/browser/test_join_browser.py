"""The join experience in real headless Chromium: pre-join with a moving microphone meter,
password and email-code access, the waiting room across browsers, a scheduled room opening
by itself, media types, and the API tester. Each token a page sends to LiveKit is checked
as livekit-server would check it (identity, room, grants for the role and media type)."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conferences.models import WaitingEntry
from tests.browser.conftest import off_loop, wait_until
from tests.conftest import make_member
from tests.join_helpers import make_room

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)  # generous: CI machines may be busy


@pytest.fixture
def tenant(transactional_db):
    return off_loop(make_member, "Acme")


def state(page):
    return expect(page.locator("#join-app"))


def token_claims(livekit, intercepted, page, room):
    """The first connection the page opened to LiveKit: its URL, and its token's claims."""
    urls = wait_until(page, lambda: intercepted.urls, what="a connection to LiveKit")
    assert re.match(rf"^ws://127\.0\.0\.1:{livekit.port}/rtc/v1\?", urls[0]), urls[0]
    return livekit.verify_join_token(intercepted.tokens()[0], room=room.room_id)


def join_as(page, name: str) -> None:
    page.fill("#name-input", name)
    page.click("#join-button")


def test_prejoin_renders_and_the_meter_moves(open_page, tenant, livekit):
    room = off_loop(make_room, tenant, name='Sales <b>sync</b> & "friends"')
    page, intercepted = open_page(f"/room/{room.room_id}")
    state(page).to_have_attribute("data-state", "prejoin")
    expect(page.locator("#room-title")).to_have_text('Sales <b>sync</b> & "friends"')
    # devices are listed and the camera preview plays
    expect(page.locator("#camera-select option").first).to_be_attached()
    expect(page.locator("#mic-select option").first).to_be_attached()
    wait_until(
        page,
        lambda: page.evaluate("document.getElementById('preview-video').videoWidth > 0"),
        what="the camera preview",
    )
    levels = []
    for _ in range(60):
        levels.append(float(page.get_attribute("#mic-meter", "data-level")))
        page.wait_for_timeout(50)
    assert max(levels) > 0.05, levels
    assert len(set(levels)) > 5, levels  # it moves, not a stuck value
    assert not intercepted.urls  # nothing connects before the join click


def test_password_wrong_then_right(open_page, tenant, livekit):
    room = off_loop(make_room, tenant, access_type="password", password="hunter22")
    page, intercepted = open_page(f"/room/{room.room_id}")
    state(page).to_have_attribute("data-state", "password")
    page.fill("#password-input", "not-it")
    page.click("#password-form button[type=submit]")
    expect(page.locator("#password-error")).to_contain_text("That password is not right")
    state(page).to_have_attribute("data-state", "password")
    page.fill("#password-input", "hunter22")
    page.click("#password-form button[type=submit]")
    state(page).to_have_attribute("data-state", "prejoin")
    join_as(page, "Ada Lovelace")
    claims = token_claims(livekit, intercepted, page, room)
    assert claims["name"] == "Ada Lovelace"
    assert claims["attributes"]["role"] == "participant"
    assert sorted(claims["video"]["canPublishSources"]) == [
        "camera",
        "microphone",
        "screen_share",
        "screen_share_audio",
    ]
    assert not claims["video"].get("roomAdmin")


def test_whitelist_code_flow(open_page, tenant, livekit, mailoutbox):
    room = off_loop(
        make_room, tenant, access_type="whitelist", whitelist_emails=["ann@example.com"]
    )
    page, intercepted = open_page(f"/room/{room.room_id}")
    state(page).to_have_attribute("data-state", "email")
    page.fill("#email-input", "Ann@Example.com")
    page.click("#email-form button[type=submit]")
    expect(page.locator("#code-email")).to_have_text("ann@example.com")
    mail = wait_until(page, lambda: list(mailoutbox), what="the code email")[0]
    code = re.search(r"\b(\d{6})\b", mail.body).group(1)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    page.fill("#code-input", wrong)
    page.click("#code-form button[type=submit]")
    expect(page.locator("#code-error")).to_contain_text("not right")
    page.fill("#code-input", code)
    page.click("#code-form button[type=submit]")
    state(page).to_have_attribute("data-state", "prejoin")
    join_as(page, "Ann")
    claims = token_claims(livekit, intercepted, page, room)
    assert claims["name"] == "Ann" and claims["attributes"]["role"] == "participant"


def test_waiting_room_across_browsers(open_page, tenant, livekit):
    room = off_loop(make_room, tenant, waiting_room_enabled=True)
    host, host_calls = open_page(f"/room/{room.room_id}/host/{room.host_secret}")
    expect(host.locator("#lobby-empty")).to_be_visible()

    guest, guest_calls = open_page(f"/room/{room.room_id}")
    expect(guest.locator("#join-button")).to_have_text("Ask to join")
    join_as(guest, "Grace Hopper")
    state(guest).to_have_attribute("data-state", "waiting")
    entry = host.locator(".lobby-entry", has_text="Grace Hopper")
    expect(entry).to_be_visible()
    expect(host.locator("#lobby-count")).to_have_text("1")
    assert not guest_calls.urls  # no token before admission

    entry.locator(".lobby-admit").click()
    claims = token_claims(livekit, guest_calls, guest, room)
    waiting = off_loop(lambda: WaitingEntry.objects.get(name="Grace Hopper"))
    assert waiting.status == "admitted"
    assert claims["sub"] == waiting.identity and claims["name"] == "Grace Hopper"
    assert claims["attributes"]["role"] == "participant"
    expect(host.locator("#lobby-count")).to_have_text("0")

    # A second guest is turned away and told so.
    other, other_calls = open_page(f"/room/{room.room_id}")
    join_as(other, "Mallory")
    host.locator(".lobby-entry", has_text="Mallory").locator(".lobby-reject").click()
    state(other).to_have_attribute("data-state", "rejected")
    expect(other.locator("#rejected-message")).to_have_text("The host did not let you in")
    assert not other_calls.urls

    # A guest who closes the page leaves the queue.
    leaver, _ = open_page(f"/room/{room.room_id}")
    join_as(leaver, "Leaver")
    expect(host.locator(".lobby-entry", has_text="Leaver")).to_be_visible()
    expect(leaver.locator("#join-app")).to_have_attribute("data-lobby", "connected")
    leaver.context.close()
    expect(host.locator(".lobby-entry", has_text="Leaver")).to_have_count(0)

    # The host joins without waiting, with the host role and no admin grant.
    join_as(host, "Hank Host")
    claims = token_claims(livekit, host_calls, host, room)
    assert claims["attributes"]["role"] == "host" and not claims["video"].get("roomAdmin")


def _post(url: str, key: str) -> dict:
    request = urllib.request.Request(url, method="POST", headers={"X-API-Key": key})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


def test_scheduled_room_flips_to_prejoin_when_started(open_page, tenant, livekit, live_server_asgi):
    start = timezone.now() + dt.timedelta(hours=1, minutes=30)
    room = off_loop(make_room, tenant, room_type="scheduled", start_time=start)
    page, intercepted = open_page(f"/room/{room.room_id}")
    state(page).to_have_attribute("data-state", "scheduled")
    expect(page.locator("#countdown")).to_contain_text(re.compile(r"Starts in 1 h (29|30) min"))
    local = page.evaluate(
        "iso => new Date(iso).toLocaleString(undefined, {hour: '2-digit', minute: '2-digit'})",
        start.isoformat(),
    )
    expect(page.locator("#starts-at")).to_contain_text(local)
    started = _post(f"{live_server_asgi.url}/api/v1/rooms/{room.room_id}/start", tenant.api_key)
    assert started["status"] == "active"
    state(page).to_have_attribute("data-state", "prejoin")
    join_as(page, "Early Bird")
    assert token_claims(livekit, intercepted, page, room)["name"] == "Early Bird"


@pytest.mark.parametrize(
    "media_type, sources, camera, microphone",
    [
        ("audio", ["microphone"], False, True),
        ("video", ["camera"], True, False),
    ],
)
def test_media_type_shapes_the_page_and_the_grants(
    open_page, tenant, livekit, media_type, sources, camera, microphone
):
    room = off_loop(
        make_room, tenant, media_type=media_type, screen_sharing_enabled=False, chat_enabled=False
    )
    page, intercepted = open_page(f"/room/{room.room_id}")
    state(page).to_have_attribute("data-state", "prejoin")
    expect(page.locator("#camera-select")).to_be_visible(visible=camera)
    expect(page.locator("#mic-select")).to_be_visible(visible=microphone)
    join_as(page, "Media Tester")
    claims = token_claims(livekit, intercepted, page, room)
    assert claims["video"]["canPublishSources"] == sources
    assert not claims["video"].get("canPublishData")  # chat is off
    # The meeting's controls follow the room: no camera in audio rooms, no microphone in
    # video rooms, no screen share or chat where they are off.
    state(page).to_have_attribute("data-state", re.compile("meeting|error"))
    hidden = page.evaluate(
        "ids => ids.map(id => document.getElementById(id).hidden)",
        ["ctl-cam", "ctl-mic", "ctl-screen", "ctl-chat", "ctl-leave"],
    )
    assert hidden == [not camera, not microphone, True, True, False]


def test_api_tester_creates_a_room_and_connects(open_page, tenant, livekit, live_server_asgi):
    from django.test import Client

    def session_cookie() -> str:
        client = Client()
        client.force_login(tenant.user)
        return client.cookies["sessionid"].value

    page, intercepted = open_page("/healthz")
    page.context.add_cookies(
        [{"name": "sessionid", "value": off_loop(session_cookie), "url": live_server_asgi.url}]
    )
    page.goto("/api-tester/")
    assert tenant.api_key not in page.content()  # never embedded
    page.fill("#api-key", tenant.api_key)
    page.click("#create-button")
    expect(page.locator("#response-status")).to_contain_text("201")
    created = json.loads(page.inner_text("#response"))
    assert created["media_type"] == "audio" and created["name"] == "Audio test room"
    page.click("#connect-button")
    urls = wait_until(page, lambda: intercepted.urls, what="a connection to LiveKit")
    claims = livekit.verify_join_token(intercepted.tokens()[0], room=created["room_id"])
    assert urls[0].startswith(f"ws://127.0.0.1:{livekit.port}/rtc")
    assert claims["video"]["canPublishSources"] == ["microphone"]  # audio rooms: voice only
    expect(page.locator("#second-window")).to_be_enabled()


def test_meeting_view_with_a_stubbed_connection(open_page, tenant, livekit):
    """No LiveKit server here: with livekit-client's connect stubbed at the page boundary,
    the meeting view renders the local tile and the room's controls, and leaving works."""
    room = off_loop(make_room, tenant, media_type="audio", chat_enabled=True)
    page, _ = open_page(f"/room/{room.room_id}/host/{room.host_secret}")
    page.evaluate(
        """() => {
            const Room = LivekitClient.Room;
            LivekitClient.Room = class extends Room {
                constructor(options) { super(options); this.connect = async () => {}; }
            };
        }"""
    )
    join_as(page, "Hank Host")
    state(page).to_have_attribute("data-state", "meeting")
    tile = page.locator("#tiles .tile.local")
    expect(tile).to_contain_text("Hank Host (you)")
    expect(tile.locator(".avatar")).to_have_text("HH")  # audio room: avatars, no video
    expect(page.locator("#ctl-mic")).to_be_visible()
    expect(page.locator("#ctl-cam")).to_be_hidden()
    expect(page.locator("#ctl-chat")).to_be_visible()
    page.click("#ctl-chat")
    expect(page.locator("#chat")).to_be_visible()
    page.click("#ctl-leave")
    state(page).to_have_attribute("data-state", "left")
    expect(page.locator("#left-title")).to_have_text("You left the meeting")
