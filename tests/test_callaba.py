"""The Callaba-compatible conferences API (reference/callaba-video-calls.txt), as documented:
the reference's examples posted exactly as printed, answers compared key by key and type by
type with the reference's examples, and the public join helpers under each room policy."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from livekit.protocol import egress as proto_egress

from conferences.models import Participant, Recording, Room
from conferences.services import rooms as room_services
from tests.conftest import Api, make_member

pytestmark = pytest.mark.django_db

# --- the reference's examples, exactly as printed ---------------------------------------------

PRESETS = {
    "team": '{"name": "Team standup room","user_id": "USER_ID","mediaType": "MEDIA_TYPE_VIDEO_AUDIO","max_participants": 20,"allow_webinar_mode": false,"allow_chat": true,"allow_share_screen": true,"record": false,"record_mode": "ROOM_COMPOSITE_GRID","active": true}',  # noqa: E501
    "webinar": '{"name": "Guest webinar room","user_id": "USER_ID","mediaType": "MEDIA_TYPE_VIDEO_AUDIO","max_participants": 200,"allow_webinar_mode": true,"allow_chat": true,"allow_share_screen": false,"record": false,"record_mode": "ROOM_COMPOSITE_GRID","active": true}',  # noqa: E501
    "audio": '{"name": "Audio briefing room","user_id": "USER_ID","mediaType": "MEDIA_TYPE_AUDIO_ONLY","max_participants": 50,"allow_webinar_mode": false,"allow_chat": true,"allow_share_screen": false,"record": false,"record_mode": "ROOM_COMPOSITE_GRID","active": true}',  # noqa: E501
    "recorded": '{"name": "Recorded speaker room","user_id": "USER_ID","mediaType": "MEDIA_TYPE_VIDEO_AUDIO","max_participants": 50,"allow_webinar_mode": true,"allow_chat": true,"allow_share_screen": true,"record": true,"record_mode": "ROOM_COMPOSITE_SPEAKER","active": true}',  # noqa: E501
}
MAIN_STAGE = '{"name": "Main stage room","user_id": "USER_ID","mediaType": "MEDIA_TYPE_VIDEO_AUDIO","max_participants": 50,"allow_webinar_mode": true,"allow_chat": true,"allow_share_screen": true,"record": false,"record_mode": "ROOM_COMPOSITE_GRID","active": true}'  # noqa: E501
ROOM_EXAMPLE = json.loads(
    '{"_id": "69f013c1aa11bb22cc33dd44","id": "69f013c1aa11bb22cc33dd44","name": "Main stage room","user_id": "69360341db559495f643de6a","mediaType": "MEDIA_TYPE_VIDEO_AUDIO","allow_webinar_mode": true,"allow_chat": true,"allow_share_screen": true,"record": false,"record_mode": "ROOM_COMPOSITE_GRID","max_participants": 50,"sid": "RM_x7h6k4example","active": true,"created": "2026-03-24T16:00:00.000Z","modified": "2026-03-24T16:00:00.000Z","success": true}'  # noqa: E501
)
COUNT_REQUEST = '{"filter": {"active": true}}'
COUNT_EXAMPLE = json.loads('{"count": 1}')
GET_ALL_REQUEST = '{"limit": 10,"skip": 0,"sort": {"created": 1}}'
BY_ID_REQUEST = '{"id": "VIDEO_CALL_ID"}'
UPDATE_REQUEST = '{"id": "VIDEO_CALL_ID","name": "Main stage room","user_id": "USER_ID","mediaType": "MEDIA_TYPE_VIDEO_AUDIO","max_participants": 50,"allow_webinar_mode": true,"allow_chat": true,"allow_share_screen": true,"record": false,"record_mode": "ROOM_COMPOSITE_GRID","active": true}'  # noqa: E501
SUCCESS_EXAMPLE = json.loads('{"success": true}')
FIND_EXAMPLE = json.loads(
    '{"id": "69f013c1aa11bb22cc33dd44","LKRoomName": "34d4f497-f95b-4543-8d15-fde0b77d8abc","allow_webinar_mode": true,"allow_chat": true,"allow_share_screen": true,"record": false,"record_mode": "ROOM_COMPOSITE_GRID","success": true}'  # noqa: E501
)
TOKEN_REQUEST = '{"room_id": "VIDEO_CALL_ID","LKRoomName": "34d4f497-f95b-4543-8d15-fde0b77d8abc","participant_name": "Jane Speaker","participant_id": "participant-123","hidden": false}'  # noqa: E501
TOKEN_EXAMPLE = json.loads(
    '{"participant_token": "<livekit_participant_token>","LKRoomName": "34d4f497-f95b-4543-8d15-fde0b77d8abc","success": true}'  # noqa: E501
)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


def assert_like(actual: Any, example: Any) -> None:
    """Same keys as the reference's example, each value of the same JSON type."""
    assert isinstance(actual, dict), actual
    assert set(actual) == set(example), set(actual) ^ set(example)
    for key, value in example.items():
        assert type(actual[key]) is type(value), (key, actual[key], value)
    if "created" in example:
        assert TIMESTAMP.match(actual["created"]) and TIMESTAMP.match(actual["modified"])
        assert OBJECT_ID.match(actual["_id"]) and actual["id"] == actual["_id"]
        assert actual["success"] is True


class Callaba:
    """A JSON client that sends the key as `x-access-token`, bodies as raw text."""

    def __init__(self, key: str | None) -> None:
        self.client = Client(REMOTE_ADDR="203.0.113.7")
        self.key = key

    def call(self, path: str, body: Any = None, *, method: str = "post", key: str | None = None):
        key = self.key if key is None else key
        headers = {"x-access-token": key} if key else {}
        raw = body if isinstance(body, str) else json.dumps({} if body is None else body)
        prefix = "/api/conferences-public/" if path in PUBLIC else "/api/conferences/"
        return getattr(self.client, method)(
            prefix + path, data=raw, content_type="application/json", headers=headers
        )


PUBLIC = {"findLKRoomNameById", "createToken"}


def ok(response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.content)
    return response.json()


def error(response, status: int, *words: str) -> str:
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body) == {"success", "message"} and body["success"] is False, body
    for word in words:
        assert word in body["message"], (word, body["message"])
    return body["message"]


@pytest.fixture
def big(db):
    """An Enterprise tenant: the webinar preset asks for 200 participants."""
    return make_member("Big Events", plan="enterprise")


@pytest.fixture
def cb(big) -> Callaba:
    return Callaba(big.api_key)


@pytest.fixture
def anon() -> Callaba:
    return Callaba(None)


def create(cb: Callaba, body: Any = MAIN_STAGE) -> dict[str, Any]:
    return ok(cb.call("create", body))


def with_id(template: str, room_id: str) -> str:
    return template.replace("VIDEO_CALL_ID", room_id)


# --- the reference's examples -----------------------------------------------------------------


def test_create_example_answers_the_room_object(cb, big):
    body = create(cb)
    assert_like(body, ROOM_EXAMPLE)
    assert body["name"] == "Main stage room" and body["user_id"] == big.tenant.public_id
    assert body["mediaType"] == "MEDIA_TYPE_VIDEO_AUDIO" and body["max_participants"] == 50
    assert body["allow_webinar_mode"] is True and body["record_mode"] == "ROOM_COMPOSITE_GRID"
    assert body["active"] is True and body["sid"] == ""  # open, not live until started
    room = Room.objects.get(object_id=body["id"])
    assert room.tenant == big.tenant and room.status == Room.Status.ACTIVE


def test_each_control_example_as_printed(cb, livekit):
    room_id = create(cb)["id"]
    assert_like(ok(cb.call("getCount", COUNT_REQUEST)), COUNT_EXAMPLE)
    listed = ok(cb.call("getAll", GET_ALL_REQUEST))
    assert isinstance(listed, list) and len(listed) == 1
    assert_like(listed[0], ROOM_EXAMPLE)
    assert_like(ok(cb.call("getById", with_id(BY_ID_REQUEST, room_id))), ROOM_EXAMPLE)
    assert_like(ok(cb.call("update", with_id(UPDATE_REQUEST, room_id))), ROOM_EXAMPLE)
    assert ok(cb.call("start", with_id(BY_ID_REQUEST, room_id))) == SUCCESS_EXAMPLE
    live = ok(cb.call("getById", with_id(BY_ID_REQUEST, room_id)))
    assert_like(live, ROOM_EXAMPLE)
    assert live["sid"].startswith("RM_")
    assert ok(cb.call("stop", with_id(BY_ID_REQUEST, room_id))) == SUCCESS_EXAMPLE
    assert ok(cb.call("remove", with_id(BY_ID_REQUEST, room_id), method="delete")) == (
        SUCCESS_EXAMPLE
    )


def test_public_examples_as_printed(cb, anon, livekit):
    room_id = create(cb)["id"]
    found = ok(anon.call("findLKRoomNameById", with_id(BY_ID_REQUEST, room_id)))
    assert_like(found, FIND_EXAMPLE)
    lk_name = found["LKRoomName"]
    assert found["id"] == room_id and lk_name == Room.objects.get(object_id=room_id).livekit_name
    request = with_id(TOKEN_REQUEST, room_id).replace(FIND_EXAMPLE["LKRoomName"], lk_name)
    token = ok(anon.call("createToken", request))
    assert_like(token, TOKEN_EXAMPLE)
    assert token["LKRoomName"] == lk_name
    claims = livekit.verify_join_token(token["participant_token"], room=lk_name)
    assert claims["sub"] == "participant-123" and claims["name"] == "Jane Speaker"
    # The reference's curl sends the key too: a valid key works the same.
    assert_like(ok(cb.call("createToken", request)), TOKEN_EXAMPLE)


# --- the presets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset, media, layout, record, webinar, share",
    [
        ("team", "both", "grid", False, False, True),
        ("webinar", "both", "grid", False, True, False),
        ("audio", "audio", "grid", False, False, False),
        ("recorded", "both", "speaker", True, True, True),
    ],
)
def test_presets_are_valid_bodies_and_map_to_v1(
    cb, big, preset, media, layout, record, webinar, share
):
    body = create(cb, PRESETS[preset])
    sent = json.loads(PRESETS[preset])
    for key in (
        "name",
        "mediaType",
        "max_participants",
        "allow_webinar_mode",
        "allow_chat",
        "allow_share_screen",
        "record",
        "record_mode",
        "active",
    ):
        assert body[key] == sent[key], key
    room = Room.objects.get(object_id=body["id"])
    assert (room.media_type, room.recording_layout, room.recording_enabled) == (
        media,
        layout,
        record,
    )
    assert room.allow_webinar_mode is webinar and room.screen_sharing_enabled is share
    assert room.chat_enabled is True and room.max_participants == sent["max_participants"]
    # The same room in v1, with its hidden-participant secret.
    v1 = Client().get(f"/api/v1/rooms/{room.room_id}", headers={"X-API-Key": big.api_key})
    assert v1.status_code == 200
    assert v1.json()["recording_layout"] == layout
    assert v1.json()["hidden_token"] == room_services.hidden_token(room)


def test_and_chat_mode_round_trips(cb):
    body = create(cb, {"name": "Chat layout", "record_mode": "ROOM_COMPOSITE_AND_CHAT"})
    assert body["record_mode"] == "ROOM_COMPOSITE_AND_CHAT"
    assert Room.objects.get(object_id=body["id"]).recording_layout == "grid+chat"
    for media, word in (("video", "MEDIA_TYPE_VIDEO_ONLY"), ("audio", "MEDIA_TYPE_AUDIO_ONLY")):
        body = create(cb, {"name": f"Media {media}", "mediaType": word})
        assert Room.objects.get(object_id=body["id"]).media_type == media


def test_created_inactive_then_started(cb, livekit):
    body = create(cb, {"name": "Later room", "active": False})
    assert body["active"] is False and livekit.calls_to("CreateRoom") == []
    room_id = body["id"]
    ok(cb.call("start", {"id": room_id}))
    again = ok(cb.call("getById", {"id": room_id}))
    assert (
        again["active"] is True
        and again["sid"] == livekit.get_room(Room.objects.get(object_id=room_id).livekit_name).sid
    )


def test_v1_rooms_have_an_object_id_and_are_listed(cb, big):
    made = Client().post(
        "/api/v1/rooms",
        data=json.dumps({"name": "From v1"}),
        content_type="application/json",
        headers={"X-API-Key": big.api_key},
    )
    assert made.status_code == 201
    room = Room.objects.get(room_id=made.json()["room_id"])
    assert OBJECT_ID.match(room.object_id)
    other = create(cb, {"name": "From Callaba"})
    assert other["id"] != room.object_id
    ids = [r["id"] for r in ok(cb.call("getAll", {}))]
    assert ids == [room.object_id, other["id"]]


# --- update -----------------------------------------------------------------------------------


def test_update_changes_only_what_it_names(cb):
    room_id = create(cb, PRESETS["team"])["id"]
    body = ok(cb.call("update", {"id": room_id, "allow_chat": False}))
    assert body["allow_chat"] is False
    assert body["name"] == "Team standup room" and body["max_participants"] == 20
    assert body["allow_share_screen"] is True and body["mediaType"] == "MEDIA_TYPE_VIDEO_AUDIO"
    body = ok(
        cb.call("update", {"id": room_id, "record": True, "record_mode": "ROOM_COMPOSITE_SPEAKER"})
    )
    room = Room.objects.get(object_id=room_id)
    assert (
        room.recording_enabled and room.recording_layout == "speaker" and room.chat_enabled is False
    )


def test_update_sending_back_the_whole_object_works(cb):
    room = create(cb)
    room["name"] = "Main stage room updated"
    body = ok(cb.call("update", room))
    assert body["name"] == "Main stage room updated" and body["id"] == room["id"]


def test_update_active_starts_and_stops(cb, livekit):
    room_id = create(cb, {"name": "Toggle", "active": False})["id"]
    body = ok(cb.call("update", {"id": room_id, "active": True}))
    assert body["active"] is True and body["sid"].startswith("RM_")
    assert len(livekit.calls_to("CreateRoom")) == 1
    body = ok(cb.call("update", {"id": room_id, "active": False}))
    assert body["active"] is False and body["sid"] == ""
    assert len(livekit.calls_to("DeleteRoom")) == 1


def test_update_rolls_back_when_livekit_is_down(cb, livekit):
    room_id = create(cb, {"name": "Toggle", "active": False})["id"]
    livekit.down()
    error(cb.call("update", {"id": room_id, "name": "Renamed", "active": True}), 503)
    room = Room.objects.get(object_id=room_id)
    assert room.name == "Toggle" and room.live_since is None


# --- listing: filter, sort, pagination --------------------------------------------------------


@pytest.fixture
def four(cb, livekit):
    """The four presets; the audio room stopped, the recorded room live."""
    ids = {name: create(cb, body)["id"] for name, body in PRESETS.items()}
    ok(cb.call("stop", {"id": ids["audio"]}))
    ok(cb.call("start", {"id": ids["recorded"]}))
    return ids


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({}, {"team", "webinar", "audio", "recorded"}),
        ({"active": True}, {"team", "webinar", "recorded"}),
        ({"active": False}, {"audio"}),
        ({"mediaType": "MEDIA_TYPE_AUDIO_ONLY"}, {"audio"}),
        ({"mediaType": "MEDIA_TYPE_VIDEO_AUDIO"}, {"team", "webinar", "recorded"}),
        ({"allow_webinar_mode": True}, {"webinar", "recorded"}),
        ({"record": True}, {"recorded"}),
        ({"name": "Guest webinar room"}, {"webinar"}),
        ({"allow_share_screen": False}, {"webinar", "audio"}),
        ({"record_mode": "ROOM_COMPOSITE_SPEAKER"}, {"recorded"}),
        ({"active": True, "allow_webinar_mode": False}, {"team"}),
        ({"name": "nothing like it"}, set()),
    ],
)
def test_filters(cb, four, spec, expected):
    listed = ok(cb.call("getAll", {"filter": spec}))
    assert {r["id"] for r in listed} == {four[n] for n in expected}
    assert ok(cb.call("getCount", {"filter": spec})) == {"count": len(expected)}


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"status": "active"}, ["filter.status"]),
        ({"sid": "RM_x"}, ["filter.sid"]),
        ({"active": "yes"}, ["filter.active"]),
        ({"mediaType": "VIDEO"}, ["filter.mediaType"]),
        ({"name": {"$regex": ".*"}}, ["filter.name"]),
    ],
)
def test_bad_filters_are_400_naming_the_field(cb, four, spec, words):
    error(cb.call("getAll", {"filter": spec}), 400, *words)
    error(cb.call("getCount", {"filter": spec}), 400, *words)


def test_sort_and_pagination(cb, four):
    order = ["team", "webinar", "audio", "recorded"]
    ids = [four[n] for n in order]

    def listed(**body):
        return [r["id"] for r in ok(cb.call("getAll", body))]

    assert listed() == ids  # default {created: 1}
    assert listed(sort={"created": -1}) == ids[::-1]
    by_name = sorted(order, key=lambda n: json.loads(PRESETS[n])["name"])
    assert listed(sort={"name": 1}) == [four[n] for n in by_name]
    assert listed(sort={"name": -1}) == [four[n] for n in by_name][::-1]
    # Stopping the audio room and starting the recorded one touched them last.
    modified = listed(sort={"modified": -1})
    assert set(modified[:2]) == {four["audio"], four["recorded"]}
    assert listed(limit=2) == ids[:2]
    assert listed(limit=2, skip=2) == ids[2:]
    assert listed(skip=4) == []
    for body, word in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"skip": -1}, "skip"),
        ({"sort": {"created": 2}}, "sort.created"),
        ({"sort": {"sid": 1}}, "sort.sid"),
        ({"sort": "created"}, "sort"),
    ):
        error(cb.call("getAll", body), 400, word)
    assert len(ok(cb.call("getAll", {"limit": 100}))) == 4


# --- start / stop / remove on LiveKit ---------------------------------------------------------


def test_start_creates_the_livekit_room_and_keeps_its_sid(cb, livekit):
    room_id = create(cb)["id"]
    room = Room.objects.get(object_id=room_id)
    assert ok(cb.call("start", {"id": room_id})) == {"success": True}
    (call,) = livekit.calls_to("CreateRoom")
    assert call.request.name == room.livekit_name and call.request.max_participants == 50
    sid = livekit.get_room(room.livekit_name).sid
    assert ok(cb.call("getById", {"id": room_id}))["sid"] == sid
    # Idempotent: a second start keeps the same live room.
    assert ok(cb.call("start", {"id": room_id})) == {"success": True}
    assert len(livekit.calls_to("CreateRoom")) == 1


def test_stop_deletes_the_livekit_room_and_disconnects_everyone(cb, anon, livekit):
    room_id = create(cb, PRESETS["team"])["id"]
    ok(cb.call("start", {"id": room_id}))
    room = Room.objects.get(object_id=room_id)
    token = ok(anon.call("createToken", token_body(room, "p-1")))["participant_token"]
    livekit.join(token)
    assert ok(cb.call("stop", {"id": room_id})) == {"success": True}
    (call,) = livekit.calls_to("DeleteRoom")
    assert call.request.room == room.livekit_name
    assert livekit.get_room(room.livekit_name) is None
    body = ok(cb.call("getById", {"id": room_id}))
    assert body["active"] is False and body["sid"] == ""
    assert not Participant.objects.present().filter(room=room).exists()
    error(cb.call("stop", {"id": room_id}), 409)  # already stopped


def test_remove_closes_the_live_room_and_deletes_it(cb, livekit):
    room_id = create(cb)["id"]
    ok(cb.call("start", {"id": room_id}))
    name = Room.objects.get(object_id=room_id).livekit_name
    assert ok(cb.call("remove", {"id": room_id}, method="delete")) == {"success": True}
    (call,) = livekit.calls_to("DeleteRoom")
    assert call.request.room == name
    assert not Room.objects.filter(object_id=room_id).exists()
    error(cb.call("getById", {"id": room_id}), 404)
    # The egress side of removal belongs to the recordings service (see README).
    assert livekit.egresses(name) == []


def live_with_egress(cb: Callaba, big) -> tuple[Room, Recording, Recording]:
    """A started recorded room with a recording and an HLS stream running (through v1: the
    same room)."""
    room_id = create(cb, {**json.loads(PRESETS["recorded"]), "active": False})["id"]
    ok(cb.call("start", {"id": room_id}))
    room = Room.objects.get(object_id=room_id)
    v1 = Api(big.api_key)
    recording = v1.post(f"/api/v1/rooms/{room.room_id}/recordings")
    stream = v1.post(f"/api/v1/rooms/{room.room_id}/streams")
    assert recording.status_code == stream.status_code == 201, (recording.content, stream.content)
    return (
        room,
        Recording.objects.get(recording_id=recording.json()["recording_id"]),
        Recording.objects.get(recording_id=stream.json()["recording_id"]),
    )


def test_remove_stops_running_egress_then_deletes(cb, big, livekit):
    room, recording, stream = live_with_egress(cb, big)
    assert {e.status for e in livekit.egresses(room.livekit_name)} == {proto_egress.EGRESS_ACTIVE}
    response = cb.call("remove", {"id": room.object_id}, method="delete")
    assert ok(response) == {"success": True}
    stopped = {call.request.egress_id for call in livekit.calls_to("StopEgress")}
    assert stopped == {recording.egress_id, stream.egress_id}
    assert len(livekit.calls_to("StopEgress")) == 2
    # Each egress was stopped before the LiveKit room went (not ended by the room closing).
    (delete,) = livekit.calls_to("DeleteRoom")
    assert all(c.at <= delete.at for c in livekit.calls_to("StopEgress"))
    assert delete.request.room == room.livekit_name
    for egress in livekit.egresses(room.livekit_name):
        assert egress.status == proto_egress.EGRESS_COMPLETE
    # The rows outlive the room, in a final state, with the room's public id.
    for row in (recording, stream):
        row.refresh_from_db()
        assert row.status == Recording.Status.READY and row.ended_at is not None
        assert row.room_id is None and row.room_public_id == room.room_id
    assert not Room.objects.filter(pk=room.pk).exists()
    assert livekit.get_room(room.livekit_name) is None
    error(cb.call("getById", {"id": room.object_id}), 404)


@pytest.mark.parametrize("outage", ["down", "egress-503"])
def test_remove_with_egress_on_livekit_down_is_503_and_deletes_nothing(cb, big, livekit, outage):
    room, recording, stream = live_with_egress(cb, big)
    if outage == "down":
        livekit.down()
    else:
        livekit.fail_with(503, "unavailable")
    error(cb.call("remove", {"id": room.object_id}, method="delete"), 503, "unavailable")
    livekit.clear_failures()
    livekit.up()
    assert Room.objects.get(pk=room.pk).live_since is not None
    for row in (recording, stream):
        row.refresh_from_db()
        assert row.status == Recording.Status.RECORDING and row.room_id == room.pk
        assert livekit.get_egress(row.egress_id).status == proto_egress.EGRESS_ACTIVE
    assert livekit.calls_to("DeleteRoom") == []
    assert livekit.get_room(room.livekit_name) is not None
    # Once LiveKit is back the same call goes through.
    assert ok(cb.call("remove", {"id": room.object_id}, method="delete")) == {"success": True}
    assert not Room.objects.filter(pk=room.pk).exists()


@pytest.mark.parametrize(
    "record_mode, lk_layout, template",
    [
        ("ROOM_COMPOSITE_AND_CHAT", "grid", True),
        ("ROOM_COMPOSITE_SPEAKER", "speaker", False),
        ("ROOM_COMPOSITE_GRID", "grid", False),
    ],
)
@pytest.mark.parametrize("how", ["start", "first-token"])
def test_record_auto_starts_with_the_mapped_layout_once_per_session(
    cb,
    anon,
    livekit,
    settings,
    django_capture_on_commit_callbacks,
    record_mode,
    lk_layout,
    template,
    how,
):
    """A `record: true` room records when its session starts (Callaba `start`, or the first
    public token of an open room), once, with `record_mode` mapped to the egress layout."""
    settings.PUBLIC_BASE_URL = "http://parley.test"
    body = {"name": "Recorded", "record": True, "record_mode": record_mode}
    room_id = create(cb, {**body, "active": how == "first-token"})["id"]
    if how == "start":
        with django_capture_on_commit_callbacks(execute=True):
            ok(cb.call("start", {"id": room_id}))
    room = Room.objects.get(object_id=room_id)
    for name in ("p-1", "p-2"):
        with django_capture_on_commit_callbacks(execute=True):
            ok(anon.call("createToken", token_body(room, name)))
    (call,) = livekit.calls_to("StartRoomCompositeEgress")
    request = call.request
    assert request.room_name == room.livekit_name and request.layout == lk_layout
    assert request.file_outputs and not request.segment_outputs
    assert request.audio_only is False
    if template:
        assert request.custom_base_url.startswith(
            f"http://parley.test/recording-template/{room.room_id}?layout=grid%2Bchat&sig="
        )
    else:
        assert request.custom_base_url == ""
    (recording,) = Recording.objects.filter(room=room)
    assert recording.auto and recording.status == Recording.Status.RECORDING
    assert (
        recording.layout
        == {
            "ROOM_COMPOSITE_AND_CHAT": "grid+chat",
            "ROOM_COMPOSITE_SPEAKER": "speaker",
            "ROOM_COMPOSITE_GRID": "grid",
        }[record_mode]
    )
    # stop ends the recording with the session.
    assert ok(cb.call("stop", {"id": room_id})) == {"success": True}
    recording.refresh_from_db()
    assert recording.status == Recording.Status.READY


def test_no_record_no_egress(cb, anon, livekit, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        room_id = create(cb, PRESETS["team"])["id"]
    room = Room.objects.get(object_id=room_id)
    with django_capture_on_commit_callbacks(execute=True):
        ok(anon.call("createToken", token_body(room, "p-1")))
    assert livekit.calls_to("StartRoomCompositeEgress") == []
    assert not Recording.objects.exists()


def test_remove_is_delete_only(cb):
    room_id = create(cb)["id"]
    assert cb.call("remove", {"id": room_id}).status_code == 405
    assert Room.objects.filter(object_id=room_id).exists()


@pytest.mark.parametrize("action", ["start", "stop", "remove"])
def test_livekit_down_is_503_and_nothing_changes(cb, livekit, action):
    room_id = create(cb)["id"]
    if action != "start":
        ok(cb.call("start", {"id": room_id}))
    before = Room.objects.get(object_id=room_id)
    livekit.down()
    method = "delete" if action == "remove" else "post"
    error(cb.call(action, {"id": room_id}, method=method), 503, "unavailable")
    after = Room.objects.get(object_id=room_id)
    assert (after.status, after.live_since, after.livekit_sid) == (
        before.status,
        before.live_since,
        before.livekit_sid,
    )


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["create", "getCount", "getAll", "getById", "update", "start", "stop", "remove"]
)  # noqa: E501
def test_key_required_on_the_control_plane(cb, path):
    method = "delete" if path == "remove" else "post"
    error(cb.call(path, {}, method=method, key=""), 401, "x-access-token")
    error(cb.call(path, {}, method=method, key="pk_not_a_key"), 401)


def test_rate_headers_and_plan_throttle(db):
    free = make_member("Small Co")
    client = Callaba(free.api_key)
    response = client.call("getCount", {})
    assert response["X-RateLimit-Limit"] == "100" and response["X-RateLimit-Remaining"] == "99"
    for _ in range(99):
        client.call("getCount", {})
    error(client.call("getCount", {}), 429)


@pytest.mark.parametrize(
    "raw, words",
    [
        ('{"name": "x",', ["not valid JSON"]),
        ("[1, 2]", ["JSON object"]),
        ('{"name": "ok name", "mediaType": "VIDEO"}', ["mediaType"]),
        ('{"name": "ok name", "record_mode": "GRID"}', ["record_mode"]),
        ('{"name": "ok name", "allow_chat": "yes"}', ["allow_chat"]),
        ('{"name": "ok name", "allow_share_screen": 1}', ["allow_share_screen"]),
        ('{"name": "ok name", "record": null}', ["record"]),
        ('{"name": "ok name", "active": "true"}', ["active"]),
        ('{"name": "ok name", "max_participants": 5000}', ["max_participants"]),
        ('{"name": "ok name", "max_participants": "20"}', ["max_participants"]),
        ('{"name": "x"}', ["name"]),
        ("{}", ["name"]),
        ('{"name": "ok name", "colour": "red"}', ["colour"]),
    ],
)
def test_bad_create_bodies_are_400_naming_the_field(cb, raw, words):
    error(cb.call("create", raw), 400, *words)
    assert not Room.objects.exists()


def test_plan_participant_limit_names_the_field(db):
    small = Callaba(make_member("Tiny").api_key)  # Free: 10 participants per room
    error(small.call("create", PRESETS["team"]), 400, "max_participants", "10")


def test_ids_are_validated(cb):
    error(cb.call("getById", {}), 400, "id")
    error(cb.call("getById", {"id": 5}), 400, "id")
    error(cb.call("getById", {"id": "VIDEO_CALL_ID"}), 404)
    error(cb.call("getById", {"id": "0" * 24}), 404)
    error(cb.call("getById", {"id": "a\x00b"}), 404)


def test_unknown_paths_answer_json_404(cb):
    error(cb.call("nope", {}), 404)
    assert Client().get("/api/conferences-public/nope").status_code == 404


def test_object_ids_are_random_and_unique(cb):
    ids = [create(cb, {"name": f"Room {i}"})["id"] for i in range(5)]
    assert len(set(ids)) == 5 and all(OBJECT_ID.match(i) for i in ids)
    # Not a counter: neighbours share no long prefix.
    assert len({i[:8] for i in ids}) == 5


# --- outsiders --------------------------------------------------------------------------------


def test_another_tenant_gets_404_on_every_method(cb, outsider, livekit):
    room_id = create(cb, PRESETS["team"])["id"]
    room = Room.objects.get(object_id=room_id)
    other = Callaba(outsider.api_key)
    for path, body, method in (
        ("getById", {"id": room_id}, "post"),
        ("update", {"id": room_id, "name": "Mine now"}, "post"),
        ("start", {"id": room_id}, "post"),
        ("stop", {"id": room_id}, "post"),
        ("remove", {"id": room_id}, "delete"),
        ("findLKRoomNameById", {"id": room_id}, "post"),
        ("createToken", token_body(room, "spy"), "post"),
    ):
        message = error(other.call(path, body, method=method), 404)
        assert room.name not in message
    assert ok(other.call("getAll", {})) == []
    assert ok(other.call("getCount", {})) == {"count": 0}
    assert ok(other.call("getAll", {"filter": {"id": room_id}})) == []
    room.refresh_from_db()
    assert room.name == "Team standup room" and room.live_since is None
    assert livekit.calls == []


# --- public join helpers ----------------------------------------------------------------------


def token_body(room: Room, identity: str, **extra: Any) -> dict[str, Any]:
    return {
        "room_id": room.object_id,
        "LKRoomName": room.livekit_name,
        "participant_name": identity.title(),
        "participant_id": identity,
        **extra,
    }


def public_room(cb: Callaba, preset: str = "team", **v1: Any) -> Room:
    room = Room.objects.get(object_id=create(cb, PRESETS[preset])["id"])
    if v1:
        room = room_services.update_room(room=room, data=v1)
    return room


def video(livekit, token: str) -> dict[str, Any]:
    return livekit.verify_join_token(token)["video"]


def test_webinar_public_token_is_a_viewer(cb, anon, livekit):
    room = public_room(cb, "webinar")
    token = ok(anon.call("createToken", token_body(room, "guest-1")))["participant_token"]
    grant = video(livekit, token)
    assert grant["canPublish"] is False and grant["canSubscribe"] is True
    assert grant["canPublishData"] is True  # chat is on in the webinar preset
    assert grant.get("canPublishSources", []) == [] and grant.get("hidden") is False
    assert Participant.objects.get(room=room, identity="guest-1").role == "viewer"
    # The stage works with it: the viewer raises a hand with its own token.
    livekit.join(token)
    hand = Client().post(
        f"/room/{room.room_id}/stage/hand",
        data=json.dumps({"raised": True}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert hand.status_code == 200, hand.content
    assert Participant.objects.get(room=room, identity="guest-1").hand_raised_at is not None


@pytest.mark.parametrize(
    "preset, sources, data",
    [
        ("team", ["camera", "microphone", "screen_share", "screen_share_audio"], True),
        ("audio", ["microphone"], True),
    ],
)
def test_open_room_token_follows_media_and_screen_share(cb, anon, livekit, preset, sources, data):
    room = public_room(cb, preset)
    token = ok(anon.call("createToken", token_body(room, "p-1")))["participant_token"]
    grant = video(livekit, token)
    assert grant["canPublish"] is True and grant["canPublishSources"] == sources
    assert grant["canPublishData"] is data


def test_audio_only_room_never_grants_screen_share(cb, anon, livekit):
    """MEDIA_TYPE_AUDIO_ONLY is voice only: `allow_share_screen` is stored and echoed, but
    the token grants the microphone alone."""
    body = json.loads(PRESETS["audio"]) | {"allow_share_screen": True}
    created = create(cb, body)
    assert created["allow_share_screen"] is True
    room = Room.objects.get(object_id=created["id"])
    token = ok(anon.call("createToken", token_body(room, "p-1")))["participant_token"]
    assert video(livekit, token)["canPublishSources"] == ["microphone"]


def test_data_only_with_chat(cb, anon, livekit):
    room_id = create(cb, {"name": "Quiet room", "allow_chat": False, "allow_share_screen": False})[
        "id"
    ]
    room = Room.objects.get(object_id=room_id)
    grant = video(
        livekit, ok(anon.call("createToken", token_body(room, "p-1")))["participant_token"]
    )
    assert grant["canPublishData"] is False
    assert grant["canPublishSources"] == ["camera", "microphone"]


def test_hidden_participant_needs_the_rooms_hidden_token(cb, anon, livekit):
    room = public_room(cb, "webinar")
    secret = room_services.hidden_token(room)
    for extra in (
        {"hidden": True},
        {"hidden": True, "token": "wrong"},
        {"hidden": True, "token": 7},
    ):
        error(anon.call("createToken", token_body(room, "rec-1", **extra)), 403, "hidden token")
    assert not Participant.objects.filter(identity="rec-1").exists()
    other = public_room(cb, "team")  # another room's secret does not work here
    wrong = room_services.hidden_token(other)
    error(anon.call("createToken", token_body(room, "rec-1", hidden=True, token=wrong)), 403)
    body = ok(anon.call("createToken", token_body(room, "rec-1", hidden=True, token=secret)))
    grant = video(livekit, body["participant_token"])
    assert grant["hidden"] is True and grant["canSubscribe"] is True
    assert grant["canPublish"] is False and grant["canPublishData"] is False
    # The secret is shown to the tenant (v1, dashboard), never in the public lookup.
    found = anon.call("findLKRoomNameById", {"id": room.object_id})
    assert secret not in found.content.decode()


def test_hidden_token_survives_key_rotation(cb, settings):
    room = public_room(cb)
    old = room_services.hidden_token(room)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-for-rotation-" + "x" * 30
    assert room_services.hidden_token(room) != old
    assert room_services.hidden_token_matches(room, old)
    assert room_services.hidden_token_matches(room, room_services.hidden_token(room))
    tampered = old[:-1] + ("1" if old[-1] == "0" else "0")  # always differs from old
    assert not room_services.hidden_token_matches(room, tampered)


@pytest.mark.parametrize(
    "v1, words",
    [
        ({"access_type": "password", "password": "hunter22"}, ["password"]),
        ({"access_type": "whitelist", "whitelist_emails": ["a@example.com"]}, ["invited"]),
        ({"access_type": "authenticated"}, ["signed-in"]),
        ({"waiting_room_enabled": True}, ["waiting room"]),
    ],
)
def test_policy_rooms_are_refused_with_the_join_link(cb, anon, livekit, v1, words):
    room = public_room(cb, "team", **v1)
    link = f"/room/{room.room_id}"
    error(anon.call("findLKRoomNameById", {"id": room.object_id}), 403, link, *words)
    error(anon.call("createToken", token_body(room, "p-1")), 403, link, *words)
    # Not even with the key or the hidden token: the public path never bypasses a lobby.
    secret = room_services.hidden_token(room)
    error(cb.call("createToken", token_body(room, "p-1", hidden=True, token=secret)), 403, link)
    assert not Participant.objects.filter(room=room).exists()
    assert livekit.calls_to("CreateRoom") == []


def test_inactive_or_unknown_rooms_are_404(cb, anon, livekit):
    room = public_room(cb, "team")
    ok(cb.call("stop", {"id": room.object_id}))
    error(anon.call("findLKRoomNameById", {"id": room.object_id}), 404)
    error(anon.call("createToken", token_body(room, "p-1")), 404)
    error(anon.call("findLKRoomNameById", {"id": "f" * 24}), 404)


def test_create_token_validates_its_body(cb, anon, livekit):
    room = public_room(cb, "team")
    good = token_body(room, "p-1")
    error(anon.call("createToken", {**good, "LKRoomName": "someone-else"}), 400, "LKRoomName")
    error(
        anon.call("createToken", {k: v for k, v in good.items() if k != "LKRoomName"}),
        400,
        "LKRoomName",
    )  # noqa: E501
    error(anon.call("createToken", {**good, "participant_id": "bad id!"}), 400, "participant_id")
    error(
        anon.call("createToken", {k: v for k, v in good.items() if k != "participant_id"}),
        400,
        "participant_id",
    )  # noqa: E501
    error(anon.call("createToken", {**good, "participant_name": "<b>"}), 400, "participant_name")
    error(anon.call("createToken", {**good, "hidden": "yes"}), 400, "hidden")
    error(anon.call("createToken", {**good, "role": "host"}), 400, "role")
    error(anon.call("createToken", '{"room_id": '), 400, "JSON")
    assert livekit.calls_to("CreateRoom") == []


def test_public_identity_never_inherits_a_stage_role(cb, anon, livekit):
    room = public_room(cb, "webinar")
    room_services.issue_token(room=room, name="Host", identity="host-1", role="host")
    error(anon.call("createToken", token_body(room, "host-1")), 409, "participant_id")
    assert Participant.objects.get(room=room, identity="host-1").role == "host"


def test_sent_key_must_be_valid_and_scopes_the_lookup(cb, anon, outsider, livekit):
    room = public_room(cb, "team")
    error(anon.call("findLKRoomNameById", {"id": room.object_id}, key="pk_wrong"), 401)
    error(anon.call("createToken", token_body(room, "p-1"), key="pk_wrong"), 401)
    ok(cb.call("findLKRoomNameById", {"id": room.object_id}))
    error(Callaba(outsider.api_key).call("findLKRoomNameById", {"id": room.object_id}), 404)


def test_public_helpers_are_rate_limited_per_address(cb, livekit):
    room = public_room(cb, "team")
    here, there = Callaba(None), Callaba(None)
    there.client = Client(REMOTE_ADDR="198.51.100.9")
    for i in range(30):
        assert here.call("findLKRoomNameById", {"id": room.object_id}).status_code == 200, i
    limited = here.call("createToken", token_body(room, "p-1"))
    error(limited, 429)
    assert int(limited["Retry-After"]) > 0
    ok(there.call("createToken", token_body(room, "p-1")))  # another address is not limited


def test_public_token_on_livekit_down_is_503(cb, anon, livekit):
    room = public_room(cb, "team")
    livekit.down()
    error(anon.call("createToken", token_body(room, "p-1")), 503)
    room.refresh_from_db()
    assert room.live_since is None and not Participant.objects.filter(room=room).exists()


# --- the schema and the dashboard -------------------------------------------------------------


def test_openapi_schema_lists_the_callaba_paths():
    response = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    paths = set(schema["paths"])
    for name in ("create", "getCount", "getAll", "getById", "update", "start", "stop"):
        assert "post" in schema["paths"][f"/api/conferences/{name}"], name
    assert "delete" in schema["paths"]["/api/conferences/remove"]
    assert "/api/conferences-public/findLKRoomNameById" in paths
    assert "/api/conferences-public/createToken" in paths
    assert not any("{rest}" in p for p in paths)
    assert schema["components"]["securitySchemes"]["CallabaAccessToken"]["name"] == (
        "x-access-token"
    )


def test_dashboard_room_page_shows_the_hidden_token(cb, big):
    room = public_room(cb, "team")
    client = Client()
    client.force_login(big.user)
    page = client.get(f"/dashboard/rooms/{room.room_id}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert room_services.hidden_token(room) in text and room.object_id in text


@pytest.mark.django_db(transaction=True)
def test_migration_gives_existing_rooms_distinct_object_ids():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("conferences", "0005_room_recording_and_webhook_settings")]
    after = [("conferences", "0006_callaba")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        plan = old.get_model("accounts", "Plan").objects.create(
            code="legacy", name="Legacy", max_participants_per_room=10
        )
        tenant = old.get_model("accounts", "Tenant").objects.create(
            public_id="legacytenant0001", name="Legacy", plan=plan
        )
        OldRoom = old.get_model("conferences", "Room")
        for n in (1, 2, 3):
            OldRoom.objects.create(
                tenant=tenant,
                room_id=f"legacyroom0{n}",
                number=n,
                name=f"Old {n}",
                room_type="temporary",
                media_type="both",
                max_participants=10,
                access_type="public",
                status="active",
                video_quality="high",
            )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        ids = list(Room.objects.filter(tenant_id=tenant.pk).values_list("object_id", flat=True))
        assert len(ids) == 3 and len(set(ids)) == 3 and all(OBJECT_ID.match(i) for i in ids)
        assert set(
            Room.objects.filter(tenant_id=tenant.pk).values_list("livekit_sid", flat=True)
        ) == {""}
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
