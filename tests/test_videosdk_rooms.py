"""The VideoSDK-compatible rooms API (/v2/rooms): create with the reference's body, the
response's keys and formats, the stored settings other parts of Parley consume, listing,
validate, deactivate, and outsiders."""

from __future__ import annotations

import copy
import datetime as dt
import re

import pytest

from conferences.models import Room, RoomSession, WaitingEntry
from conferences.services import rooms as room_services
from tests.conftest import Api, assert_error
from tests.videosdk_helpers import (
    REFERENCE_BODY,
    SigningPair,
    VideoSdkClient,
    assert_videosdk_error,
)

pytestmark = pytest.mark.django_db

ROOM_ID = re.compile(r"^[a-z]{4}-[a-z]{4}-[a-z]{4}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RESPONSE_KEYS = {
    "roomId",
    "customRoomId",
    "userId",
    "disabled",
    "createdAt",
    "updatedAt",
    "id",
    "links",
}


@pytest.fixture
def pair(owner) -> SigningPair:
    return SigningPair(owner.tenant)


@pytest.fixture
def sdk(pair) -> VideoSdkClient:
    return VideoSdkClient(pair.token())


@pytest.fixture
def outsider_sdk(outsider) -> VideoSdkClient:
    return VideoSdkClient(SigningPair(outsider.tenant).token())


def create(sdk: VideoSdkClient, body=None) -> dict:
    response = sdk.post("/v2/rooms", body or {})
    assert response.status_code == 200, response.content
    return response.json()


class TestCreate:
    def test_reference_body_answers_the_reference_shape(self, sdk, owner):
        response = sdk.post("/v2/rooms", REFERENCE_BODY)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == RESPONSE_KEYS
        assert ROOM_ID.match(body["roomId"])
        assert body["customRoomId"] == "aaa-bbb-ccc"
        assert body["userId"] == owner.tenant.public_id
        assert body["disabled"] is False
        assert TIMESTAMP.match(body["createdAt"]) and TIMESTAMP.match(body["updatedAt"])
        assert re.fullmatch(r"[0-9a-f]{24}", body["id"])
        assert body["links"] == {
            "get_room": f"http://testserver/v2/rooms/{body['roomId']}",
            "get_session": "http://testserver/v2/sessions/",
        }
        assert response["X-RateLimit-Limit"] == "100"

    def test_reference_body_is_stored_in_parleys_vocabulary(self, sdk, owner):
        body = create(sdk, REFERENCE_BODY)
        room = Room.objects.get(tenant=owner.tenant, meeting_id=body["roomId"])
        assert room.custom_room_id == "aaa-bbb-ccc"
        assert room.name == "aaa-bbb-ccc"
        assert room.webhook_url == "https://hooks.example.com/videosdk"
        assert room.webhook_events == [
            "participant-joined",
            "participant-left",
            "session-started",
            "session-ended",
        ]
        assert (room.auto_close_type, room.auto_close_duration) == (
            "session-end-and-deactivate",
            60,
        )
        assert room.recording_enabled is True
        assert room.recording_layout == "single-speaker"  # SPOTLIGHT
        assert room.recording_options == {
            "priority": "PIN",
            "grid_size": 3,
            "theme": "DARK",
            "audio_only": True,
            "quality": "high",
            "orientation": "portrait",
            "prefix": "meetings/2026",
        }
        assert room.hls_options == {
            "layout": "speaker",  # SIDEBAR
            "priority": "SPEAKER",
            "grid_size": 4,
            "theme": "LIGHT",
            "audio_only": False,
            "quality": "med",
            "orientation": "landscape",
        }

    def test_the_same_room_everywhere_in_parley(self, sdk, owner):
        body = create(sdk, REFERENCE_BODY)
        room = Room.objects.get(meeting_id=body["roomId"])
        v1 = Api(owner.api_key).get(f"/api/v1/rooms/{room.room_id}").json()
        assert v1["auto_close_config"] == {"type": "session-end-and-deactivate", "duration": 60}
        assert v1["recording_enabled"] is True and v1["status"] == "active"

    def test_empty_body_defaults(self, sdk):
        body = create(sdk)
        assert body["customRoomId"] is None
        room = Room.objects.get(meeting_id=body["roomId"])
        assert room.name == body["roomId"]
        assert (room.auto_close_type, room.auto_close_duration) == ("session-ends", 480)
        assert room.recording_enabled is False and room.hls_options is None
        assert room.webhook_url == "" and room.webhook_events == []

    def test_grid_layout_and_default_hls(self, sdk):
        body = create(
            sdk,
            {
                "autoStartConfig": {
                    "recording": {"config": {"layout": {"type": "GRID"}}},
                    "hls": {},
                }
            },
        )
        room = Room.objects.get(meeting_id=body["roomId"])
        assert room.recording_layout == "grid" and room.recording_options == {}
        assert room.hls_options == {"layout": "grid"}

    def test_same_custom_room_id_returns_the_existing_room(self, sdk, owner):
        first = create(sdk, {"customRoomId": "weekly-sync"})
        again = sdk.post("/v2/rooms", {"customRoomId": "weekly-sync"})
        assert again.status_code == 200
        assert again.json()["roomId"] == first["roomId"]
        assert again.json()["id"] == first["id"]
        assert Room.objects.filter(tenant=owner.tenant, custom_room_id="weekly-sync").count() == 1

    def test_custom_room_ids_are_per_tenant(self, sdk, outsider_sdk):
        mine = create(sdk, {"customRoomId": "shared-name"})
        theirs = create(outsider_sdk, {"customRoomId": "shared-name"})
        assert mine["roomId"] != theirs["roomId"]

    def test_transcription_is_refused(self, sdk):
        body = copy.deepcopy(REFERENCE_BODY)
        body["autoStartConfig"]["recording"]["transcription"]["enabled"] = True
        response = sdk.post("/v2/rooms", body)
        assert response.status_code == 400
        assert response.json() == {
            "statusCode": 400,
            "error": "Bad Request",
            "message": "transcription is not available on this server",
        }
        assert not Room.objects.exists()

    def test_summary_is_refused(self, sdk):
        body = {
            "autoStartConfig": {
                "hls": {"transcription": {"enabled": False, "summary": {"enabled": True}}}
            }
        }
        response = sdk.post("/v2/rooms", body)
        assert response.json() == {
            "statusCode": 400,
            "error": "Bad Request",
            "message": "transcription is not available on this server",
        }

    @pytest.mark.parametrize(
        ("body", "named"),
        [
            (
                {"webhook": {"endPoint": "https://x.example", "events": ["meeting-ended"]}},
                "meeting-ended",
            ),
            (
                {"webhook": {"endPoint": "ftp://x.example", "events": ["session-ended"]}},
                "webhook.endPoint",
            ),
            ({"webhook": {"endPoint": "https://x.example", "events": []}}, "webhook.events"),
            ({"webhook": "see example"}, "webhook"),
            ({"autoCloseConfig": {"type": "never"}}, "autoCloseConfig.type"),
            ({"autoCloseConfig": {"duration": 0}}, "autoCloseConfig.duration"),
            ({"autoCloseConfig": {"duration": "60"}}, "autoCloseConfig.duration"),
            (
                {"autoStartConfig": {"recording": {"config": {"layout": {"gridSize": 5}}}}},
                "autoStartConfig.recording.config.layout.gridSize",
            ),
            (
                {"autoStartConfig": {"recording": {"config": {"layout": {"type": "MOSAIC"}}}}},
                "autoStartConfig.recording.config.layout.type",
            ),
            (
                {"autoStartConfig": {"hls": {"config": {"layout": {"priority": "LOUDEST"}}}}},
                "autoStartConfig.hls.config.layout.priority",
            ),
            (
                {"autoStartConfig": {"recording": {"config": {"theme": "NEON"}}}},
                "autoStartConfig.recording.config.theme",
            ),
            (
                {"autoStartConfig": {"recording": {"config": {"mode": "video"}}}},
                "autoStartConfig.recording.config.mode",
            ),
            (
                {"autoStartConfig": {"hls": {"config": {"quality": "4k"}}}},
                "autoStartConfig.hls.config.quality",
            ),
            (
                {"autoStartConfig": {"hls": {"config": {"orientation": "square"}}}},
                "autoStartConfig.hls.config.orientation",
            ),
            (
                {"autoStartConfig": {"recording": {"awsDirPath": "/etc/../x"}}},
                "autoStartConfig.recording.awsDirPath",
            ),
            (
                {"autoStartConfig": {"hls": {"config": {"recording": {"enabled": True}}}}},
                "autoStartConfig.hls.config.recording",
            ),
            (
                {"autoStartConfig": {"recording": {"templateUrl": "https://t.example"}}},
                "autoStartConfig.recording.templateUrl",
            ),
            (
                {"autoStartConfig": {"recording": {"templateUrl": "not a url"}}},
                "autoStartConfig.recording.templateUrl",
            ),
            ({"autoStartConfig": {"livestream": {}}}, "autoStartConfig.livestream"),
            ({"customRoomId": ""}, "customRoomId"),
            ({"customRoomId": 42}, "customRoomId"),
            ({"region": "in002"}, "region"),
        ],
    )
    def test_bad_input_is_a_400_naming_the_field(self, sdk, body, named):
        assert_videosdk_error(sdk.post("/v2/rooms", body), 400, named)
        assert not Room.objects.exists()

    @pytest.mark.parametrize("raw", ["{", "[1, 2]", '"text"', "null", "[" * 5000])
    def test_malformed_json_is_a_400(self, sdk, raw):
        assert_videosdk_error(sdk.post("/v2/rooms", raw=raw), 400)

    def test_plan_rate_limit(self, sdk, settings, owner):
        owner.tenant.plan.requests_per_hour = 2
        owner.tenant.plan.save()
        assert sdk.get("/v2/rooms")["X-RateLimit-Remaining"] == "1"
        assert sdk.get("/v2/rooms")["X-RateLimit-Remaining"] == "0"
        response = sdk.get("/v2/rooms")
        assert_videosdk_error(response, 429)
        assert response["Retry-After"] and response["X-RateLimit-Limit"] == "2"


class TestRead:
    def test_list_pages(self, sdk, owner):
        made = [create(sdk)["roomId"] for _ in range(5)]
        body = sdk.get("/v2/rooms?page=2&perPage=2").json()
        assert body["pageInfo"] == {"currentPage": 2, "perPage": 2, "lastPage": 3, "total": 5}
        assert [r["roomId"] for r in body["data"]] == list(reversed(made))[2:4]
        assert all(set(r) == RESPONSE_KEYS for r in body["data"])
        first = sdk.get("/v2/rooms").json()
        assert first["pageInfo"] == {"currentPage": 1, "perPage": 20, "lastPage": 1, "total": 5}
        beyond = sdk.get("/v2/rooms?page=9").json()
        assert beyond["data"] == [] and beyond["pageInfo"]["total"] == 5

    @pytest.mark.parametrize("rooms", [3, 30])
    def test_list_queries_are_constant(self, sdk, django_assert_num_queries, rooms):
        for _ in range(rooms):
            create(sdk)
        # 1 the signing key with its tenant and plan, 2 COUNT(*), 3 the page (the key's
        # last-used time was written by the creates, and is written at most once a minute)
        with django_assert_num_queries(3):
            assert len(sdk.get("/v2/rooms").json()["data"]) == min(rooms, 20)

    @pytest.mark.parametrize("query", ["page=0", "page=x", "perPage=0", "perPage=101", "page=-1"])
    def test_bad_paging_is_a_400(self, sdk, query):
        name = query.split("=")[0]
        assert_videosdk_error(sdk.get(f"/v2/rooms?{query}"), 400, name)

    def test_list_shows_only_the_tenants_rooms(self, sdk, outsider_sdk):
        create(outsider_sdk)
        assert sdk.get("/v2/rooms").json()["pageInfo"]["total"] == 0

    def test_get_and_validate(self, sdk):
        made = create(sdk, {"customRoomId": "x-1"})
        got = sdk.get(f"/v2/rooms/{made['roomId']}")
        assert got.status_code == 200 and got.json() == made
        valid = sdk.get(f"/v2/rooms/validate/{made['roomId']}")
        assert valid.status_code == 200 and valid.json()["roomId"] == made["roomId"]

    def test_unknown_room_is_404(self, sdk):
        for path in ("/v2/rooms/abcd-efgh-ijkl", "/v2/rooms/validate/abcd-efgh-ijkl"):
            body = assert_videosdk_error(sdk.get(path), 404)
            assert body["error"] == "Not Found"
        assert_videosdk_error(sdk.get("/v2/rooms/not%00valid"), 404)
        assert_videosdk_error(sdk.get("/v2/nothing-here"), 404)

    def test_v1_rooms_have_a_room_id_too(self, sdk, owner):
        v1 = Api(owner.api_key).post("/api/v1/rooms", {"name": "From v1"}).json()
        room = Room.objects.get(room_id=v1["room_id"])
        assert ROOM_ID.match(room.meeting_id)
        assert sdk.get(f"/v2/rooms/{room.meeting_id}").json()["customRoomId"] is None

    def test_outsider_gets_404(self, sdk, outsider_sdk):
        made = create(sdk)
        for path in (f"/v2/rooms/{made['roomId']}", f"/v2/rooms/validate/{made['roomId']}"):
            assert_videosdk_error(outsider_sdk.get(path), 404)
        response = outsider_sdk.post("/v2/rooms/deactivate", {"roomId": made["roomId"]})
        assert_videosdk_error(response, 404)
        assert Room.objects.get(meeting_id=made["roomId"]).deactivated_at is None


class TestDeactivate:
    def test_deactivate_an_idle_room(self, sdk, owner):
        made = create(sdk)
        response = sdk.post("/v2/rooms/deactivate", {"roomId": made["roomId"]})
        assert response.status_code == 200 and response.json()["disabled"] is True
        assert set(response.json()) == RESPONSE_KEYS
        body = assert_videosdk_error(sdk.get(f"/v2/rooms/validate/{made['roomId']}"), 404)
        assert body["error"] == "Not Found"
        assert sdk.get(f"/v2/rooms/{made['roomId']}").json()["disabled"] is True
        room = Room.objects.get(meeting_id=made["roomId"])
        # Joins and starts are refused from then on.
        api = Api(owner.api_key)
        assert_error(api.post(f"/api/v1/rooms/{room.room_id}/tokens", {"name": "Ada"}), 409)
        assert_error(api.post(f"/api/v1/rooms/{room.room_id}/start"), 409, "ROOM_DEACTIVATED")

    def test_deactivate_ends_the_live_session(self, sdk, owner, livekit):
        made = create(sdk)
        room = Room.objects.get(meeting_id=made["roomId"])
        room_services.start_room(room=room)
        response = sdk.post("/v2/rooms/deactivate/", {"roomId": made["roomId"]})
        assert response.status_code == 200 and response.json()["disabled"] is True
        [delete] = livekit.calls_to("DeleteRoom")
        assert delete.request.room == room.room_id
        room.refresh_from_db()
        assert room.live_since is None and room.status == "completed"
        assert RoomSession.objects.get(room=room).ended_at is not None

    @pytest.mark.parametrize("live", [False, True])
    def test_deactivate_closes_the_waiting_room(self, sdk, livekit, live):
        # The same rule as ending a room (rooms.stop_room): nobody is left waiting.
        made = create(sdk)
        room = Room.objects.get(meeting_id=made["roomId"])
        if live:
            room_services.start_room(room=room)
        entry = WaitingEntry.objects.create(
            room=room, identity="participant-w", name="Wai", role="participant"
        )
        response = sdk.post("/v2/rooms/deactivate", {"roomId": made["roomId"]})
        assert response.status_code == 200 and response.json()["disabled"] is True
        entry.refresh_from_db()
        assert entry.status == WaitingEntry.Status.LEFT and entry.decided_at is not None

    def test_same_id_as_the_callaba_facade(self, sdk):
        made = create(sdk)
        assert made["id"] == Room.objects.get(meeting_id=made["roomId"]).object_id

    def test_livekit_down_writes_nothing(self, sdk, livekit):
        made = create(sdk)
        room = Room.objects.get(meeting_id=made["roomId"])
        room_services.start_room(room=room)
        livekit.down()
        response = sdk.post("/v2/rooms/deactivate", {"roomId": made["roomId"]})
        assert_videosdk_error(response, 503)
        room.refresh_from_db()
        assert room.deactivated_at is None and room.live_since is not None

    @pytest.mark.parametrize(
        "body", [{}, {"roomId": 5}, {"roomId": "abcd-efgh-ijkl", "force": True}]
    )
    def test_bad_deactivate_input(self, sdk, body):
        assert_videosdk_error(sdk.post("/v2/rooms/deactivate", body), 400)

    def test_deactivate_unknown_room(self, sdk):
        assert_videosdk_error(sdk.post("/v2/rooms/deactivate", {"roomId": "abcd-efgh-ijkl"}), 404)


class TestAutoClose:
    @pytest.mark.parametrize(
        ("kind", "disabled", "status"),
        [("session-ends", False, "completed"), ("session-end-and-deactivate", True, "completed")],
    )
    def test_both_types(self, sdk, livekit, kind, disabled, status):
        made = create(sdk, {"autoCloseConfig": {"type": kind, "duration": 30}})
        room = Room.objects.get(meeting_id=made["roomId"])
        room_services.start_room(room=room)
        session = RoomSession.objects.get(room=room)
        assert session.close_at - session.started_at == dt.timedelta(minutes=30)
        assert room_services.close_session(session_pk=session.pk) == "early"
        assert room_services.close_session(session_pk=session.pk, now=session.close_at) == "closed"
        assert len(livekit.calls_to("DeleteRoom")) == 1
        got = sdk.get(f"/v2/rooms/{made['roomId']}").json()
        assert got["disabled"] is disabled
        validate = sdk.get(f"/v2/rooms/validate/{made['roomId']}")
        assert validate.status_code == (404 if disabled else 200)
        room.refresh_from_db()
        assert room.status == status

    def test_default_duration_is_480_minutes(self, sdk, livekit):
        made = create(sdk, {"autoCloseConfig": {"type": "session-ends"}})
        room = Room.objects.get(meeting_id=made["roomId"])
        room_services.start_room(room=room)
        session = RoomSession.objects.get(room=room)
        assert session.close_at - session.started_at == dt.timedelta(minutes=480)


def test_other_content_types_and_methods_answer_in_shape(sdk, pair):
    response = sdk.client.post(
        "/v2/rooms",
        data="customRoomId=x",
        content_type="text/plain",
        headers={"Authorization": pair.token()},
    )
    assert_videosdk_error(response, 415)
    response = sdk.client.put("/v2/rooms", headers={"Authorization": pair.token()})
    assert_videosdk_error(response, 405)
    assert not Room.objects.exists()
