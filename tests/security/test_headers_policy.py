"""Issue 17, item 13, at the HTTP level: the Content-Security-Policy every page gets (no
inline script anywhere, no inline style outside the API docs, this host's websockets and,
on pages that join LiveKit only, the LiveKit URL), the Permissions-Policy that lets only the
join, host and API tester pages ask for a camera, microphone or screen, and `Cache-Control:
no-store` on the API answers that carry tokens or host links (v1, the call tokens, every
facade). The same policy in real Chromium: tests/security/browser/test_headers_csp.py."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from parley import headers
from tests.conftest import Api
from tests.dashboard_cast import Cast
from tests.join_helpers import Browser

MEDIA = "camera=(self), microphone=(self), display-capture=(self)"
NO_MEDIA = "camera=(), microphone=(), display-capture=()"


def policy(response) -> dict[str, list[str]]:
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_pages_get_a_strict_policy(cast: Cast, livekit):
    pages = {
        "join": Client().get(f"/room/{cast.room.room_id}"),
        "host": Client().get(f"/room/{cast.room.room_id}/host/{cast.room.host_secret}"),
        "dashboard": cast.client("owner").get("/dashboard/"),
        "branding": cast.client("owner").get("/dashboard/branding/"),
        "login": Client().get("/accounts/login/"),
        "api": Api(None).request("GET", "/api/v1/rooms"),
    }
    for name, response in pages.items():
        csp = policy(response)
        assert csp["script-src"] == ["'self'"], name  # no inline script, no eval
        assert "'unsafe-inline'" not in csp["style-src"], name
        assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"], name
        assert csp["frame-ancestors"] == ["'none'"], name
        assert {"'self'", "ws://testserver", "wss://testserver"} <= set(csp["connect-src"]), name
    # Only pages that join LiveKit may connect to it (its websocket and HTTP origins).
    lk = livekit.ws_url.split("://", 1)[1].split("/")[0]
    for name in ("join", "host"):
        assert {f"ws://{lk}", f"http://{lk}"} <= set(policy(pages[name])["connect-src"]), name
    assert not any(lk in s for s in policy(pages["dashboard"])["connect-src"])
    # The tenant's colours are a <style> with this answer's nonce, which the header names.
    for name in ("join", "branding"):
        html = pages[name].content.decode()
        nonce = re.search(r'<style nonce="([^"]+)"', html).group(1)
        assert f"'nonce-{nonce}'" in policy(pages[name])["style-src"], name
        assert "<script>" not in html and " style=" not in html, name


def test_only_the_api_docs_allow_inline_styles_and_no_page_inline_scripts(db):
    docs = Client().get("/api/v1/docs/")
    assert docs.status_code == 200
    assert "'unsafe-inline'" in policy(docs)["style-src"]
    assert policy(docs)["script-src"] == ["'self'"]
    html = docs.content.decode()
    assert "<script>" not in html  # Swagger UI's setup comes from docs/?script
    script = Client().get("/api/v1/docs/?script")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_camera_microphone_and_screen_only_on_pages_that_join(cast: Cast, livekit):
    media = {
        f"/room/{cast.room.room_id}": Client(),
        f"/room/{cast.room.room_id}/host/{cast.room.host_secret}": Client(),
        "/api-tester/": cast.client("owner"),
    }
    for path, client in media.items():
        assert client.get(path)["Permissions-Policy"] == MEDIA, path
    elsewhere = {
        "/dashboard/": cast.client("owner"),
        f"/dashboard/rooms/{cast.room.room_id}/": cast.client("owner"),
        "/accounts/login/": Client(),
        "/": Client(),
        "/api/v1/rooms": Client(),
        "/room/nosuchroom1": Client(),
    }
    for path, client in elsewhere.items():
        assert client.get(path)["Permissions-Policy"] == NO_MEDIA, path


@pytest.mark.django_db
def test_api_answers_with_tokens_or_host_links_are_never_stored(owner, livekit):
    api = Api(owner.api_key)
    created = api.post("/api/v1/rooms", {"name": "Board room"})
    assert created.status_code == 201 and "host_url" in created.json()
    room_id = created.json()["room_id"]
    answers = {
        "create": created,
        "get": api.get(f"/api/v1/rooms/{room_id}"),
        "list": api.get("/api/v1/rooms"),
        "token": api.post(f"/api/v1/rooms/{room_id}/tokens", {"name": "Ann"}),
        "call-token": api.post("/api/v1/call-tokens", {"id": "u1", "firstName": "Ada"}),
        "error": api.get("/api/v1/rooms/nosuchroom1"),
        "show-join": api.post(
            "/api/rooms/join", {"roomName": "my-show", "participantName": "h", "role": "host"}
        ),
        "videosdk": Client().get("/v2/rooms", headers={"Authorization": "not-a-token"}),
    }
    callaba = Client().post(
        "/api/conferences/create",
        data=json.dumps({"name": "Cb room"}),
        content_type="application/json",
        headers={"x-access-token": owner.api_key},
    )
    answers["callaba-create"] = callaba
    from conferences.models import Room

    cb_room = Room.objects.get(object_id=callaba.json()["id"])
    answers["callaba-token"] = Client().post(
        "/api/conferences-public/createToken",
        data=json.dumps(
            {
                "room_id": cb_room.object_id,
                "LKRoomName": cb_room.livekit_name,
                "participant_name": "Pat",
                "participant_id": "pat-1",
            }
        ),
        content_type="application/json",
    )
    for name, response in answers.items():
        assert response.status_code < 500, (name, response.content)
        assert response["Cache-Control"] == "no-store", name
    assert answers["token"].status_code == 200 and answers["callaba-token"].status_code == 200


@pytest.mark.django_db
def test_the_join_pages_own_token_answer_is_never_stored(owner, livekit):
    from tests.join_helpers import make_room

    room = make_room(owner)
    joined = Browser(room).join("Ann")
    assert joined.status_code == 200 and "token" in joined.json()
    assert joined["Cache-Control"] == "no-store"


def test_livekit_sources_and_per_answer_widening():
    assert headers.livekit_sources("wss://lk.example.com/base") == [
        "https://lk.example.com",
        "wss://lk.example.com",
    ]
    assert headers.livekit_sources("ws://127.0.0.1:7880") == [
        "http://127.0.0.1:7880",
        "ws://127.0.0.1:7880",
    ]
    assert headers.livekit_sources("") == [] and headers.origin("not a url") is None
    from django.http import HttpResponse

    response = headers.allow(
        HttpResponse(),
        connect=["https://s3.example.com/bucket/live.m3u8?x=1", None],
        media=["https://s3.example.com/bucket/live.m3u8"],
    )
    assert response._csp_update == {
        "connect-src": ["https://s3.example.com"],
        "media-src": ["https://s3.example.com"],
    }
