"""Room lifecycle: create, update, delete, start, stop, and join tokens.

Rooms are `scheduled` (waiting for their start), `active` (open to join) or `completed`.
Independently, an active room is *live* while LiveKit holds a session for it (`live_since`);
the plan's concurrent-room limit counts live rooms, and is enforced when a room goes live:
on `start_room`, or on the first join token of an open room. LiveKit calls happen inside the
transaction, before anything is written, so a LiveKit failure leaves no trace.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Tenant
from conferences import events, livekit
from conferences.models import Room, RoomSession, default_host_controls
from conferences.roles import Role, attributes_for, grants_for

from .errors import InvalidState, LimitExceeded, Unavailable

DEFAULTS: dict[str, Any] = {
    "room_type": Room.RoomType.TEMPORARY,
    "media_type": Room.MediaType.BOTH,
    "access_type": Room.AccessType.PUBLIC,
    "recurring": False,
    "recording_enabled": False,
    "screen_sharing_enabled": True,
    "chat_enabled": True,
    "waiting_room_enabled": False,
    "video_quality": Room.VideoQuality.HIGH,
    "audio_only_mode": False,
}
SETTINGS_FIELDS = (
    "name room_type media_type max_participants access_type start_time end_time recurring "
    "recording_enabled screen_sharing_enabled chat_enabled waiting_room_enabled video_quality "
    "audio_only_mode custom_logo_url"
).split()


def _apply(room: Room, data: dict[str, Any]) -> None:
    """Copy validated settings onto `room`, hashing the password and normalising access."""
    for name in SETTINGS_FIELDS:
        if name in data:
            value = data[name]
            setattr(room, name, "" if value is None and name == "custom_logo_url" else value)
    if "host_controls" in data:
        room.host_controls = {**default_host_controls(), **data["host_controls"]}
    if "password" in data:
        room.password_hash = make_password(data["password"])
    if "whitelist_emails" in data:
        room.whitelist_emails = data["whitelist_emails"]
    # Credentials of an access type the room no longer uses are dropped, never kept around.
    if room.access_type != Room.AccessType.PASSWORD:
        room.password_hash = ""
    if room.access_type != Room.AccessType.WHITELIST:
        room.whitelist_emails = []


@transaction.atomic
def create_room(*, tenant: Tenant, data: dict[str, Any]) -> Room:
    """Store a new room from validated `data` (RoomInputSerializer). No LiveKit call."""
    Tenant.objects.filter(pk=tenant.pk).update(room_seq=F("room_seq") + 1)
    number = Tenant.objects.values_list("room_seq", flat=True).get(pk=tenant.pk)
    room = Room(
        tenant=tenant,
        number=number,
        max_participants=tenant.plan.max_participants_per_room,
        host_controls=default_host_controls(),
        **DEFAULTS,
    )
    _apply(room, data)
    room.status = (
        Room.Status.SCHEDULED if room.room_type == Room.RoomType.SCHEDULED else Room.Status.ACTIVE
    )
    room.save()
    events.emit_on_commit(
        "room.created", tenant_id=tenant.pk, room_id=room.room_id, data={"name": room.name}
    )
    return room


@transaction.atomic
def update_room(*, room: Room, data: dict[str, Any]) -> Room:
    """Change settings from validated partial `data`. A waiting scheduled room turned into an
    ordinary one opens at once; an open room turned scheduled waits for its start."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    _apply(room, data)
    if room.live_since is None and room.status != Room.Status.COMPLETED:
        room.status = (
            Room.Status.SCHEDULED
            if room.room_type == Room.RoomType.SCHEDULED
            else Room.Status.ACTIVE
        )
    room.save()
    return room


@transaction.atomic
def delete_room(*, room: Room) -> None:
    """Delete the room; a live one is closed on LiveKit first (503 if LiveKit is down)."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    if room.live_since is not None:
        _livekit_delete(room)
    tenant_id, room_id = room.tenant_id, room.room_id
    room.delete()
    events.emit_on_commit("room.deleted", tenant_id=tenant_id, room_id=room_id, data={})


def _check_concurrency(room: Room) -> None:
    """Lock the tenant row, then count its live rooms against the plan."""
    tenant = Tenant.objects.select_for_update().select_related("plan").get(pk=room.tenant_id)
    limit = tenant.plan.max_concurrent_rooms
    if limit is None:
        return
    live = Room.objects.for_tenant(tenant).live().exclude(pk=room.pk).count()
    if live >= limit:
        raise LimitExceeded(
            f"Your {tenant.plan.name} plan allows {limit} concurrent rooms; stop a room first"
        )


def livekit_metadata(room: Room) -> dict[str, Any]:
    return {
        "room_id": room.room_id,
        "media_type": room.media_type,
        "video_quality": room.video_quality,
        "audio_only_mode": room.audio_only_mode,
        "chat_enabled": room.chat_enabled,
        "screen_sharing_enabled": room.screen_sharing_enabled,
        "waiting_room_enabled": room.waiting_room_enabled,
        "recording_enabled": room.recording_enabled,
        "host_controls": room.host_controls,
    }


def _go_live(room: Room, now: datetime) -> None:
    """Room is locked by the caller. Check the plan, create the LiveKit room, record it."""
    _check_concurrency(room)
    try:
        livekit.create_room(
            name=room.livekit_name,
            max_participants=room.max_participants,
            metadata=livekit_metadata(room),
        )
    except livekit.LiveKitUnavailable:
        raise Unavailable("The media server is unavailable; try again shortly") from None
    room.live_since = now
    RoomSession.objects.create(room=room, started_at=now)


@transaction.atomic
def start_room(*, room: Room) -> Room:
    """Open the room now and make it live on LiveKit. Idempotent for a live room."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    if room.live_since is not None:
        return room
    now = timezone.now()
    _go_live(room, now)
    room.status = Room.Status.ACTIVE
    room.started_at = now
    room.ended_at = None
    room.save(update_fields=["status", "started_at", "ended_at", "live_since", "updated_at"])
    events.emit_on_commit("room.started", tenant_id=room.tenant_id, room_id=room.room_id, data={})
    return room


def _livekit_delete(room: Room) -> None:
    try:
        livekit.delete_room(name=room.livekit_name)
    except livekit.LiveKitUnavailable:
        raise Unavailable("The media server is unavailable; try again shortly") from None


@transaction.atomic
def stop_room(*, room: Room) -> Room:
    """End the room for everyone: LiveKit room deleted, status completed."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    if room.status == Room.Status.COMPLETED:
        raise InvalidState("The room has already ended", code="ROOM_ALREADY_ENDED")
    now = timezone.now()
    if room.live_since is not None:
        _livekit_delete(room)
        RoomSession.objects.filter(room=room, ended_at__isnull=True).update(ended_at=now)
    room.status = Room.Status.COMPLETED
    room.live_since = None
    room.ended_at = now
    room.save(update_fields=["status", "live_since", "ended_at", "updated_at"])
    events.emit_on_commit("room.ended", tenant_id=room.tenant_id, room_id=room.room_id, data={})
    return room


@dataclass(frozen=True)
class IssuedToken:
    token: str
    ws_url: str
    room_name: str
    identity: str
    name: str
    role: str
    expires_at: datetime


def issue_token(
    *, room: Room, name: str, identity: str | None = None, role: str = Role.PARTICIPANT
) -> IssuedToken:
    """A short-lived LiveKit join token for `room` with exactly the grants of `role`.

    The room must be open; an open room that is not live yet goes live first (plan limit,
    LiveKit room created with our settings)."""
    from django.conf import settings

    if room.status == Room.Status.SCHEDULED:
        raise InvalidState("The room has not started yet", code="ROOM_NOT_STARTED")
    if room.status == Room.Status.COMPLETED:
        raise InvalidState("The room has ended", code="ROOM_ENDED")
    if room.live_since is None:
        with transaction.atomic():
            locked = Room.objects.select_for_update().get(pk=room.pk)
            if locked.live_since is None and locked.status == Room.Status.ACTIVE:
                now = timezone.now()
                _go_live(locked, now)
                locked.started_at = locked.started_at or now
                locked.save(update_fields=["live_since", "started_at", "updated_at"])
                events.emit_on_commit(
                    "room.started", tenant_id=room.tenant_id, room_id=room.room_id, data={}
                )
            room = locked
    identity = identity or f"{role}-{secrets.token_hex(6)}"
    token, expires_at = livekit.mint_token(
        identity=identity,
        name=name,
        grants=grants_for(role, room),
        attributes=attributes_for(role),
    )
    return IssuedToken(
        token=token,
        ws_url=settings.LIVEKIT_PUBLIC_URL,
        room_name=room.livekit_name,
        identity=identity,
        name=name,
        role=str(role),
        expires_at=expires_at,
    )


def live_participants(*, room: Room) -> list[livekit.ParticipantDict]:
    """Who is in the room on LiveKit right now."""
    try:
        return livekit.list_participants(room=room.livekit_name)
    except livekit.LiveKitUnavailable:
        raise Unavailable("The media server is unavailable; try again shortly") from None
