"""The transactional outbox of outbound webhooks.

`events.emit_on_commit` calls `record` inside the caller's transaction: the event row and one
delivery row per subscribed endpoint are written with the change that caused them (a rolled
back change leaves no event), and the deliveries are queued once it commits. Celery delivers
them (conferences.services.webhooks.deliver_endpoint); a beat sweeper re-queues anything a
lost message or a killed worker left behind.

Internal event names map onto the outbound type names (VideoSDK's and Parley's own); names
already in the outbound vocabulary pass through; everything else is not sent out.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from accounts.models import Tenant

from . import webhook_http
from .models import Room, RoomSession, WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger(__name__)

# Internal domain event name -> outbound type.
MAPPED = {
    "participant.joined": "participant-joined",
    "participant.left": "participant-left",
    "room.started": "session-started",
    "room.ended": "session-ended",
    "recording.starting": "recording-starting",
    "recording.started": "recording-started",
    "recording.stopping": "recording-stopping",
    "recording.stopped": "recording-stopped",
    "recording.failed": "recording-failed",
}
# Outbound types that are also internal names.
PASS_THROUGH = frozenset(
    {
        "room.created",
        "room.updated",
        "room.deleted",
        "participant.hand_raised",
        "participant.promoted",
        "participant.demoted",
        "participant.admitted",
        "participant.rejected",
        "occurrence.started",
        "occurrence.missed",
    }
)
VIDEOSDK_TYPES = (
    "participant-joined",
    "participant-left",
    "session-started",
    "session-ended",
    "recording-starting",
    "recording-started",
    "recording-stopping",
    "recording-stopped",
    "recording-failed",
    "hls-starting",
    "hls-started",
    "hls-playable",
    "hls-stopping",
    "hls-stopped",
    "hls-failed",
    "livestream-starting",
    "livestream-started",
    "livestream-stopping",
    "livestream-stopped",
    "livestream-failed",
)
TEST_TYPE = "webhook.test"
# Every type an endpoint may subscribe to ("*": all of them, including later ones).
EVENT_TYPES = (*VIDEOSDK_TYPES, *sorted(PASS_THROUGH))
OUTBOUND_PREFIXES = ("hls-", "livestream-", "recording-", "call.")


def outbound_type(event: str) -> str | None:
    """The outbound type of an internal event name, or None when it is not sent out."""
    if event in MAPPED:
        return MAPPED[event]
    if event in PASS_THROUGH or event in VIDEOSDK_TYPES or event.startswith(OUTBOUND_PREFIXES):
        return event
    return None


def subscribes(events: list[str], type_: str) -> bool:
    return "*" in events or type_ in events


def room_dict(room: Room | None, room_id: str) -> dict[str, Any]:
    if room is None:
        return {"room_id": room_id} if room_id else {}
    return {
        "room_id": room.room_id,
        "id": room.number,
        "name": room.name,
        "room_type": room.room_type,
        "status": room.status,
    }


def _room_endpoint(room: Room) -> WebhookEndpoint | None:
    """The room's own endpoint (Room.webhook_url), created on first use with a fresh secret
    and kept in step with the room's URL and events."""
    endpoint = WebhookEndpoint.objects.filter(room=room).first()
    events = [str(e) for e in (room.webhook_events or [])]
    if endpoint is None:
        return WebhookEndpoint.objects.create(
            tenant_id=room.tenant_id,
            room=room,
            url=room.webhook_url,
            events=events,
            description=f"Room {room.room_id}",
            secret_encrypted=webhook_http.seal(webhook_http.new_secret()),
        )
    if endpoint.url != room.webhook_url or endpoint.events != events:
        endpoint.url, endpoint.events = room.webhook_url, events
        endpoint.save(update_fields=["url", "events", "updated_at"])
    return endpoint


SESSION_TYPES = ("session-started", "session-ended")


def _needs_session(type_: str, room: Room | None, data: dict[str, Any]) -> bool:
    return room is not None and "session_id" not in data and type_ in SESSION_TYPES


def _session_data(type_: str, room: Room | None, data: dict[str, Any]) -> dict[str, Any]:
    if not _needs_session(type_, room, data):
        return data
    session = RoomSession.objects.filter(room=room).order_by("-started_at", "-pk").first()
    return _with_session(type_, data, session)


def _with_session(type_: str, data: dict[str, Any], session: RoomSession | None) -> dict[str, Any]:
    if session is None:
        return data
    extra: dict[str, Any] = {"session_id": session.session_id, "started_at": session.started_at}
    if type_ == "session-ended":
        extra["ended_at"] = session.ended_at
    return {**data, **extra}


def _new_event(
    type_: str,
    *,
    tenant_id: int,
    tenant_public_id: str,
    room: Room | None,
    room_id: str,
    data: dict[str, Any],
    now: Any,
) -> WebhookEvent:
    """The (unsaved) outbound event with its payload."""
    webhook_event = WebhookEvent(tenant_id=tenant_id, type=type_, room_id=room_id, created_at=now)
    payload = {
        "id": webhook_event.event_id,
        "type": type_,
        "created_at": now,
        "tenant": tenant_public_id,
        "room": room_dict(room, room_id),
        "data": data,
    }
    # Frozen as JSON now: what was true at commit is what every attempt sends.
    webhook_event.payload = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    return webhook_event


def record(
    event: str, *, tenant_id: int, room_id: str, data: dict[str, Any], only: int | None = None
) -> WebhookEvent | None:
    """Write the outbound event and its deliveries in the current transaction (see module
    doc). `only`: deliver to this endpoint alone, whatever it subscribes to (test events).
    Returns the event, or None when no endpoint wants it."""
    type_ = TEST_TYPE if only is not None else outbound_type(event)
    if type_ is None:
        return None
    room = Room.objects.filter(room_id=room_id, tenant_id=tenant_id).first() if room_id else None
    if only is not None:
        endpoints = list(WebhookEndpoint.objects.filter(pk=only, tenant_id=tenant_id))
    else:
        endpoints = [
            e
            for e in WebhookEndpoint.objects.filter(
                tenant_id=tenant_id, room__isnull=True, enabled=True
            )
            if subscribes(e.events, type_)
        ]
        if room is not None and room.webhook_url and subscribes(room.webhook_events or [], type_):
            own = _room_endpoint(room)
            if own is not None and own.enabled:
                endpoints.append(own)
    if not endpoints:
        return None
    now = timezone.now()
    tenant_public_id = Tenant.objects.values_list("public_id", flat=True).get(pk=tenant_id)
    webhook_event = _new_event(
        type_,
        tenant_id=tenant_id,
        tenant_public_id=str(tenant_public_id),
        room=room,
        room_id=room_id,
        data=_session_data(type_, room, data),
        now=now,
    )
    webhook_event.save()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=endpoint,
                event=webhook_event,
                event_created_at=now,
                next_attempt_at=now,
            )
            for endpoint in endpoints
        ]
    )
    endpoint_pks = [e.pk for e in endpoints]
    if settings.WEBHOOK_QUEUE_ON_COMMIT:
        transaction.on_commit(lambda: queue(endpoint_pks))
    return webhook_event


def record_many(items: list[tuple[str, int, str, dict[str, Any]]]) -> int:
    """`record` for many (event, tenant_id, room_id, data) at once, in order (a burst of
    scheduled starts), in a fixed number of queries whatever their number: the tenants'
    endpoints, the rooms (with their latest session, for session events), the tenants' public
    ids, one INSERT of the events and one of their deliveries, and one queueing after commit.
    When a room with its own webhook is among them (its endpoint is kept in step with the
    room one at a time), each event goes through `record`. Returns how many were written."""
    wanted = [item for item in items if outbound_type(item[0]) is not None]
    if not wanted:
        return 0
    tenant_ids = {tenant_id for _, tenant_id, _, _ in wanted}
    subscriptions: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(
        tenant_id__in=tenant_ids, room__isnull=True, enabled=True
    ).only("pk", "tenant_id", "events"):
        subscriptions.setdefault(endpoint.tenant_id, []).append(endpoint)
    room_ids = {room_id for _, _, room_id, _ in wanted if room_id}
    their_rooms = Room.objects.filter(tenant_id__in=tenant_ids, room_id__in=room_ids)
    if their_rooms.exclude(webhook_url="").exists():
        return sum(
            record(event, tenant_id=tenant_id, room_id=room_id, data=data) is not None
            for event, tenant_id, room_id, data in wanted
        )
    if not subscriptions:
        return 0
    latest = RoomSession.objects.filter(room=OuterRef("pk")).order_by("-started_at", "-pk")
    rooms = {
        (room.tenant_id, room.room_id): room
        for room in their_rooms.annotate(latest_session_pk=Subquery(latest.values("pk")[:1]))
    }
    to_write: list[tuple[str, int, Room | None, str, dict[str, Any], list[WebhookEndpoint]]] = []
    for event, tenant_id, room_id, data in wanted:
        type_ = outbound_type(event)
        assert type_ is not None
        endpoints = [e for e in subscriptions.get(tenant_id, []) if subscribes(e.events, type_)]
        if endpoints:
            room = rooms.get((tenant_id, room_id)) if room_id else None
            to_write.append((type_, tenant_id, room, room_id, data, endpoints))
    if not to_write:
        return 0
    sessions = RoomSession.objects.in_bulk(
        [
            room.latest_session_pk  # type: ignore[attr-defined]  # annotated above
            for type_, _, room, _, data, _ in to_write
            if room is not None and _needs_session(type_, room, data)
        ]
    )
    public_ids = dict(Tenant.objects.filter(pk__in=tenant_ids).values_list("pk", "public_id"))
    now = timezone.now()
    written = WebhookEvent.objects.bulk_create(
        [
            _new_event(
                type_,
                tenant_id=tenant_id,
                tenant_public_id=str(public_ids[tenant_id]),
                room=room,
                room_id=room_id,
                data=(
                    _with_session(type_, data, sessions.get(room.latest_session_pk))  # type: ignore[union-attr]
                    if _needs_session(type_, room, data)
                    else data
                ),
                now=now,
            )
            for type_, tenant_id, room, room_id, data, _ in to_write
        ]
    )
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=endpoint, event=event, event_created_at=now, next_attempt_at=now
            )
            for event, (*_, endpoints) in zip(written, to_write, strict=True)
            for endpoint in endpoints
        ]
    )
    endpoint_pks = sorted({e.pk for *_, endpoints in to_write for e in endpoints})
    if settings.WEBHOOK_QUEUE_ON_COMMIT:
        transaction.on_commit(lambda: queue(endpoint_pks))
    return len(written)


def queue(endpoint_pks: list[int]) -> None:
    """Ask a worker to deliver these endpoints' due events. A lost message is harmless: the
    beat sweeper finds due deliveries in the database."""
    from .tasks import deliver_webhooks

    for pk in endpoint_pks:
        try:
            deliver_webhooks.delay(pk)
        except Exception:  # broker down: the sweeper will queue it
            logger.exception("Could not queue webhook delivery for endpoint %s", pk)
