"""The lean join-token path: API key and room from the hot cache (parley.hotcache), the
participant row written in one statement, and what must still take effect at once."""

from __future__ import annotations

import time

import pytest

from accounts import services as account_services
from accounts.models import ApiKey
from conferences.models import Participant, Room
from tests.conftest import assert_error
from tests.test_tokens import make_room, mint


def test_token_with_warm_cache_is_two_queries(api, livekit, django_assert_num_queries):
    room = make_room(api)
    assert mint(api, room, identity="warm-up").status_code == 200  # the room goes live
    assert mint(api, room, identity="warm-up").status_code == 200  # key and room cached
    with django_assert_num_queries(2):
        # 1. SELECT the identity's stored participant row (its role, hand, mic-only)
        # 2. INSERT ... ON CONFLICT (room, identity) DO UPDATE: the role it now holds
        response = mint(api, room, identity="guest-1")
    assert response.status_code == 200, response.content
    with django_assert_num_queries(1):
        # The same identity, name and role again: only the SELECT; nothing to write.
        assert mint(api, room, identity="guest-1").status_code == 200
    row = Participant.objects.get(room__room_id=room["room_id"], identity="guest-1")
    assert row.role == "participant" and row.name == "Ann" and row.left_at is None


def test_upsert_keeps_hand_and_updates_role_and_name(api, livekit):
    room = make_room(api)
    mint(api, room, identity="ann")
    Participant.objects.filter(identity="ann").update(left_at=Room.objects.get().created_at)
    body = mint(api, room, identity="ann", name="Ann B", role="speaker").json()
    row = Participant.objects.get(identity="ann")
    assert (row.name, row.role, row.left_at) == ("Ann B", "speaker", None)
    assert body["role"] == "speaker"
    assert Participant.objects.filter(identity="ann").count() == 1


def test_revoked_key_is_refused_on_the_next_request(owner, api, livekit):
    room = make_room(api)
    assert mint(api, room).status_code == 200  # the key is in the hot cache now
    key = ApiKey.objects.get(tenant=owner.tenant)
    account_services.revoke_api_key(api_key=key)
    assert_error(mint(api, room), 401)


def test_room_change_is_seen_by_the_next_token(api, livekit):
    room = make_room(api, media_type="both")
    first = mint(api, room).json()
    assert "camera" in livekit.verify_join_token(first["token"])["video"]["canPublishSources"]
    assert api.patch(f"/api/v1/rooms/{room['room_id']}", {"media_type": "audio"}).status_code == 200
    second = mint(api, room).json()
    sources = livekit.verify_join_token(second["token"])["video"]["canPublishSources"]
    assert "camera" not in sources and "microphone" in sources


def test_ended_room_refuses_the_next_token(api, livekit):
    room = make_room(api)
    assert mint(api, room).status_code == 200
    assert api.post(f"/api/v1/rooms/{room['room_id']}/stop").status_code == 200
    assert_error(mint(api, room), 409)


def test_change_outside_the_services_is_seen_after_hot_cache_seconds(api, livekit, settings):
    """Django admin or a shell bypass the services' invalidation: the cached copy lives at
    most HOT_CACHE_SECONDS."""
    settings.HOT_CACHE_SECONDS = 0.2
    room = make_room(api)
    assert mint(api, room).status_code == 200
    Room.objects.filter(room_id=room["room_id"]).update(status=Room.Status.COMPLETED)
    time.sleep(0.25)
    assert_error(mint(api, room), 409)


def test_other_tenants_room_is_404_from_the_cache_too(api, outsider, livekit):
    from tests.conftest import Api

    room = make_room(api)
    assert mint(api, room).status_code == 200  # cached for the owner's tenant
    assert_error(mint(Api(outsider.api_key), room), 404)


@pytest.mark.parametrize("room_id", ["nope", "x" * 40, "bad/../id"])
def test_unknown_room_ids_are_404(api, livekit, room_id):
    assert_error(api.post(f"/api/v1/rooms/{room_id}/tokens", {"name": "Ann"}), 404)
