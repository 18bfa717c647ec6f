"""The webinar join storm's path (bench/bench_storm.py measures it): the join page, the join
and the stage socket, as a thousand viewers arriving at once take them. These tests pin
behaviour and query counts, never timing."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings

from dashboard.asgi import application
from parley.pages import PageRoutes
from tests.join_helpers import make_room


def call(method: str, path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=application, client=("198.51.100.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.request(method, path, **kwargs)

    return asyncio.run(go())


@pytest.fixture
def webinar(transactional_db, owner, livekit):
    from conferences.services import rooms as room_services

    room = make_room(owner, allow_webinar_mode=True, max_participants=1000)
    return room_services.start_room(room=room)


def test_page_routes_are_the_join_page_and_its_arrival_calls():
    routes = PageRoutes(app=None, pages=object())
    on_pool = ["/room/AbC123", "/room/AbC123/join", "/room/AbC123/state", "/room/abcd-efgh-ijkl"]
    elsewhere = [
        "/room/AbC123/host/secret",  # writes the host proof into the session: full ASGI path
        "/room/AbC123/password",
        "/room/AbC123/join/x",
        "/api/v1/rooms/AbC123/tokens",
        "/dashboard/",
    ]
    assert all(routes.paths.fullmatch(p) for p in on_pool)
    assert not any(routes.paths.fullmatch(p) for p in elsewhere)


def test_a_viewer_joins_through_the_served_app(webinar, livekit):
    """Page (CSRF cookie, CSP nonce, media permissions), then join with that cookie: admitted
    with a viewer token; the pool thread's answers keep every header of the full chain."""
    page = call("GET", f"/room/{webinar.room_id}")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Permissions-Policy"].startswith("camera=(self)")
    assert page.headers["X-Frame-Options"] == "DENY"
    csp = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<style nonce="{nonce}">' in page.text
    assert livekit.ws_url.replace("ws://", "") in csp  # LiveKit in connect-src
    csrf = page.cookies["csrftoken"]
    assert "sessionid" not in page.cookies  # an anonymous viewer costs no session row

    join = call(
        "POST",
        f"/room/{webinar.room_id}/join",
        json={"name": "Viewer 1"},
        headers={"X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}"},
    )
    assert join.status_code == 200, join.text
    body = join.json()
    assert body["status"] == "admitted" and body["role"] == "viewer"
    claims = livekit.verify_join_token(body["token"])
    assert claims["video"]["canPublish"] is False
    assert join.headers["Cache-Control"] == "no-store"
    assert join.headers["X-Request-ID"].startswith("req_")


def test_the_pool_keeps_csrf_and_404s(webinar):
    refused = call("POST", f"/room/{webinar.room_id}/join", json={"name": "Eve"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "CSRF_FAILED"
    missing = call("GET", "/room/Nope12345678")
    assert missing.status_code == 404
    state = call("GET", f"/room/{webinar.room_id}/state")
    assert state.status_code == 200 and state.json()["status"] == "open"


def test_the_pool_is_bounded_by_settings():
    from parley.pages import PageHandler

    handler = PageHandler()
    try:
        assert handler.executor._max_workers == settings.PAGE_THREADS
        # The full chain (CSRF, sessions...), not the lean one, in sync mode.
        view_middleware = {type(m.__self__).__name__ for m in handler._view_middleware}
        assert "CsrfViewMiddleware" in view_middleware
        assert not handler._middleware_chain.__class__.__name__.startswith("Async")
    finally:
        handler.executor.shutdown()


def _stage_socket(room_id: str) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    return WebsocketCommunicator(application, f"/ws/rooms/{room_id}/stage", headers=headers)


def test_a_thousand_style_viewer_reaches_its_stage_socket(webinar, livekit):
    page = call("GET", f"/room/{webinar.room_id}")
    csrf = page.cookies["csrftoken"]
    token = call(
        "POST",
        f"/room/{webinar.room_id}/join",
        json={"name": "Viewer 2"},
        headers={"X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}"},
    ).json()["token"]

    async def scenario() -> dict:
        ws = _stage_socket(webinar.room_id)
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "auth", "token": token})
        first = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return first

    first = async_to_sync(scenario)()
    assert first["type"] == "stage" and first["event"] is None
    assert first["role"] == "viewer" and first["hand_raised"] is False


# --- what one viewer costs: queries (a webinar's page, join and socket, a thousand times) ---


def _ours(queries) -> list[str]:
    """The statements of the join path outside the participant write (issue_token's, which
    the token path owns and pins in its own tests)."""
    return [
        q["sql"]
        for q in queries
        if "conferences_participant" not in q["sql"]
        and q["sql"].split()[0].upper() not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
    ]


def test_the_page_costs_no_query_once_the_room_is_warm(webinar, django_assert_num_queries):
    from django.test import Client

    with django_assert_num_queries(2):  # the room (with its tenant), the brand
        assert Client().get(f"/room/{webinar.room_id}").status_code == 200
    # The next viewers: room and brand from the hot cache, no session, no user.
    with django_assert_num_queries(0):
        page = Client().get(f"/room/{webinar.room_id}")
    assert page.status_code == 200 and "csrftoken" in page.cookies
    assert "sessionid" not in page.cookies


def test_a_warm_join_reads_neither_room_nor_bans(webinar, livekit):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.join_helpers import Browser

    first = Browser(webinar, ip="192.0.2.10")
    first.page()  # the room and brand into the hot cache
    with CaptureQueriesContext(connection) as queries:
        assert first.join("Viewer 3").json()["status"] == "admitted"
    ours = _ours(queries.captured_queries)
    assert len(ours) == 1 and "conferences_waitingentry" in ours[0], ours  # the session's bans

    second = Browser(webinar, ip="192.0.2.11")
    second.page()
    with CaptureQueriesContext(connection) as queries:
        assert second.join("Viewer 4").json()["status"] == "admitted"
    assert _ours(queries.captured_queries) == []  # room and bans from the hot cache


def test_the_stage_socket_authenticates_with_one_query(webinar, livekit, django_assert_num_queries):
    from conferences.consumers import _first_stage_state
    from tests.join_helpers import Browser

    token = Browser(webinar).join("Viewer 4").json()["token"]
    identity, livekit_room = livekit.verify_join_token(token)["sub"], webinar.livekit_name
    with django_assert_num_queries(1):  # the participant with its room (a join)
        state = _first_stage_state(webinar.room_id, livekit_room, identity)
    assert state is not None and state["role"] == "viewer"
    # Another room's token, or an identity not in the room: no state (the socket closes).
    assert _first_stage_state(webinar.room_id, "another-room", identity) is None
    assert _first_stage_state(webinar.room_id, livekit_room, "nobody") is None


# --- the cached room and brand never outlive a change made through the services ------------


def test_a_brand_edit_shows_on_the_next_page(webinar, owner):
    from branding.services import BrandInput, update_brand
    from tests.join_helpers import Browser

    assert "--brand: #2f5bea" in Browser(webinar).page().content.decode()  # cached now
    update_brand(
        actor=_admin(owner),
        tenant=owner.tenant,
        data=BrandInput("Acme Live", "#123456", "#14b8a6", False, None),
    )
    html = Browser(webinar).page().content.decode()
    assert "--brand: #123456" in html and "Acme Live" in html


def test_an_ended_room_shows_ended_on_the_next_page(webinar, livekit):
    from conferences.services import rooms as room_services
    from tests.join_helpers import Browser

    assert Browser(webinar).config()["status"] == "open"  # cached now
    room_services.stop_room(room=webinar)
    assert Browser(webinar).config()["status"] == "ended"
    joined = Browser(webinar).join("Late")
    assert joined.json()["error"]["code"] == "ROOM_ENDED"


def _admin(member):
    from accounts.models import Membership

    return Membership.objects.get(user=member.user, tenant=member.tenant)
