"""The JSON shape of each resource, written once: a TypedDict (or the dataclass a service
returns, for tokens), one `*_json` function that builds it, and (for the OpenAPI schema)
`schema(Shape)`, a serializer generated from the same declaration. HTTP responses,
websocket messages and the schema all use these, so page views and consumers never import
from `conferences.api`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import types
import typing
from typing import Any, NewType, TypedDict, Union, get_args, get_origin, get_type_hints

from django.utils import timezone
from rest_framework import serializers

from conferences import selectors
from conferences.models import Participant, Room, WaitingEntry
from conferences.services.rooms import IssuedToken

# An ISO 8601 UTC time with a Z ("2026-01-02T03:04:05Z"): a string on the wire.
Timestamp = NewType("Timestamp", str)


def format_datetime(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    return Timestamp(value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))


def _seconds_since(moment: dt.datetime, now: dt.datetime) -> int:
    return max(0, int((now - moment).total_seconds()))


# --- tokens -------------------------------------------------------------------------------------


# The token's shape is rooms.IssuedToken itself (its fields, expires_at as a Timestamp):
# `schema(IssuedToken)` documents it.
TokenJSON = IssuedToken


def token_json(issued: IssuedToken) -> dict[str, Any]:
    """A join token as every route hands it out."""
    fields = {f.name: getattr(issued, f.name) for f in dataclasses.fields(issued)}
    return {**fields, "expires_at": format_datetime(issued.expires_at)}


# --- the stage ----------------------------------------------------------------------------------


class _StageStateJSON(TypedDict):
    identity: str
    role: str
    mic_only: bool
    hand_raised: bool
    hand_raised_at: Timestamp | None
    invited: bool


def _stage_state(participant: Participant) -> _StageStateJSON:
    return {
        "identity": participant.identity,
        "role": participant.role,
        "mic_only": participant.mic_only,
        "hand_raised": participant.hand_raised_at is not None,
        "hand_raised_at": format_datetime(participant.hand_raised_at),
        "invited": participant.invited_at is not None,
    }


class StageParticipantJSON(_StageStateJSON):
    name: str
    present: bool


def stage_participant_json(participant: Participant) -> StageParticipantJSON:
    """A participant's stored role and stage state (v1 and host stage routes)."""
    return {
        **_stage_state(participant),
        "name": participant.name,
        "present": participant.left_at is None,
    }


class OwnStageJSON(_StageStateJSON):
    invite_mic_only: bool


def own_stage_json(participant: Participant) -> OwnStageJSON:
    """A guest's own stage state, as its page receives it (stage endpoints and socket)."""
    return {**_stage_state(participant), "invite_mic_only": participant.invite_mic_only}


class HandJSON(TypedDict):
    identity: str
    name: str
    position: int
    raised_at: Timestamp
    waiting_seconds: int


def hand_json(hand: selectors.Hand, now: dt.datetime) -> HandJSON:
    """One raised hand, with how long it has waited (v1 hand queue, host stage, socket)."""
    return {
        "identity": hand.identity,
        "name": hand.name,
        "position": hand.position,
        "raised_at": Timestamp(format_datetime(hand.raised_at) or ""),
        "waiting_seconds": _seconds_since(hand.raised_at, now),
    }


class HandQueueJSON(TypedDict):
    hands: list[HandJSON]


def hand_queue_json(room: Room) -> HandQueueJSON:
    now = timezone.now()
    return {"hands": [hand_json(h, now) for h in selectors.hand_queue(room=room)]}


class OnStageJSON(TypedDict):
    identity: str
    name: str
    role: str
    mic_only: bool
    invite_mic_only: bool


def on_stage_json(participant: Participant) -> OnStageJSON:
    return {
        "identity": participant.identity,
        "name": participant.name,
        "role": participant.role,
        "mic_only": participant.mic_only,
        "invite_mic_only": participant.invite_mic_only,
    }


class StageJSON(TypedDict):
    hands: list[HandJSON]
    hands_total: int
    speakers: list[OnStageJSON]
    invited: list[OnStageJSON]
    max_speakers: int | None
    server_time: Timestamp


def stage_json(room: Room) -> StageJSON:
    """The host's view of the stage (host API and host socket): raised hands first raised
    first with how long each has waited, speakers, and open invitations."""
    now = timezone.now()
    lineup = selectors.lineup(room=room)
    return {
        "hands": [hand_json(h, now) for h in lineup.hands],
        "hands_total": lineup.hands_total,
        "speakers": [on_stage_json(p) for p in lineup.speakers],
        "invited": [on_stage_json(p) for p in lineup.invited],
        "max_speakers": room.max_speakers,
        "server_time": Timestamp(format_datetime(now) or ""),
    }


# --- the waiting room ---------------------------------------------------------------------------


class WaitingEntryJSON(TypedDict):
    entry_id: str
    identity: str
    name: str
    email: str | None
    waiting_since: Timestamp
    waiting_seconds: int


def waiting_entry_json(entry: WaitingEntry, now: dt.datetime) -> WaitingEntryJSON:
    return {
        "entry_id": entry.entry_id,
        "identity": entry.identity,
        "name": entry.name,
        "email": entry.email or None,
        "waiting_since": Timestamp(format_datetime(entry.created_at) or ""),
        "waiting_seconds": _seconds_since(entry.created_at, now),
    }


class LobbyJSON(TypedDict):
    entries: list[WaitingEntryJSON]
    server_time: Timestamp


def lobby_json(queue: selectors.LobbyQueue) -> LobbyJSON:
    """The host's view of the queue (host API and host socket)."""
    now = timezone.now()
    return {
        "entries": [waiting_entry_json(e, now) for e in queue.entries],
        "server_time": Timestamp(format_datetime(now) or ""),
    }


# --- the schema, from the shapes ----------------------------------------------------------------

_SCALARS: dict[Any, type[serializers.Field]] = {
    str: serializers.CharField,
    int: serializers.IntegerField,
    bool: serializers.BooleanField,
    Timestamp: serializers.DateTimeField,
    dt.datetime: serializers.DateTimeField,
}


def _field(hint: Any, name: str) -> serializers.Field:
    nullable = False
    if get_origin(hint) in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        nullable = len(options) < len(get_args(hint))
        hint = options[0]
    if get_origin(hint) is list:
        (item,) = get_args(hint)
        if typing.is_typeddict(item):
            return schema(item)(many=True)
        return serializers.ListField(child=_field(item, name))
    if typing.is_typeddict(hint) or dataclasses.is_dataclass(hint):
        return schema(hint)()
    return _SCALARS[hint](allow_null=nullable) if nullable else _SCALARS[hint]()


@functools.cache
def schema(shape: type) -> type[serializers.Serializer]:
    """A read-only serializer class named after `shape` (a TypedDict above, or a dataclass
    such as IssuedToken), for `extend_schema(responses=...)`; the shape is the one place
    the fields are written."""
    fields = {n: _field(h, n) for n, h in get_type_hints(shape).items()}
    name = {"IssuedToken": "Token"}.get(shape.__name__, shape.__name__.removesuffix("JSON"))
    return type(f"{name}Serializer", (serializers.Serializer,), fields)
