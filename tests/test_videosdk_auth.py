"""Authentication of the VideoSDK-compatible API (`Authorization: <JWT>`, no prefix), the
participant token at Parley's join endpoint, signing keys at rest, and customRoomId under
concurrent creates."""

from __future__ import annotations

import threading
import time

import jwt
import pytest
from django.db import connection, transaction
from django.test import Client

from accounts import crypto, signing_keys
from accounts.models import Membership, SigningKey
from conferences.models import Participant, Room
from conferences.services import rooms as room_services
from tests.conftest import assert_error
from tests.videosdk_helpers import SigningPair, VideoSdkClient, assert_videosdk_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(owner) -> SigningPair:
    return SigningPair(owner.tenant)


class TestApiTokens:
    def test_good_token(self, pair):
        response = VideoSdkClient(pair.token()).get("/v2/rooms")
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "100"
        assert response["X-RateLimit-Remaining"] == "99"

    def test_version_and_roles_are_optional(self, pair):
        token = pair.token(version=None, roles=["crawler"], permissions=["allow_mod"])
        assert VideoSdkClient(token).get("/v2/rooms").status_code == 200

    def test_bearer_prefix_is_tolerated(self, pair):
        assert VideoSdkClient(f"Bearer {pair.token()}").get("/v2/rooms").status_code == 200

    def test_parley_api_key(self, owner):
        response = VideoSdkClient(owner.api_key).post("/v2/rooms", {"customRoomId": "by-key"})
        assert response.status_code == 200
        assert Room.objects.get(custom_room_id="by-key").tenant == owner.tenant

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda p: p.token(lifetime=-120), id="expired"),
            pytest.param(lambda p: p.token(secret="0" * 64), id="wrong-secret"),
            pytest.param(lambda p: p.token(exp=None), id="missing-exp"),
            pytest.param(lambda p: p.token(lifetime=25 * 3600), id="exp-beyond-24h"),
            pytest.param(
                lambda p: p.token(iat=None, lifetime=25 * 3600), id="exp-beyond-24h-no-iat"
            ),
            pytest.param(lambda p: p.token(apikey="nope"), id="unknown-apikey"),
            pytest.param(lambda p: p.token(apikey=None), id="missing-apikey"),
            pytest.param(lambda p: p.token(permissions=None), id="missing-permissions"),
            pytest.param(lambda p: p.token(permissions="allow_join"), id="permissions-not-list"),
            pytest.param(lambda p: p.token(version=1), id="version-1"),
            pytest.param(lambda p: p.token(roles=["admin"]), id="unknown-role"),
            pytest.param(
                lambda p: jwt.encode(
                    {"apikey": p.key_id, "permissions": ["allow_join"], "exp": time.time() + 60},
                    p.secret,
                    algorithm="HS512",
                ),
                id="hs512",
            ),
            pytest.param(
                lambda p: jwt.encode(
                    {"apikey": p.key_id, "permissions": ["allow_join"], "exp": time.time() + 60},
                    None,
                    algorithm="none",
                ),
                id="alg-none",
            ),
            pytest.param(lambda p: "not-a-jwt", id="garbage"),
            pytest.param(lambda p: "a.b.c", id="three-garbage-parts"),
            pytest.param(lambda p: "pk_000000000000_" + "x" * 40, id="bad-pk-key"),
        ],
    )
    def test_rejected_tokens_are_401(self, pair, make):
        response = VideoSdkClient(make(pair)).get("/v2/rooms")
        assert_videosdk_error(response, 401)
        assert response.json()["error"] == "Unauthorized"
        assert "X-RateLimit-Limit" not in response

    def test_missing_header_is_401(self):
        assert_videosdk_error(Client().get("/v2/rooms"), 401, "Authorization")

    def test_revoked_key_is_401(self, pair, owner):
        token = pair.token()
        assert VideoSdkClient(token).get("/v2/rooms").status_code == 200
        actor = Membership.objects.get(tenant=owner.tenant, user=owner.user)
        signing_keys.revoke_signing_key(actor=actor, key=pair.key)
        assert_videosdk_error(VideoSdkClient(token).get("/v2/rooms"), 401, "revoked")

    def test_missing_permission_is_403(self, pair):
        token = pair.token(permissions=["ask_join"])
        assert_videosdk_error(VideoSdkClient(token).get("/v2/rooms"), 403, "allow_join")

    def test_participant_tokens_cannot_call_the_api(self, pair):
        token = pair.token(roomId="abcd-efgh-ijkl", participantId="ada")
        assert_videosdk_error(VideoSdkClient(token).get("/v2/rooms"), 403, "participant")

    def test_rtc_only_tokens_cannot_call_the_api(self, pair):
        token = pair.token(roles=["rtc"])
        assert_videosdk_error(VideoSdkClient(token).get("/v2/rooms"), 403, "crawler")

    def test_secret_is_encrypted_at_rest(self, pair):
        stored = SigningKey.objects.get(pk=pair.key.pk).secret_encrypted
        assert pair.secret not in stored
        assert crypto.decrypt(stored, purpose="videosdk") == pair.secret
        assert len(pair.secret) == 64

    def test_last_used_is_recorded(self, pair):
        VideoSdkClient(pair.token()).get("/v2/rooms")
        assert SigningKey.objects.get(pk=pair.key.pk).last_used_at is not None


# --- the participant token at Parley's join endpoint -------------------------------------------


def join(room: Room, token: str | None, body=None, *, path: str | None = None):
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR="198.51.100.9")
    headers = {"Authorization": token} if token else {}
    return client.post(
        path or f"/room/{room.meeting_id}/join",
        data=body if body is not None else "{}",
        content_type="application/json",
        headers=headers,
    )


@pytest.fixture
def sdk_room(owner) -> Room:
    return room_services.create_room(
        tenant=owner.tenant, data={"custom_room_id": "standup", "name": "standup"}
    )


class TestParticipantJoin:
    def test_join_with_a_participant_token(self, pair, sdk_room, livekit):
        token = pair.token(roomId=sdk_room.meeting_id, participantId="user-42")
        response = join(sdk_room, token, '{"name": "Ada"}')  # no CSRF token, no session
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "admitted"
        assert body["identity"] == "user-42" and body["name"] == "Ada"
        assert body["role"] == "participant"
        claims = livekit.verify_join_token(body["token"], room=sdk_room.room_id)
        assert claims["sub"] == "user-42"
        assert Participant.objects.get(room=sdk_room).identity == "user-42"

    def test_name_defaults_to_the_participant_id(self, pair, sdk_room, livekit):
        token = pair.token(roomId=sdk_room.meeting_id, participantId="lxvdplwt")
        assert join(sdk_room, token).json()["name"] == "lxvdplwt"

    def test_parley_room_id_works_too(self, pair, sdk_room, livekit):
        token = f"Bearer {pair.token(roomId=sdk_room.room_id, participantId='p1')}"
        response = join(sdk_room, token, path=f"/room/{sdk_room.room_id}/join")
        assert response.status_code == 200

    def test_allow_mod_joins_as_host(self, pair, sdk_room, livekit):
        token = pair.token(
            roomId=sdk_room.meeting_id, participantId="mod", permissions=["allow_mod"]
        )
        assert join(sdk_room, token).json()["role"] == "host"

    def test_token_replaces_the_access_checks_and_the_lobby(self, pair, owner, livekit):
        room = room_services.create_room(
            tenant=owner.tenant,
            data={
                "name": "Locked",
                "access_type": "password",
                "password": "secret123",
                "waiting_room_enabled": True,
            },
        )
        token = pair.token(roomId=room.meeting_id, participantId="vip")
        response = join(room, token)
        assert response.status_code == 200 and response.json()["status"] == "admitted"

    def test_a_session_ended_room_opens_its_next_session(self, pair, sdk_room, livekit):
        room_services.start_room(room=sdk_room)
        room_services.stop_room(room=sdk_room)
        token = pair.token(roomId=sdk_room.meeting_id, participantId="again")
        assert join(sdk_room, token).status_code == 200
        sdk_room.refresh_from_db()
        assert sdk_room.live_since is not None and sdk_room.sessions.count() == 2

    def test_livekit_down_is_503_and_nothing_is_written(self, pair, sdk_room, livekit):
        livekit.down()
        token = pair.token(roomId=sdk_room.meeting_id, participantId="p")
        assert_error(join(sdk_room, token), 503)
        sdk_room.refresh_from_db()
        assert sdk_room.live_since is None and not sdk_room.sessions.exists()
        assert not Participant.objects.exists()

    def test_deactivated_room_refuses(self, pair, sdk_room, livekit):
        room_services.deactivate_room(room=sdk_room)
        token = pair.token(roomId=sdk_room.meeting_id, participantId="late")
        assert_error(join(sdk_room, token), 409)
        assert not livekit.calls_to("CreateRoom")

    @pytest.mark.parametrize(
        ("claims", "status"),
        [
            ({"lifetime": -120}, 401),
            ({"secret": "f" * 64}, 401),
            ({"participantId": None}, 401),
            ({"roomId": None}, 401),
            ({"roomId": "zzzz-zzzz-zzzz"}, 404),
            ({"roles": ["crawler"]}, 403),
            ({"permissions": ["ask_join"]}, 403),
        ],
    )
    def test_bad_participant_tokens(self, pair, sdk_room, livekit, claims, status):
        base = {"roomId": sdk_room.meeting_id, "participantId": "p"}
        token = pair.token(**{**base, **claims})
        response = join(sdk_room, token)
        assert_error(response, status)
        if status == 401:
            assert response["WWW-Authenticate"]
        assert not Participant.objects.exists()

    def test_another_tenants_token_is_404(self, outsider, sdk_room, livekit):
        theirs = SigningPair(outsider.tenant)
        token = theirs.token(roomId=sdk_room.meeting_id, participantId="spy")
        assert_error(join(sdk_room, token), 404)

    def test_without_a_token_the_csrf_check_still_applies(self, sdk_room):
        assert_error(join(sdk_room, None, '{"name": "Ada"}'), 403, "CSRF_FAILED")
        # A browser's ambient basic-auth credentials are not a token: still the CSRF check.
        assert_error(join(sdk_room, "Basic dXNlcjpwYXNz", '{"name": "Ada"}'), 403, "CSRF_FAILED")


# --- customRoomId under concurrent creates -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_custom_room_id_make_one_room(owner):
    token = SigningPair(owner.tenant).token()
    barrier = threading.Barrier(2)
    answers: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait(timeout=10)
            response = VideoSdkClient(token).post("/v2/rooms", {"customRoomId": "race"})
            answers.append((response.status_code, response.json()["roomId"]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert [status for status, _ in answers] == [200, 200]
    assert answers[0][1] == answers[1][1]
    assert Room.objects.filter(tenant=owner.tenant, custom_room_id="race").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_create_that_loses_the_race_returns_the_winner(owner):
    """The losing side of the race, made deterministic: another transaction has inserted
    the room but not committed, so this call's lookup sees nothing, its insert waits for
    the other's commit and is then refused by the unique constraint; it answers the
    winner's room, and its own counter bump is rolled back."""
    inserted, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def winner() -> None:
        try:
            with transaction.atomic():
                room_services.create_room(
                    tenant=owner.tenant, data={"custom_room_id": "race", "name": "race"}
                )
                inserted.set()
                release.wait(timeout=10)
                time.sleep(0.3)  # the loser is now waiting on the write
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=winner)
    thread.start()
    assert inserted.wait(timeout=10)
    release.set()
    room, created = room_services.create_or_get_room(
        tenant=owner.tenant, data={"custom_room_id": "race", "name": "race"}
    )
    thread.join(timeout=30)
    assert not errors, errors
    assert created is False
    assert Room.objects.filter(tenant=owner.tenant, custom_room_id="race").count() == 1
    assert room.pk == Room.objects.get(custom_room_id="race").pk
    owner.tenant.refresh_from_db()
    assert owner.tenant.room_seq == 1


def test_the_join_page_answers_at_the_room_id_too(sdk_room):
    page = Client().get(f"/room/{sdk_room.meeting_id}")
    assert page.status_code == 200
    assert sdk_room.room_id in page.content.decode()
    assert Client().get("/room/abcd-abcd-abcd").status_code == 404
