"""The webinar stage from the browser: a guest's hand and its answers to an invitation
(authorised by its own join token), the host's stage controls (authorised like every host
action), and the sockets that carry the hand queue and the invitation live -- through the
Channels test communicator and once end to end over a served ASGI app."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from livekit import api as lk_api
from livekit.protocol import models as proto

from accounts.models import Membership
from conferences.models import Participant
from conferences.services import rooms as room_services
from conferences.services import stage
from tests.conftest import assert_error
from tests.join_helpers import Browser, make_room

CAMERA, MIC = proto.TrackSource.CAMERA, proto.TrackSource.MICROPHONE
SCREEN, SCREEN_AUDIO = proto.TrackSource.SCREEN_SHARE, proto.TrackSource.SCREEN_SHARE_AUDIO
SPEAKER = proto.ParticipantPermission(
    can_subscribe=True,
    can_publish=True,
    can_publish_data=True,
    can_publish_sources=[CAMERA, MIC, SCREEN, SCREEN_AUDIO],
)
SPEAKER_MIC_ONLY = proto.ParticipantPermission(
    can_subscribe=True, can_publish=True, can_publish_data=True, can_publish_sources=[MIC]
)
AUDIENCE = proto.ParticipantPermission(can_subscribe=True, can_publish=False, can_publish_data=True)


# --- helpers ----------------------------------------------------------------------------------


def webinar(member, **data):
    return make_room(member, allow_webinar_mode=True, max_speakers=2, **data)


def guest(room, livekit, name: str, ip: str = "198.51.100.7") -> dict:
    """A guest joins from the join page (a viewer in a webinar room) and connects."""
    response = Browser(room, ip=ip).join(name)
    assert response.status_code == 200, response.content
    joined = response.json()
    livekit.join(joined["token"], room=room.room_id)
    return joined


def stage_post(room_id: str, action: str, token: str | None, body=None, *, raw=None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    headers.update(kw.pop("headers", {}))
    data = raw if raw is not None else ("" if body is None else json.dumps(body))
    return Client(enforce_csrf_checks=True).post(
        f"/room/{room_id}/stage/{action}",
        data=data,
        content_type=kw.pop("content_type", "application/json"),
        headers=headers,
    )


def host(room, path: str, body=None, *, method: str = "post", client=None, **headers):
    if not headers and client is None:
        headers = {"X-Host-Secret": room.host_secret}
    kwargs = {"headers": headers}
    if method == "post":  # no body at all, as the page's script sends for most actions
        kwargs.update(
            data="" if body is None else json.dumps(body), content_type="application/json"
        )
    return getattr(client or Client(), method)(
        f"/api/v1/rooms/{room.room_id}/host/stage{path}", **kwargs
    )


def updates_for(livekit, identity: str) -> list:
    return [
        c.request for c in livekit.calls_to("UpdateParticipant") if c.request.identity == identity
    ]


# --- a guest's own actions (join token) -------------------------------------------------------


def test_a_viewer_raises_and_lowers_a_hand_with_its_token(owner, livekit):
    room = webinar(owner)
    vera = guest(room, livekit, "Vera")
    assert vera["role"] == "viewer"
    response = stage_post(room.room_id, "hand", vera["token"], {"raised": True})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["identity"] == vera["identity"] and body["role"] == "viewer"
    assert body["hand_raised"] is True and body["invited"] is False
    [update] = updates_for(livekit, vera["identity"])
    assert dict(update.attributes) == {"role": "viewer", "hand": "raised"}
    assert not update.HasField("permission")  # a hand never touches permissions
    assert [h.identity for h in stage.hand_queue(room=room)] == [vera["identity"]]
    lowered = stage_post(room.room_id, "hand", vera["token"], {"raised": False}).json()
    assert lowered["hand_raised"] is False and stage.hand_queue(room=room) == []
    live = livekit.get_participant(room.room_id, vera["identity"])
    assert "hand" not in live.attributes


def test_invitation_accepted_promotes_live(owner, livekit):
    room = webinar(owner)
    vera = guest(room, livekit, "Vera")
    invited = host(room, f"/{vera['identity']}/invite")
    assert invited.status_code == 200 and invited.json()["invited"] is True
    assert updates_for(livekit, vera["identity"]) == []  # nothing changes before accepting
    accepted = stage_post(room.room_id, "invite/accept", vera["token"])
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["role"] == "speaker" and accepted.json()["invited"] is False
    [update] = updates_for(livekit, vera["identity"])
    assert update.permission == SPEAKER
    assert dict(update.attributes) == {"role": "speaker", "hand": ""}
    # Her next token carries the speaker's grants.
    again = room_services.issue_token(room=room, name="Vera", identity=vera["identity"])
    assert livekit.verify_join_token(again.token)["video"]["canPublish"] is True


def test_invitation_declined(owner, livekit):
    room = webinar(owner)
    vera = guest(room, livekit, "Vera")
    host(room, f"/{vera['identity']}/invite", {"mic_only": True})
    assert Participant.objects.get(identity=vera["identity"]).invite_mic_only is True
    declined = stage_post(room.room_id, "invite/decline", vera["token"], {})
    assert declined.json()["role"] == "viewer" and declined.json()["invited"] is False
    assert updates_for(livekit, vera["identity"]) == []
    again = stage_post(room.room_id, "invite/accept", vera["token"])
    assert_error(again, 409, "NO_INVITATION")


def test_another_rooms_token_is_404(owner, outsider, livekit):
    room, other = webinar(owner), webinar(owner, name="Other")
    foreign = make_room(outsider, allow_webinar_mode=True)
    tokens = [guest(other, livekit, "Olaf")["token"], guest(foreign, livekit, "Fay")["token"]]
    guest(room, livekit, "Vera")
    livekit.calls.clear()
    for token in tokens:
        for action, body in (("hand", {"raised": True}), ("invite/accept", None)):
            assert_error(stage_post(room.room_id, action, token, body), 404, "NOT_FOUND")
    assert_error(stage_post("nosuchroom1", "hand", tokens[0], {"raised": True}), 404)
    assert not livekit.calls


def test_missing_forged_or_expired_tokens_are_401(owner, livekit, settings):
    room = webinar(owner)
    vera = guest(room, livekit, "Vera")
    forged = (
        lk_api.AccessToken(settings.LIVEKIT_API_KEY, "another-secret-of-at-least-32-bytes!!")
        .with_identity(vera["identity"])
        .with_grants(lk_api.VideoGrants(room_join=True, room=room.room_id))
        .to_jwt()
    )
    expired = (
        lk_api.AccessToken(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET)
        .with_identity(vera["identity"])
        .with_grants(lk_api.VideoGrants(room_join=True, room=room.room_id))
        .with_ttl(dt.timedelta(seconds=-120))
        .to_jwt()
    )
    livekit.calls.clear()
    cases = [
        {"token": None},
        {"token": ""},
        {"token": "not-a-jwt"},
        {"token": forged},
        {"token": expired},
        {"token": vera["token"] + "x"},
        {"token": None, "headers": {"Authorization": f"Basic {vera['token']}"}},
        {"token": "\u00e9t\u00e9"},
    ]
    for case in cases:
        response = stage_post(
            room.room_id, "hand", case["token"], {"raised": True}, headers=case.get("headers", {})
        )
        error = assert_error(response, 401, "UNAUTHORIZED")
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert vera["token"] not in error["message"]
    assert not livekit.calls


@pytest.mark.parametrize(
    "raw, content_type, status, code, field",
    [
        (b"{}", "application/json", 400, "INVALID_PARAMETER", "raised"),
        (b'{"raised": "yes"}', "application/json", 400, "INVALID_PARAMETER", "raised"),
        (b'{"raised": 1}', "application/json", 400, "INVALID_PARAMETER", "raised"),
        (b'{"raised": true, "as": "host"}', "application/json", 400, "INVALID_PARAMETER", "as"),
        (b"{not json", "application/json", 400, "INVALID_JSON", None),
        (b"[true]", "application/json", 400, "INVALID_JSON", None),
        (b"[" * 15000, "application/json", 400, "INVALID_JSON", None),
        (b"raised=1", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE", None),
        (
            b'{"raised": "' + b"x" * 20000 + b'"}',
            "application/json",
            413,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
    ],
)
def test_bad_hand_input(owner, livekit, raw, content_type, status, code, field):
    room = webinar(owner)
    vera = guest(room, livekit, "Vera")
    livekit.calls.clear()
    response = stage_post(room.room_id, "hand", vera["token"], raw=raw, content_type=content_type)
    assert_error(response, status, code, field)
    assert not livekit.calls


def test_stage_endpoints_refuse_other_methods_and_unknown_fields(owner, livekit):
    room = webinar(owner)
    vera = guest(room, livekit, "Vera")
    headers = {"Authorization": f"Bearer {vera['token']}"}
    response = Client().get(f"/room/{room.room_id}/stage/hand", headers=headers)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "POST"
    host(room, f"/{vera['identity']}/invite")
    odd = stage_post(room.room_id, "invite/accept", vera["token"], {"mic_only": False})
    assert_error(odd, 400, "INVALID_PARAMETER", "mic_only")
    assert Participant.objects.get(identity=vera["identity"]).role == "viewer"


def test_hosts_do_not_raise_hands_and_the_stage_is_rate_limited(owner, livekit):
    room = webinar(owner)
    hanna = Browser(room)
    hanna.host_page()
    token = hanna.join("Hanna").json()["token"]
    assert_error(stage_post(room.room_id, "hand", token, {"raised": True}), 409, "ALREADY_ON_STAGE")
    vera = guest(room, livekit, "Vera")
    from conferences.services.joining import STAGE_ACTIONS_PER_MINUTE

    for n in range(STAGE_ACTIONS_PER_MINUTE):
        response = stage_post(room.room_id, "hand", vera["token"], {"raised": n % 2 == 0})
        assert response.status_code == 200
    limited = stage_post(room.room_id, "hand", vera["token"], {"raised": True})
    assert_error(limited, 429, "TOO_MANY_ATTEMPTS")
    assert limited["Retry-After"] == "60"


def test_livekit_down_is_503_and_nothing_changes(owner, livekit):
    room = webinar(owner)
    vera = guest(room, livekit, "Vera")
    livekit.down()
    response = stage_post(room.room_id, "hand", vera["token"], {"raised": True})
    assert_error(response, 503, "LIVEKIT_UNAVAILABLE")
    assert stage.hand_queue(room=room) == []


def test_a_guest_who_left_is_not_found(owner, livekit):
    room = webinar(owner)
    vera = guest(room, livekit, "Vera")
    host(room, f"/{vera['identity']}/remove")
    response = stage_post(room.room_id, "hand", vera["token"], {"raised": True})
    assert_error(response, 404, "PARTICIPANT_NOT_FOUND")


# --- the host's stage controls ----------------------------------------------------------------


def test_host_sees_the_queue_and_runs_the_stage(owner, livekit):
    room = webinar(owner)
    ann, bob, cat = (guest(room, livekit, n, ip=f"192.0.2.{i}") for i, n in enumerate("ABC"))
    for who in (bob, ann):
        stage_post(room.room_id, "hand", who["token"], {"raised": True})
    lineup = host(room, "", method="get")
    assert lineup.status_code == 200
    body = lineup.json()
    assert [(h["name"], h["position"]) for h in body["hands"]] == [("B", 1), ("A", 2)]
    assert all(h["waiting_seconds"] >= 0 and h["raised_at"] for h in body["hands"])
    assert body["hands_total"] == 2 and body["speakers"] == [] and body["max_speakers"] == 2

    livekit.calls.clear()
    promoted = host(room, f"/{bob['identity']}/promote")
    assert promoted.json()["role"] == "speaker" and promoted.json()["hand_raised"] is False
    [update] = updates_for(livekit, bob["identity"])
    assert update.permission == SPEAKER
    assert dict(update.attributes) == {"role": "speaker", "hand": ""}

    mic = host(room, f"/{ann['identity']}/promote", {"mic_only": True})
    assert mic.json()["mic_only"] is True
    [update] = updates_for(livekit, ann["identity"])
    assert update.permission == SPEAKER_MIC_ONLY

    body = host(room, "", method="get").json()
    assert [(s["name"], s["mic_only"]) for s in body["speakers"]] == [("A", True), ("B", False)]
    assert body["hands"] == []

    # The cap: a third speaker is 409, and nothing reaches LiveKit.
    calls = len(livekit.calls)
    assert_error(host(room, f"/{cat['identity']}/promote"), 409, "SPEAKER_LIMIT_REACHED")
    assert_error(host(room, f"/{cat['identity']}/invite"), 409, "SPEAKER_LIMIT_REACHED")
    assert len(livekit.calls) == calls

    livekit.publish_track(room.room_id, bob["identity"], source=CAMERA)
    demoted = host(room, f"/{bob['identity']}/demote")
    assert demoted.json()["role"] == "viewer"
    update = updates_for(livekit, bob["identity"])[-1]
    assert update.permission == AUDIENCE
    assert dict(update.attributes) == {"role": "viewer", "hand": ""}
    assert list(livekit.get_participant(room.room_id, bob["identity"]).tracks) == []

    removed = host(room, f"/{ann['identity']}/remove")
    assert removed.json()["present"] is False
    [removal] = livekit.calls_to("RemoveParticipant")
    assert removal.request.identity == ann["identity"]

    stage_post(room.room_id, "hand", cat["token"], {"raised": True})
    assert host(room, "/hands/lower-all").json() == {"lowered": 1}
    assert host(room, "", method="get").json()["hands"] == []


def test_host_stage_errors(owner, livekit):
    room = webinar(owner)
    vera = guest(room, livekit, "Vera")
    path = f"/{vera['identity']}/promote"
    assert_error(host(room, path, {"mic_only": "yes"}), 400, "INVALID_PARAMETER", "mic_only")
    assert_error(host(room, path, {"camera": False}), 400, "INVALID_PARAMETER", "camera")
    raw = Client().post(
        f"/api/v1/rooms/{room.room_id}/host/stage{path}",
        data=b"{nope",
        content_type="application/json",
        headers={"X-Host-Secret": room.host_secret},
    )
    assert_error(raw, 400, "INVALID_JSON")
    assert_error(host(room, "/nobody-here/promote"), 404, "PARTICIPANT_NOT_FOUND")
    assert_error(host(room, "/%00/promote"), 404, "NOT_FOUND")
    room_services.update_room(room=room, data={"host_controls": {"kick_participants": False}})
    assert_error(host(room, f"/{vera['identity']}/remove"), 403, "HOST_CONTROL_DISABLED")
    assert not livekit.calls_to("UpdateParticipant") and not livekit.calls_to("RemoveParticipant")


STAGE_ACTIONS = [
    ("get", ""),
    ("post", "/hands/lower-all"),
    ("post", "/viewer-1/invite"),
    ("post", "/viewer-1/promote"),
    ("post", "/viewer-1/demote"),
    ("post", "/viewer-1/remove"),
]


@pytest.mark.parametrize("method, path", STAGE_ACTIONS)
def test_host_stage_is_authorised_like_other_host_actions(owner, outsider, livekit, method, path):
    room = webinar(owner)
    Participant.objects.create(room=room, identity="viewer-1", name="V", role="viewer")
    stranger = Client()
    stranger.force_login(outsider.user)
    for headers in (
        {"X-API-Key": outsider.api_key},
        {"X-Host-Secret": "a-wrong-secret-of-decent-length-000"},
    ):
        assert_error(host(room, path, method=method, **headers), 404, "NOT_FOUND")
    assert_error(host(room, path, method=method, client=stranger), 404, "NOT_FOUND")
    response = Client().generic(method.upper(), f"/api/v1/rooms/{room.room_id}/host/stage{path}")
    assert_error(response, 401, "UNAUTHORIZED")
    # The tenant's API key works.
    assert host(room, path, method=method, **{"X-API-Key": owner.api_key}).status_code == 200


def test_member_sessions_need_csrf_and_viewers_only_read(owner, outsider, livekit):
    room = webinar(owner)
    vera = guest(room, livekit, "Vera")
    member = Client(enforce_csrf_checks=True)
    member.force_login(owner.user)
    member.get(f"/room/{room.room_id}")
    path = f"/{vera['identity']}/invite"
    assert host(room, path, client=member).status_code == 403
    csrf = member.cookies["csrftoken"].value
    assert host(room, path, client=member, **{"X-CSRFToken": csrf}).status_code == 200
    Membership.objects.create(user=outsider.user, tenant=owner.tenant, role="viewer")
    viewer = Client()
    viewer.force_login(outsider.user)
    assert host(room, "", method="get", client=viewer).status_code == 200
    assert_error(host(room, path, client=viewer), 403, "FORBIDDEN")


@pytest.mark.parametrize("speakers", [1, 30])
def test_lineup_query_count_is_constant(owner, livekit, speakers, django_assert_num_queries):
    room = webinar(owner)
    now = dt.datetime.now(dt.UTC)
    Participant.objects.bulk_create(
        Participant(
            room=room,
            identity=f"p-{i}",
            name=f"P {i}",
            role="speaker" if i % 2 else "viewer",
            hand_raised_at=None if i % 2 else now - dt.timedelta(seconds=i),
            invited_at=now if i % 3 == 0 and not i % 2 else None,
        )
        for i in range(2 * speakers)
    )
    # 1: the room by its public id (host secret checked in memory); 2: the hands;
    # 3: speakers and open invitations.
    with django_assert_num_queries(3):
        body = host(room, "", method="get").json()
    assert len(body["speakers"]) == speakers and len(body["hands"]) == speakers


# --- sockets ----------------------------------------------------------------------------------


def _app():
    from dashboard.asgi import application

    return application


def _socket(path: str, browser: Browser | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    session = browser.client.cookies.get("sessionid") if browser is not None else None
    if session is not None:
        headers.append((b"cookie", f"sessionid={session.value}".encode()))
    ws = WebsocketCommunicator(_app(), path, headers=headers)
    if browser is not None:  # the socket comes from the browser's own address
        ws.scope["client"] = (browser.client.defaults["REMOTE_ADDR"], 50000)
    return ws


async def _stage_socket(room_id: str, token: str) -> WebsocketCommunicator:
    """A guest page's stage socket, authenticated the way the page does: token first."""
    ws = _socket(f"/ws/rooms/{room_id}/stage")
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "auth", "token": token})
    return ws


async def _until(ws: WebsocketCommunicator, predicate, timeout: float = 3):
    while True:
        message = await ws.receive_json_from(timeout=timeout)
        if predicate(message):
            return message


def _hands(message) -> list[str] | None:
    return [h["name"] for h in message["hands"]] if message.get("type") == "stage" else None


@pytest.mark.django_db(transaction=True)
def test_host_socket_carries_the_hand_queue_live(owner, livekit):
    room = webinar(owner)
    hanna = Browser(room)
    hanna.host_page()
    ann = guest(room, livekit, "Ann", ip="192.0.2.1")
    bob = guest(room, livekit, "Bob", ip="192.0.2.2")
    hand = database_sync_to_async(stage_post)

    async def scenario():
        ws = _socket(f"/ws/rooms/{room.room_id}/host", hanna)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from())["type"] == "lobby"
        first = await ws.receive_json_from()
        assert first["type"] == "stage" and first["hands"] == [] and first["max_speakers"] == 2
        await hand(room.room_id, "hand", bob["token"], {"raised": True})
        await _until(ws, lambda m: _hands(m) == ["Bob"])
        await hand(room.room_id, "hand", ann["token"], {"raised": True})
        message = await _until(ws, lambda m: _hands(m) == ["Bob", "Ann"])
        assert [h["position"] for h in message["hands"]] == [1, 2]
        assert all(h["waiting_seconds"] >= 0 for h in message["hands"])
        await hand(room.room_id, "hand", bob["token"], {"raised": False})
        await _until(ws, lambda m: _hands(m) == ["Ann"])
        await database_sync_to_async(host)(room, f"/{ann['identity']}/promote")
        message = await _until(ws, lambda m: _hands(m) == [])
        assert [s["name"] for s in message["speakers"]] == ["Ann"]
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_host_socket_of_a_plain_room_has_no_stage(owner, livekit):
    room = make_room(owner)
    hanna = Browser(room)
    hanna.host_page()

    async def scenario():
        ws = _socket(f"/ws/rooms/{room.room_id}/host", hanna)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from())["type"] == "lobby"
        assert await ws.receive_nothing(timeout=0.2)
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_invitation_reaches_the_viewer_and_a_decline_the_host(owner, livekit):
    room = webinar(owner)
    hanna = Browser(room)
    hanna.host_page()
    vera = guest(room, livekit, 'Vera & "Co"', ip="192.0.2.1")
    walt = guest(room, livekit, "Walt", ip="192.0.2.2")

    async def scenario():
        host_ws = _socket(f"/ws/rooms/{room.room_id}/host", hanna)
        assert (await host_ws.connect())[0]
        await _until(host_ws, lambda m: m["type"] == "stage")
        vera_ws = await _stage_socket(room.room_id, vera["token"])
        hello = await vera_ws.receive_json_from()
        assert hello == {
            "type": "stage",
            "event": None,
            "identity": vera["identity"],
            "role": "viewer",
            "mic_only": False,
            "hand_raised": False,
            "hand_raised_at": None,
            "invited": False,
            "invite_mic_only": False,
        }
        walt_ws = await _stage_socket(room.room_id, walt["token"])
        await walt_ws.receive_json_from()
        status_ws = _socket(f"/ws/rooms/{room.room_id}/status")
        assert (await status_ws.connect())[0]
        await status_ws.receive_json_from()

        await database_sync_to_async(host)(room, f"/{vera['identity']}/invite", {"mic_only": True})
        invited = await vera_ws.receive_json_from(timeout=3)
        assert invited["event"] == "participant.invited"
        assert invited["invited"] is True and invited["invite_mic_only"] is True
        assert await walt_ws.receive_nothing(timeout=0.2)  # per identity: Walt hears nothing
        assert await status_ws.receive_nothing(timeout=0.05)  # nor do the room's status pages

        await database_sync_to_async(stage_post)(room.room_id, "invite/decline", vera["token"])
        notice = await _until(host_ws, lambda m: m["type"] == "stage.declined")
        assert notice == {
            "type": "stage.declined",
            "identity": vera["identity"],
            "name": 'Vera & "Co"',
        }
        declined = await vera_ws.receive_json_from(timeout=3)
        assert declined["event"] == "participant.invite_declined" and declined["invited"] is False

        # Invited again and accepted: promoted; the socket says so.
        await database_sync_to_async(host)(room, f"/{vera['identity']}/invite")
        await _until(vera_ws, lambda m: m["invited"])
        await database_sync_to_async(stage_post)(room.room_id, "invite/accept", vera["token"])
        promoted = await _until(vera_ws, lambda m: m["event"] == "participant.promoted")
        assert promoted["role"] == "speaker" and promoted["invited"] is False

        # Removed: the socket closes (its identity is no longer in the room).
        await database_sync_to_async(host)(room, f"/{vera['identity']}/remove")
        closed = await vera_ws.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4403}
        for ws in (walt_ws, host_ws, status_ws):
            await ws.disconnect()

    async_to_sync(scenario)()
    assert updates_for(livekit, vera["identity"])[-1].permission == SPEAKER


@pytest.mark.django_db(transaction=True)
def test_stage_socket_needs_a_valid_token_for_this_room(owner, livekit, settings):
    room, other = webinar(owner), webinar(owner, name="Other")
    vera = guest(room, livekit, "Vera")
    olaf = guest(other, livekit, "Olaf")
    forged = (
        lk_api.AccessToken(settings.LIVEKIT_API_KEY, "another-secret-of-at-least-32-bytes!!")
        .with_identity(vera["identity"])
        .with_grants(lk_api.VideoGrants(room_join=True, room=room.room_id))
        .to_jwt()
    )

    async def scenario():
        for token in ("", forged, olaf["token"], "\x00", 7, None):
            ws = _socket(f"/ws/rooms/{room.room_id}/stage")
            assert (await ws.connect())[0]
            await ws.send_json_to({"type": "auth", "token": token})
            closed = await ws.receive_output(timeout=3)
            assert closed["type"] == "websocket.close", token
            assert closed["code"] in (4401, 4403), token
        # Anything but an auth message first closes it; so does another room's id.
        ws = _socket(f"/ws/rooms/{room.room_id}/stage")
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "refresh", "token": vera["token"]})
        assert await ws.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
        ws = await _stage_socket("nosuchroom1", vera["token"])
        assert await ws.receive_output(timeout=3) == {"type": "websocket.close", "code": 4403}
        # The old URL form is refused at the handshake, even with a valid token.
        ws = _socket(f"/ws/rooms/{room.room_id}/stage?token={vera['token']}")
        assert (await ws.connect()) == (False, 4403)
        # A page on another site cannot open it either.
        foreign = WebsocketCommunicator(
            _app(),
            f"/ws/rooms/{room.room_id}/stage",
            headers=[(b"origin", b"http://evil.example")],
        )
        assert not (await foreign.connect())[0]
        ws = await _stage_socket(room.room_id, vera["token"])
        await ws.receive_json_from()
        await ws.send_json_to({"type": "refresh"})
        assert (await ws.receive_json_from())["identity"] == vera["identity"]
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_stage_socket_closes_when_no_token_comes_in_time(owner, livekit, settings):
    settings.STAGE_AUTH_SECONDS = 0.2
    room = webinar(owner)

    async def scenario():
        ws = _socket(f"/ws/rooms/{room.room_id}/stage")
        assert (await ws.connect())[0]
        assert await ws.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


# --- end to end over a served app ------------------------------------------------------------


@pytest.fixture
def served(transactional_db, livekit):
    from tests.browser.conftest import LiveServer

    server = LiveServer()
    yield server
    server.stop()


def test_stage_round_trip_over_a_served_app(owner, livekit, served):
    """uvicorn serves the project's ASGI app: real HTTP and real websockets."""
    import httpx
    from websockets.asyncio.client import connect

    room = webinar(owner)
    hanna = Browser(room)
    hanna.host_page()
    session = hanna.client.cookies["sessionid"].value
    vera = guest(room, livekit, "Vera")
    origin = served.url
    ws_base = served.url.replace("http://", "ws://")

    async def scenario():
        async with (
            httpx.AsyncClient(base_url=served.url, trust_env=False, timeout=10) as http,
            connect(
                f"{ws_base}/ws/rooms/{room.room_id}/host",
                origin=origin,
                additional_headers={"Cookie": f"sessionid={session}"},
                proxy=None,
            ) as host_ws,
            connect(
                f"{ws_base}/ws/rooms/{room.room_id}/stage", origin=origin, proxy=None
            ) as vera_ws,
        ):
            await vera_ws.send(json.dumps({"type": "auth", "token": vera["token"]}))

            async def next_matching(ws, predicate):
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
                    if predicate(message):
                        return message

            await next_matching(host_ws, lambda m: m["type"] == "stage")
            assert (await next_matching(vera_ws, lambda m: True))["invited"] is False
            response = await http.post(
                f"/room/{room.room_id}/stage/hand",
                json={"raised": True},
                headers={"Authorization": f"Bearer {vera['token']}"},
            )
            assert response.status_code == 200, response.text
            queue = await next_matching(host_ws, lambda m: _hands(m) == ["Vera"])
            assert queue["hands"][0]["identity"] == vera["identity"]
            response = await http.post(
                f"/api/v1/rooms/{room.room_id}/host/stage/{vera['identity']}/invite",
                headers={"X-Host-Secret": room.host_secret},
            )
            assert response.status_code == 200, response.text
            invited = await next_matching(vera_ws, lambda m: m.get("invited"))
            assert invited["event"] == "participant.invited"
            response = await http.post(
                f"/room/{room.room_id}/stage/invite/accept",
                headers={"Authorization": f"Bearer {vera['token']}"},
            )
            assert response.json()["role"] == "speaker"
            await next_matching(vera_ws, lambda m: m["event"] == "participant.promoted")
            await next_matching(host_ws, lambda m: m.get("type") == "stage" and m["speakers"])

    asyncio.run(scenario())
    assert updates_for(livekit, vera["identity"])[-1].permission == SPEAKER
