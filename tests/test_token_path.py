"""The lean join-token path: API key and room from the hot cache (parley.hotcache), the
participant row written in one statement, and what must still take effect at once."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from accounts import services as account_services
from accounts.models import ApiKey
from conferences import livekit as livekit_api
from conferences.livekit import Grants
from conferences.models import Participant, Room
from tests.conftest import assert_error
from tests.test_tokens import make_room, mint


def test_token_with_warm_cache_is_one_query(api, livekit, django_assert_num_queries):
    room = make_room(api)
    assert mint(api, room, identity="warm-up").status_code == 200  # the room goes live
    assert mint(api, room, identity="warm-up").status_code == 200  # key and room cached
    with django_assert_num_queries(1):
        # INSERT ... ON CONFLICT (room, identity) DO UPDATE ... RETURNING: the role, hand
        # and mic-only state the identity now holds, read and written in one statement.
        response = mint(api, room, identity="guest-1")
    assert response.status_code == 200, response.content
    with django_assert_num_queries(1):
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


def test_next_token_keeps_mic_only_and_hand_while_the_role_stays(api, livekit):
    room = make_room(api, allow_webinar_mode=True)
    assert mint(api, room, identity="ann").json()["role"] == "viewer"
    now = Room.objects.get().created_at
    Participant.objects.filter(identity="ann").update(
        role="speaker", mic_only=True, hand_raised_at=now
    )
    kept = mint(api, room, identity="ann").json()  # no role asked: the stored one
    claims = livekit.verify_join_token(kept["token"])
    assert kept["role"] == "speaker" and claims["video"]["canPublishSources"] == ["microphone"]
    assert claims["attributes"]["hand"]
    same = livekit.verify_join_token(
        mint(api, room, identity="ann", role="speaker").json()["token"]
    )
    assert same["video"]["canPublishSources"] == ["microphone"]  # the same role: still mic-only
    other = mint(api, room, identity="ann", role="viewer").json()
    assert other["role"] == "viewer"
    row = Participant.objects.get(identity="ann")
    assert (row.role, row.mic_only, row.hand_raised_at) == ("viewer", False, now)
    # A new identity without a role gets the room's default, stored.
    fresh = mint(api, room, identity="bob").json()
    assert fresh["role"] == "viewer" and Participant.objects.get(identity="bob").role == "viewer"


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


@pytest.mark.parametrize(
    "grants, attributes, metadata",
    [
        (Grants("r1", True, True, True, ("camera", "microphone")), {"role": "host"}, '{"a": 1}'),
        (Grants("r2", False, True, False, (), hidden=True), None, ""),
        (Grants("r3", True, True, True, ("microphone",), can_update_own_metadata=True), {}, ""),
    ],
)
def test_minted_claims_are_the_sdks(grants, attributes, metadata, settings):
    """livekit.mint_token writes the claims itself; they are exactly what the SDK's
    AccessToken would sign for the same grants."""
    import jwt
    from livekit import api as lk

    token, expires_at = livekit_api.mint_token(
        identity="ann", name="Ann", grants=grants, attributes=attributes, metadata=metadata
    )
    sdk = (
        lk.AccessToken(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET)
        .with_identity("ann")
        .with_name("Ann")
        .with_grants(
            lk.VideoGrants(
                room_join=True,
                room=grants.room,
                can_publish=grants.can_publish,
                can_subscribe=grants.can_subscribe,
                can_publish_data=grants.can_publish_data,
                can_publish_sources=list(grants.can_publish_sources),
                can_update_own_metadata=grants.can_update_own_metadata,
                room_admin=False,
                room_create=False,
                room_list=False,
                room_record=False,
                hidden=grants.hidden,
                recorder=False,
            )
        )
        .with_ttl(dt.timedelta(seconds=settings.LIVEKIT_TOKEN_TTL))
    )
    if attributes:
        sdk = sdk.with_attributes(attributes)
    if metadata:
        sdk = sdk.with_metadata(metadata)
    ours = jwt.decode(token, settings.LIVEKIT_API_SECRET, algorithms=["HS256"])
    assert expires_at == dt.datetime.fromtimestamp(ours["exp"], dt.UTC)
    assert ours["exp"] - ours["nbf"] == settings.LIVEKIT_TOKEN_TTL
    theirs = jwt.decode(sdk.to_jwt(), settings.LIVEKIT_API_SECRET, algorithms=["HS256"])
    assert abs(ours.pop("nbf") - theirs.pop("nbf")) <= 1
    assert abs(ours.pop("exp") - theirs.pop("exp")) <= 1
    assert ours == theirs
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "ann", "n": 1, "video": {"room": "r", "canPublish": True}},
        {"name": "Zoë 名前 \u2028", "metadata": '{"a": "b"}', "exp": 2**40, "nested": [1, None]},
    ],
)
def test_hs256_signature_is_pyjwts_byte_for_byte(claims):
    import jwt

    secret = "s3cret-" * 6
    assert livekit_api.sign_hs256(claims, secret) == jwt.encode(claims, secret, algorithm="HS256")


def test_recorder_token_claims_are_the_sdks(settings):
    import jwt
    from livekit import api as lk

    ours = livekit_api.mint_recorder_token(room="r9", identity="recorder-1", ttl_seconds=600)
    sdk = (
        lk.AccessToken(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET)
        .with_identity("recorder-1")
        .with_name("Recorder")
        .with_grants(
            lk.VideoGrants(
                room_join=True,
                room="r9",
                can_publish=False,
                can_subscribe=True,
                can_publish_data=False,
                can_publish_sources=[],
                can_update_own_metadata=False,
                room_admin=False,
                room_create=False,
                room_list=False,
                room_record=False,
                hidden=True,
                recorder=True,
            )
        )
        .with_ttl(dt.timedelta(seconds=600))
        .to_jwt()
    )
    mine = jwt.decode(ours, settings.LIVEKIT_API_SECRET, algorithms=["HS256"])
    theirs = jwt.decode(sdk, settings.LIVEKIT_API_SECRET, algorithms=["HS256"])
    assert mine["exp"] - mine["nbf"] == 600
    for claims in (mine, theirs):
        claims.pop("nbf"), claims.pop("exp")
    assert mine == theirs and mine["video"]["recorder"] is True and mine["video"]["hidden"] is True


def test_a_batch_of_tokens_is_one_statement_and_the_same_as_one_at_a_time(
    api, livekit, django_assert_num_queries
):
    from conferences.services import rooms as room_services
    from conferences.services.rooms import TokenRequest

    room_id = make_room(api, allow_webinar_mode=True)["room_id"]
    assert mint(api, {"room_id": room_id}, identity="host", role="host").status_code == 200
    room = Room.objects.get(room_id=room_id)
    now = room.created_at
    Participant.objects.filter(identity="host").update(mic_only=True, hand_raised_at=now)
    asks = [
        ("Ann", "ann", None),  # new: the room's default (viewer)
        ("Bob", "bob", "speaker"),  # new, asking
        ("Ann 2", "ann", "speaker"),  # again in the batch: after the first, as if alone
        ("Host", "host", None),  # stored role, mic-only and hand kept
        ("Ann 3", "ann", None),  # a third time: the role just stored
        ("Anon", None, None),  # no identity: a new one with the default role
    ]
    with django_assert_num_queries(4):  # asking / not asking, then twice "ann" again
        issued = room_services.issue_tokens(
            [TokenRequest(room=room, name=n, identity=i, role=r) for n, i, r in asks]
        )
    got = [(t.name, t.identity, t.role) for t in issued]
    assert got[:5] == [
        ("Ann", "ann", "viewer"),
        ("Bob", "bob", "speaker"),
        ("Ann 2", "ann", "speaker"),
        ("Host", "host", "host"),
        ("Ann 3", "ann", "speaker"),
    ]
    assert got[5][2] == "viewer" and got[5][1].startswith("viewer-")
    host = livekit.verify_join_token(issued[3].token)
    assert host["attributes"]["hand"] and host["video"]["canPublishSources"] == ["microphone"]
    rows = {p.identity: (p.name, p.role) for p in Participant.objects.filter(room=room)}
    assert rows == {
        "host": ("Host", "host"),
        "ann": ("Ann 3", "speaker"),
        "bob": ("Bob", "speaker"),
        got[5][1]: ("Anon", "viewer"),
    }
    with django_assert_num_queries(2):  # no one twice: one statement per 100 rows
        more = room_services.issue_tokens(
            [TokenRequest(room=room, name=f"V{i}", identity=f"v{i}") for i in range(150)]
        )
    assert [t.identity for t in more] == [f"v{i}" for i in range(150)]
    assert Participant.objects.filter(room=room, identity__regex=r"^v[0-9]+$").count() == 150
