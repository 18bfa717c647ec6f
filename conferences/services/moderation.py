"""Host actions on a room's people: remove one, mute every microphone, turn off every camera;
and the room-wide ones the host pages offer (start now, end for everyone), and deactivation
(the VideoSDK facade's `rooms/deactivate`).

One service per operation, called by every route (v1, host API, dashboard, the host socket,
the Interactive Show facade). The room's `host_controls` switches bind hosts: the holder of
the host link and the tenant's members. The tenant itself, calling with its API key, owns
the room and is not bound by the switches for removal (`by_tenant=True`); muting and turning
off video follow the switches for every caller (they always did).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from conferences import events, livekit
from conferences.models import Participant, Room
from conferences.roles import HOST_ROLES

from . import lobby
from . import rooms as room_services
from .errors import ControlDisabled, NotFound

NO_SUCH_PARTICIPANT = "No such participant in this room"


def require_control(room: Room, key: str, label: str) -> None:
    if not (room.host_controls or {}).get(key, False):
        raise ControlDisabled(f"{label} is turned off for this room")


@transaction.atomic
def remove_participant(
    *, room: Room, identity: str, by_tenant: bool = False, ban: bool = False
) -> Participant | None:
    """Disconnect `identity` from the room and clear its stored stage state (hand,
    invitation); one `participant.removed` event. Hosts need host_controls.kick_participants;
    the tenant (`by_tenant`) does not.

    A guest let in through the waiting room loses its admission (`lobby.end_admissions`): its
    old page, socket or copied session cookie gets no new token, it must ask again. With
    `ban` it may not ask again until the room's live session ends (by browser, address,
    account or proven email).

    Order: the room row is locked, LiveKit is asked first, then the row is written, all in
    one transaction. LiveKit down: Unavailable, nothing written. If the commit failed after
    LiveKit removed them, the person is disconnected while the row still says present; the
    next participant_left webhook (or token) settles it, so no compensation is needed.

    NotFound when neither Parley nor LiveKit has the identity in the room. Returns the
    stored participant (None for someone LiveKit had that Parley never issued a token to).
    """
    if not by_tenant:
        require_control(room, "kick_participants", "Removing participants")
    if not isinstance(identity, str) or not identity or len(identity) > 128:
        raise NotFound(NO_SUCH_PARTICIPANT)
    if not identity.isprintable():
        raise NotFound(NO_SUCH_PARTICIPANT)
    room = Room.objects.select_for_update().get(pk=room.pk)
    participant = (
        Participant.objects.select_for_update()
        .filter(room=room, identity=identity, left_at__isnull=True)
        .first()
    )
    removed = False
    if room.live_since is not None:
        removed = livekit.remove_participant(room=room.livekit_name, identity=identity)
    ended = lobby.end_admissions(room=room, identity=identity, ban=ban)
    if participant is None and not removed and not ended:
        raise NotFound(NO_SUCH_PARTICIPANT)
    data: dict[str, Any] = {"identity": identity}
    if ban:
        data["banned"] = True
    if participant is not None:
        participant.left_at = timezone.now()
        participant.hand_raised_at = None
        participant.invited_at = None
        participant.save(update_fields=["left_at", "hand_raised_at", "invited_at", "updated_at"])
        data.update(name=participant.name, role=participant.role)
    events.emit_on_commit(
        "participant.removed", tenant_id=room.tenant_id, room_id=room.room_id, data=data
    )
    return participant


def _targets(room: Room, source: str) -> list[tuple[str, str]]:
    """(identity, track_sid) of unmuted `source` tracks of everyone but the hosts."""
    if room.live_since is None:
        return []
    return [
        (p["identity"], t["sid"])
        for p in livekit.list_participants(room=room.livekit_name)
        if p["attributes"].get("role") not in HOST_ROLES
        for t in p["tracks"]
        if t["source"] == source and not t["muted"]
    ]


def mute_all(*, room: Room) -> int:
    """Mute every microphone but the hosts'. People may unmute themselves afterwards
    (LiveKit never unmutes remotely). Returns how many tracks were muted."""
    require_control(room, "mute_all", "Muting everyone")
    return livekit.mute_published_tracks(
        room=room.livekit_name, tracks=_targets(room, livekit.MICROPHONE)
    )


def disable_video(*, room: Room) -> int:
    """Turn off every camera but the hosts'. Returns how many tracks were muted."""
    require_control(room, "disable_video", "Turning off everyone's video")
    return livekit.mute_published_tracks(
        room=room.livekit_name, tracks=_targets(room, livekit.CAMERA)
    )


def end_room(*, room: Room) -> Room:
    """End the room for everyone: `rooms.stop_room` (LiveKit room deleted, lobby closed)."""
    return room_services.stop_room(room=room)


def deactivate_room(*, room: Room) -> Room:
    """Deactivate the room for good: `rooms.deactivate_room` (a live session ends for
    everyone, lobby closed, no session may start again)."""
    return room_services.deactivate_room(room=room)


def start_room(*, room: Room) -> Room:
    """Open the room now (a host starting a scheduled room early): `rooms.start_room`."""
    return room_services.start_room(room=room)
