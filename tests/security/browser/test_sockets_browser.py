"""Issue 17, item 14, as an attacker would look for it, in real Chromium: a webinar viewer
joins through the join page; no URL the page requests or opens (HTTP or websocket) carries
its join token, which is where access logs, proxies and histories would keep it. Its stage
socket still works: the token is the socket's first frame. (The ASGI-level checks are in
tests/security/test_sockets_tokens.py.)"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import off_loop, wait_until
from tests.browser.test_stage_browser import STUB_CONNECT
from tests.conftest import make_member
from tests.join_helpers import make_room


@pytest.mark.browser
def test_the_join_page_never_puts_its_token_in_a_url(open_page, livekit):
    member = off_loop(make_member, "Acme")
    room = off_loop(make_room, member, name="Town hall", allow_webinar_mode=True)
    page, _ = open_page(f"/room/{room.room_id}")
    urls: list[str] = []
    sent: list[str] = []
    received: list[str] = []

    def on_socket(ws) -> None:
        urls.append(ws.url)
        if "/stage" in ws.url:
            ws.on("framesent", lambda payload: sent.append(str(payload)))
            ws.on("framereceived", lambda payload: received.append(str(payload)))

    page.on("websocket", on_socket)
    page.on("request", lambda request: urls.append(request.url))
    page.evaluate(STUB_CONNECT)
    page.fill("#name-input", "Vera Viewer")
    page.click("#join-button")
    expect(page.locator("#join-app")).to_have_attribute("data-state", "meeting")
    token = wait_until(page, lambda: page.evaluate("window.__joined && window.__joined.token"))
    livekit.join(token, room=room.room_id)  # present in the room, as LiveKit would say
    # The stage socket authenticates with its first frame and then hears its own state.
    wait_until(
        page, lambda: any(json.loads(m).get("type") == "stage" for m in received), what="state"
    )
    assert json.loads(sent[0]) == {"type": "auth", "token": token}
    stage_urls = [u for u in urls if "/ws/rooms/" in u and u.endswith("/stage")]
    assert stage_urls, urls
    leaked = [u for u in urls if token in u or "token=" in u]
    assert not leaked, leaked
