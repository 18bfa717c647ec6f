"""Each shared JSON shape is written once: what the builders return has exactly the fields
the OpenAPI schema documents (the schema is generated from the same declaration), and v1,
the join page and the sockets all answer with the same token shape."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from conferences import selectors, shapes
from conferences.api.v1.serializers import RoomOutputSerializer, room_to_dict
from conferences.models import Participant
from conferences.services import rooms as room_services
from tests.join_helpers import Browser, make_room


def _fields(shape) -> set[str]:
    return set(shapes.schema(shape)().fields)


@pytest.fixture
def webinar(owner, livekit):
    room = make_room(owner, allow_webinar_mode=True)
    room_services.start_room(room=room)
    Participant.objects.create(
        room=room, identity="ann", name="Ann", role="viewer", hand_raised_at=timezone.now()
    )
    return room


def test_builders_match_their_schema(webinar):
    ann = Participant.objects.get(identity="ann")
    issued = room_services.issue_token(room=webinar, name="Bo")
    assert set(shapes.token_json(issued)) == _fields(shapes.TokenJSON)
    assert set(shapes.stage_participant_json(ann)) == _fields(shapes.StageParticipantJSON)
    assert set(shapes.own_stage_json(ann)) == _fields(shapes.OwnStageJSON)
    [hand] = selectors.hand_queue(room=webinar)
    assert set(shapes.hand_json(hand, timezone.now())) == _fields(shapes.HandJSON)
    stage = shapes.stage_json(webinar)
    assert set(stage) == _fields(shapes.StageJSON)
    assert set(stage["hands"][0]) == _fields(shapes.HandJSON)
    assert set(shapes.lobby_json(selectors.lobby_queue(webinar))) == _fields(shapes.LobbyJSON)
    assert set(room_to_dict(webinar, "")) == set(RoomOutputSerializer().fields)


def test_a_hand_never_waited_a_negative_time(webinar):
    [hand] = selectors.hand_queue(room=webinar)
    assert shapes.hand_json(hand, hand.raised_at - dt.timedelta(seconds=5))["waiting_seconds"] == 0


def test_every_route_hands_out_the_same_token_shape(owner, api, livekit):
    room = make_room(owner)
    v1 = api.post(f"/api/v1/rooms/{room.room_id}/tokens", {"name": "Ada"}).json()
    page = Browser(room).join("Ada").json()
    assert page.pop("status") == "admitted"
    assert set(v1) == set(page) == _fields(shapes.TokenJSON)
    assert set(v1) == {"token", "ws_url", "room_name", "identity", "name", "role", "expires_at"}
