"""The VideoSDK-compatible sessions API (/v2/sessions/, the room object's `get_session` link):
sessions and who attended, read from RoomSession and Attendance written by LiveKit's
webhooks. Shapes and values, ongoing vs ended, filters, paging, outsiders, auth, queries."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from conferences import livekit as gateway
from conferences.models import Call, CallUser, Room, RoomSession
from conferences.services import livekit_events
from tests.conftest import Api
from tests.videosdk_helpers import SigningPair, VideoSdkClient, assert_videosdk_error

pytestmark = pytest.mark.django_db

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SESSION_KEYS = {"id", "roomId", "customRoomId", "start", "end", "status", "participants", "links"}


@pytest.fixture
def sdk(owner) -> VideoSdkClient:
    return VideoSdkClient(SigningPair(owner.tenant).token())


@pytest.fixture
def outsider_sdk(outsider) -> VideoSdkClient:
    return VideoSdkClient(SigningPair(outsider.tenant).token())


def create(sdk: VideoSdkClient, body=None) -> Room:
    response = sdk.post("/v2/rooms", body or {})
    assert response.status_code == 200, response.content
    return Room.objects.get(meeting_id=response.json()["roomId"])


def start(owner, room: Room) -> RoomSession:
    response = Api(owner.api_key).post(f"/api/v1/rooms/{room.room_id}/start")
    assert response.status_code == 200, response.content
    return RoomSession.objects.get(room=room, ended_at__isnull=True)


def stop(owner, room: Room) -> None:
    response = Api(owner.api_key).post(f"/api/v1/rooms/{room.room_id}/stop")
    assert response.status_code == 200, response.content


def notice(room: Room, event: str, event_id: str, identity: str, sid: str,
           joined: float, created: float) -> gateway.WebhookNotice:  # fmt: skip
    return gateway.WebhookNotice(
        event=event, room=room.room_id, identity=identity, name=identity.title(),
        event_id=event_id, created_at=int(created), participant_sid=sid, joined_at=joined,
        room_sid="RM_x",
    )  # fmt: skip


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@pytest.fixture
def story(sdk, owner, livekit):
    """A room made through /v2/rooms: an ended session (Ann 0..90 s, Bob from 30 s until the
    session ended, Ann again 100..120 s), then an ongoing one with Cy present."""
    room = create(sdk, {"customRoomId": "weekly-sync"})
    first = start(owner, room)
    t0 = float(int(timezone.now().timestamp())) - 300  # LiveKit's times are whole seconds
    # The stays below lie inside the session, as LiveKit's would.
    RoomSession.objects.filter(pk=first.pk).update(
        started_at=timezone.now() - dt.timedelta(minutes=10)
    )
    for n in [
        notice(room, "participant_joined", "EV_1", "ann", "PA_a1", t0, t0),
        notice(room, "participant_joined", "EV_2", "bob", "PA_b", t0 + 30, t0 + 30),
        notice(room, "participant_left", "EV_3", "ann", "PA_a1", t0, t0 + 90),
        notice(room, "participant_joined", "EV_4", "ann", "PA_a2", t0 + 100, t0 + 100),
        notice(room, "participant_left", "EV_5", "ann", "PA_a2", t0 + 100, t0 + 120),
    ]:
        livekit_events.apply(n)
    stop(owner, room)
    second = start(owner, room)
    t1 = float(int(timezone.now().timestamp()))
    livekit_events.apply(notice(room, "participant_joined", "EV_6", "cy", "PA_c", t1, t1))
    first.refresh_from_db()
    second.refresh_from_db()
    return {"room": room, "ended": first, "ongoing": second, "t0": t0, "t1": t1}


class TestGet:
    def test_an_ended_session(self, sdk, story):
        room, session, t0 = story["room"], story["ended"], story["t0"]
        response = sdk.get(f"/v2/sessions/{session.session_id}")
        assert response.status_code == 200, response.content
        assert response["X-RateLimit-Limit"]
        body = response.json()
        assert set(body) == SESSION_KEYS
        assert body["id"] == session.session_id
        assert body["roomId"] == room.meeting_id and body["customRoomId"] == "weekly-sync"
        assert body["status"] == "ended"
        assert TIMESTAMP.match(body["start"]) and TIMESTAMP.match(body["end"])
        assert body["start"] == session.started_at.isoformat(timespec="milliseconds")[:-6] + "Z"
        assert body["end"] == session.ended_at.isoformat(timespec="milliseconds")[:-6] + "Z"
        bob_end = body["end"]  # still in when the session ended: closed then
        assert body["participants"] == [
            {
                "participantId": "ann",
                "name": "Ann",
                "timelog": [
                    {"start": iso(t0), "end": iso(t0 + 90)},
                    {"start": iso(t0 + 100), "end": iso(t0 + 120)},
                ],
            },
            {
                "participantId": "bob",
                "name": "Bob",
                "timelog": [{"start": iso(t0 + 30), "end": bob_end}],
            },
        ]
        assert body["links"] == {
            "get_room": f"http://testserver/v2/rooms/{room.meeting_id}",
            "get_session": f"http://testserver/v2/sessions/{session.session_id}",
        }
        # The room object's get_session link is where this list lives.
        room_body = sdk.get(f"/v2/rooms/{room.meeting_id}").json()
        listed = sdk.get(room_body["links"]["get_session"] + f"?roomId={room.meeting_id}")
        assert listed.status_code == 200 and listed.json()["pageInfo"]["total"] == 2

    def test_an_ongoing_session(self, sdk, story):
        session, t1 = story["ongoing"], story["t1"]
        body = sdk.get(f"/v2/sessions/{session.session_id}/").json()
        assert body["status"] == "ongoing" and body["end"] is None
        assert body["participants"] == [
            {"participantId": "cy", "name": "Cy", "timelog": [{"start": iso(t1), "end": None}]}
        ]

    def test_a_room_without_custom_id_and_a_session_nobody_joined(self, sdk, owner, livekit):
        room = create(sdk)
        session = start(owner, room)
        body = sdk.get(f"/v2/sessions/{session.session_id}").json()
        assert body["customRoomId"] is None and body["participants"] == []

    def test_unknown_session_is_404(self, sdk, story):
        for path in ("/v2/sessions/se_nope", "/v2/sessions/not%00valid"):
            body = assert_videosdk_error(sdk.get(path), 404)
            assert body["error"] == "Not Found"


class TestList:
    def test_newest_first_with_the_same_shape(self, sdk, story):
        body = sdk.get(f"/v2/sessions/?roomId={story['room'].meeting_id}").json()
        assert body["pageInfo"] == {"currentPage": 1, "perPage": 20, "lastPage": 1, "total": 2}
        assert [s["id"] for s in body["data"]] == [
            story["ongoing"].session_id,
            story["ended"].session_id,
        ]
        for item in body["data"]:
            assert item == sdk.get(f"/v2/sessions/{item['id']}").json()
        assert sdk.get("/v2/sessions").json()["pageInfo"]["total"] == 2  # no filter: all

    @pytest.mark.parametrize(("status", "which"), [("ongoing", "ongoing"), ("ended", "ended")])
    def test_status_filter(self, sdk, story, status, which):
        body = sdk.get(f"/v2/sessions?roomId={story['room'].meeting_id}&status={status}").json()
        assert [s["id"] for s in body["data"]] == [story[which].session_id]
        assert body["data"][0]["status"] == status and body["pageInfo"]["total"] == 1

    def test_room_filters(self, sdk, owner, story):
        other = create(sdk)
        start(owner, other)
        assert sdk.get("/v2/sessions").json()["pageInfo"]["total"] == 3
        mine = sdk.get("/v2/sessions?customRoomId=weekly-sync").json()
        assert {s["roomId"] for s in mine["data"]} == {story["room"].meeting_id}
        assert mine["pageInfo"]["total"] == 2
        theirs = sdk.get(f"/v2/sessions?roomId={other.meeting_id}").json()
        assert [s["roomId"] for s in theirs["data"]] == [other.meeting_id]
        both = f"/v2/sessions?roomId={other.meeting_id}&customRoomId=weekly-sync"
        assert_videosdk_error(sdk.get(both), 404, "Room not found")  # not the same room

    def test_pages(self, sdk, owner, livekit):
        room = create(sdk)
        made = []
        for _ in range(5):
            made.append(start(owner, room).session_id)
            stop(owner, room)
        body = sdk.get(f"/v2/sessions?roomId={room.meeting_id}&page=2&perPage=2").json()
        assert body["pageInfo"] == {"currentPage": 2, "perPage": 2, "lastPage": 3, "total": 5}
        assert [s["id"] for s in body["data"]] == list(reversed(made))[2:4]
        beyond = sdk.get(f"/v2/sessions?roomId={room.meeting_id}&page=9").json()
        assert beyond["data"] == [] and beyond["pageInfo"]["total"] == 5

    @pytest.mark.parametrize(
        "query",
        ["page=0", "page=x", "perPage=0", "perPage=101", "page=-1", "status=live", "status=ENDED"],
    )
    def test_bad_paging_or_status_is_a_400_naming_the_field(self, sdk, query):
        name = query.split("=")[0]
        assert_videosdk_error(sdk.get(f"/v2/sessions?{query}"), 400, name)

    @pytest.mark.parametrize("query", ["roomId=abcd-efgh-ijkl", "roomId=nope", "customRoomId=nope"])
    def test_unknown_room_is_404(self, sdk, story, query):
        assert_videosdk_error(sdk.get(f"/v2/sessions?{query}"), 404, "Room not found")

    def test_call_rooms_are_not_listed(self, sdk, owner, story):
        # A direct call's room is not one of the tenant's rooms (Room.objects.listed()).
        room = story["room"]
        caller = CallUser.objects.create(tenant=owner.tenant, external_id="u1")
        Call.objects.create(tenant=owner.tenant, room=room, caller=caller, shared_secret="x")
        assert sdk.get("/v2/sessions").json()["pageInfo"]["total"] == 0
        assert_videosdk_error(sdk.get(f"/v2/sessions?roomId={room.meeting_id}"), 404)
        assert_videosdk_error(sdk.get(f"/v2/sessions/{story['ended'].session_id}"), 404)

    @pytest.mark.parametrize("sessions", [2, 12])
    def test_list_queries_are_constant(
        self, sdk, owner, livekit, django_assert_num_queries, sessions
    ):
        room = create(sdk)
        for n in range(sessions):
            start(owner, room)
            t = float(int(timezone.now().timestamp()))
            livekit_events.apply(
                notice(room, "participant_joined", f"EV_{n}", f"p{n}", f"PA_{n}", t, t)
            )
            stop(owner, room)
        # 1 the signing key with its tenant and plan, 2 COUNT(*), 3 the page with its rooms,
        # 4 the page's attendances (the key's last-used time was written by the create)
        with django_assert_num_queries(4):
            body = sdk.get("/v2/sessions?perPage=100").json()
        assert len(body["data"]) == sessions
        assert all(len(s["participants"]) == 1 for s in body["data"])
        # 1 the key, 2 the session with its room, 3 its attendances
        with django_assert_num_queries(3):
            assert sdk.get(f"/v2/sessions/{body['data'][0]['id']}").json()["participants"]
        # 1 the key, 2 the room by roomId, 3 COUNT(*), 4 the page, 5 its attendances
        with django_assert_num_queries(5):
            body = sdk.get(f"/v2/sessions?roomId={room.meeting_id}&status=ended").json()
        assert len(body["data"]) == sessions


class TestAccess:
    def test_outsider_gets_404_never_data(self, outsider_sdk, story):
        room, session = story["room"], story["ended"]
        assert_videosdk_error(outsider_sdk.get(f"/v2/sessions/{session.session_id}"), 404)
        for query in (f"roomId={room.meeting_id}", "customRoomId=weekly-sync"):
            assert_videosdk_error(outsider_sdk.get(f"/v2/sessions?{query}"), 404)
        body = outsider_sdk.get("/v2/sessions").json()
        assert body["data"] == [] and body["pageInfo"]["total"] == 0

    def test_no_token_is_401(self, story):
        anonymous = VideoSdkClient(None)
        for path in ("/v2/sessions", f"/v2/sessions/{story['ended'].session_id}"):
            response = anonymous.get(path)
            assert_videosdk_error(response, 401)
            assert response["WWW-Authenticate"]

    def test_a_parley_api_key_works_too(self, owner, story):
        body = VideoSdkClient(owner.api_key).get("/v2/sessions").json()
        assert body["pageInfo"]["total"] == 2
