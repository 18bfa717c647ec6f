"""A room created through the VideoSDK facade with a `webhook` object: its events reach that
endpoint through the outbound-webhook delivery (signed, logged), named with VideoSDK's event
names, and only the events the room chose. A real HTTP receiver on loopback."""

from __future__ import annotations

import pytest

from conferences import livekit as gateway
from conferences import webhook_http
from conferences.models import Room, WebhookEndpoint
from conferences.services import livekit_events
from conferences.services import webhooks as webhook_services
from tests.videosdk_helpers import SigningPair, VideoSdkClient
from tests.webhook_receiver import Receiver


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def notice(room: Room, event: str, event_id: str, identity: str) -> gateway.WebhookNotice:
    return gateway.WebhookNotice(
        event=event, room=room.room_id, identity=identity, name=identity.title(),
        event_id=event_id, created_at=1_800_000_000, participant_sid=f"PA_{identity}",
        joined_at=1_800_000_000.0, room_sid="RM_v",
    )  # fmt: skip


def test_room_webhook_delivers_videosdk_event_names_signed(owner, api, livekit, receiver):
    sdk = VideoSdkClient(SigningPair(owner.tenant).token())
    events = ["session-started", "participant-joined", "participant-left", "session-ended"]
    created = sdk.post("/v2/rooms", {"webhook": {"endPoint": receiver.url, "events": events}})
    assert created.status_code == 200, created.content
    room = Room.objects.get(meeting_id=created.json()["roomId"])

    # A session: started (v1 start with the tenant's key), one guest in and out, stopped.
    assert api.post(f"/api/v1/rooms/{room.room_id}/start").status_code == 200
    livekit_events.apply(notice(room, "participant_joined", "EV_j", "ann"))
    livekit_events.apply(notice(room, "participant_left", "EV_l", "ann"))
    assert api.post(f"/api/v1/rooms/{room.room_id}/stop").status_code == 200
    # An event the room did not choose (room.updated) must not reach its endpoint.
    api.patch(f"/api/v1/rooms/{room.room_id}", {"name": "Renamed room"})

    own = WebhookEndpoint.objects.get(room=room)
    assert own.url == receiver.url
    while webhook_services.deliver_endpoint(endpoint_pk=own.pk) == "more":
        pass

    assert receiver.types() == events
    payloads = [r.json for r in receiver.requests]
    assert {p["room"]["room_id"] for p in payloads} == {room.room_id}
    assert payloads[1]["data"]["identity"] == "ann"
    assert len({p["id"] for p in payloads}) == len(payloads)  # stable, distinct event ids
    # Signed with the endpoint's secret (shown by rotating it; the old one still signs).
    secret = api.post(f"/api/v1/webhooks/{own.endpoint_id}/rotate").json()["secret"]
    assert secret.startswith("whsec_")
    previous = webhook_http.unseal(WebhookEndpoint.objects.get(pk=own.pk).previous_secret_encrypted)
    for request in receiver.requests:
        assert request.headers["Parley-Event-Id"] == request.json["id"]
        assert webhook_http.verify_signature(
            request.headers["Parley-Signature"], request.body, previous
        )
    # The delivery log shows each attempt.
    log = api.get(f"/api/v1/webhooks/{own.endpoint_id}/deliveries").json()
    assert len(log["deliveries"]) == len(events)


def test_unknown_webhook_event_names_are_refused(owner):
    sdk = VideoSdkClient(SigningPair(owner.tenant).token())
    response = sdk.post(
        "/v2/rooms", {"webhook": {"endPoint": "https://hooks.example.test/", "events": ["nope"]}}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["statusCode"] == 400 and "nope" in body["message"]
