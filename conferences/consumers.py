"""Room live channels (websockets) of the join page.

* `RoomStatusConsumer` (`/ws/rooms/<room_id>/status`): anyone with the link hears the room
  open and end, so a scheduled room's page turns into the pre-join by itself.
* `LobbyConsumer` (`/ws/rooms/<room_id>/lobby/<entry_id>`): a waiting guest's page. Only the
  session that created the entry may listen; when a host admits it, the token is minted
  here, for this connection, and sent down it (it never travels through the channel layer).
  Closing the page takes the entry out of the queue.
* `HostConsumer` (`/ws/rooms/<room_id>/host`): a host's live view of the queue, and in a
  webinar room of the stage: raised hands first raised first, speakers, open invitations,
  and a notice when an invited guest declines. The host may also act over it
  (`{"type": "action", "action": "remove" | "mute_all" | ...}`): the same services as the
  host API, with the same rules; the answer is `{"type": "done" | "error", ...}`.
* `StageConsumer` (`/ws/rooms/<room_id>/stage`): a guest's own stage state in a webinar
  room (its hand, an invitation to speak, its role), proven by the LiveKit join token its
  page holds, sent as the first message (`{"type": "auth", "token"}`), never in the URL.

Every consumer authenticates in `connect()` and re-checks on every message it acts on;
groups are per room (`room.<room_id>`, domain events, for hosts), per room for lifecycle
only (`room-status.<room_id>`: opened or ended, for every guest page), per entry
(`lobby.<entry_id>`) and per participant (`participant.<room_id>.<digest>`, that
identity's stage events).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from conferences import access, events, selectors, sessions, shapes
from conferences.models import Room, WaitingEntry
from conferences.services import lobby, moderation, stage
from conferences.services import recordings as recording_services
from conferences.services.errors import InvalidInput, ServiceError
from conferences.shapes import format_datetime
from parley.clientip import scope_client_ip
from parley.sockets import JsonSocket

LOBBY_EVENTS = frozenset(
    {
        "participant.waiting",
        "participant.admitted",
        "participant.rejected",
        "participant.left_lobby",
    }
)
ROOM_EVENTS = frozenset({"room.started", "room.ended", "room.deleted"})
# Events that change what a host's stage panel shows.
STAGE_EVENTS = events.PERSONAL_EVENTS | {"participant.joined", "participant.left"}

CLOSE_NOT_FOUND = 4404
CLOSE_FORBIDDEN = 4403
CLOSE_UNAUTHENTICATED = 4401


def _room_status(room_id: str) -> dict[str, Any] | None:
    """The room's phase from the database. No LiveKit call: a room starting with hundreds of
    pages open must not fan out into as many calls (joining checks "full" authoritatively)."""
    room = access.room_by_public_id(room_id)
    if room is None:
        return None
    phase = selectors.room_phase(room)
    starts_at = selectors.next_start(room) if phase == "scheduled" else None
    return {
        "type": "room",
        "status": phase,
        "starts_at": format_datetime(starts_at),
        # What every participant must be told: a recording or a live stream is running.
        **recording_services.indicator(room),
    }


class RoomStatusConsumer(JsonSocket):
    async def connect(self) -> None:
        self.room_id = self.scope["url_route"]["kwargs"]["room_id"]
        status = await database_sync_to_async(_room_status)(self.room_id)
        if status is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = events.room_status_group(self.room_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(status)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # {"type": "refresh"}: the page's clock says the room should be open by now.
        await self._send_status()

    async def parley_event(self, message: dict[str, Any]) -> None:
        event = message.get("event") or ""
        if event in ROOM_EVENTS or event.startswith(("recording-", "hls-")):
            await self._send_status()

    async def _send_status(self) -> None:
        status = await database_sync_to_async(_room_status)(self.room_id)
        if status is None:
            await self.send_json({"type": "room", "status": "ended"})
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.send_json(status)


def _entry_state(room_id: str, entry_id: str, client: str) -> dict[str, Any]:
    """What a waiting guest's page should do now; mints its token once it is admitted (for
    the address that asked, `client`)."""
    entry = selectors.lobby_entry(room_id=room_id, entry_id=entry_id)
    if entry is None:
        return {"type": "gone"}
    if entry.status == WaitingEntry.Status.WAITING:
        return {"type": "waiting"}
    if entry.status in (
        WaitingEntry.Status.REJECTED,
        WaitingEntry.Status.REMOVED,
        WaitingEntry.Status.BANNED,
    ):
        return {"type": "rejected", "message": entry.reason or "The host did not let you in"}
    if entry.status == WaitingEntry.Status.LEFT:
        ended = entry.room.status == Room.Status.COMPLETED
        return {"type": "ended"} if ended else {"type": "gone"}
    try:
        issued = lobby.token_for_entry(room_id=room_id, entry_id=entry_id, client=client)
    except ServiceError as exc:
        return {"type": "error", "code": exc.code, "message": exc.message}
    return {"type": "admitted", **shapes.token_json(issued)}


class LobbyConsumer(JsonSocket):
    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        self.room_id, self.entry_id = kwargs["room_id"], kwargs["entry_id"]
        session = self.scope.get("session")
        owned = session is not None and await database_sync_to_async(sessions.owns_entry)(
            session, self.room_id, self.entry_id
        )
        if not owned:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.groups_joined = [
            events.lobby_group(self.entry_id),
            events.room_status_group(self.room_id),
        ]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.done = False
        await database_sync_to_async(lobby.lobby_socket_connected)(entry_id=self.entry_id)
        await self._deliver()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if hasattr(self, "done") and not self.done:
            # The page went away while waiting: leave the queue (no-op once decided).
            await database_sync_to_async(lobby.leave_lobby)(
                room_id=self.room_id, entry_id=self.entry_id
            )

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self._deliver()

    async def lobby_decided(self, message: dict[str, Any]) -> None:
        if message.get("entry_id") == self.entry_id:
            await self._deliver()

    async def parley_event(self, message: dict[str, Any]) -> None:
        if message.get("event") in ROOM_EVENTS:
            await self._deliver(room_event=message["event"])

    async def _deliver(self, room_event: str | None = None) -> None:
        if self.done:
            return
        client = access.client_key(scope_client_ip(self.scope))
        state = await database_sync_to_async(_entry_state)(self.room_id, self.entry_id, client)
        if state["type"] == "waiting" and room_event in ("room.ended", "room.deleted"):
            await database_sync_to_async(lobby.leave_lobby)(
                room_id=self.room_id, entry_id=self.entry_id
            )
            state = {"type": "ended"}
        if state["type"] != "waiting":
            self.done = True
        await self.send_json(state)


lobby_services = lobby


def _host_room(session: Any, user: Any, room_id: str) -> Room | None:
    """The room if this session is (still) its host: host link or a member who may act."""
    visitor = sessions.visitor_for(session, user, room_id)
    return access.room_for_host_visitor(room_id=room_id, visitor=visitor)


def _host_snapshot(
    session: Any, user: Any, room_id: str, *, lobby: bool = True, stage: bool = True
) -> list[dict[str, Any]] | None:
    """The queue (and, in a webinar room, the stage) if this session is (still) the room's
    host; None otherwise."""
    room = _host_room(session, user, room_id)
    if room is None:
        return None
    messages: list[dict[str, Any]] = []
    if lobby:
        queue = shapes.lobby_json(lobby_services.queue_for_host(room=room))
        messages.append({"type": "lobby", "room_status": selectors.room_phase(room), **queue})
    if stage and room.allow_webinar_mode:
        messages.append({"type": "stage", **shapes.stage_json(room)})
    return messages


def _mic_only(content: dict[str, Any]) -> bool:
    value = content.get("mic_only", False)
    if not isinstance(value, bool):
        raise InvalidInput("'mic_only' must be true or false", field="mic_only")
    return value


def _identity(content: dict[str, Any]) -> str:
    value = content.get("identity")
    if not isinstance(value, str) or not value:
        raise InvalidInput("Send the participant's 'identity'", field="identity")
    return value


def _act(room: Room, action: object, content: dict[str, Any]) -> dict[str, Any]:
    """One host action, through the same service every other route calls."""
    if action == "remove":
        identity = _identity(content)
        ban = content.get("ban", False)
        if not isinstance(ban, bool):
            raise InvalidInput("'ban' must be true or false", field="ban")
        moderation.remove_participant(room=room, identity=identity, ban=ban)
        return {"removed": identity, "banned": ban}
    if action == "mute_all":
        return {"muted": moderation.mute_all(room=room)}
    if action == "disable_video":
        return {"muted": moderation.disable_video(room=room)}
    if action == "end":
        return {"status": moderation.end_room(room=room).status}
    if action == "start":
        return {"status": moderation.start_room(room=room).status}
    if action == "lower_all_hands":
        return {"lowered": stage.lower_all_hands(room=room)}
    if action == "invite":
        target = stage.invite(room=room, identity=_identity(content), mic_only=_mic_only(content))
    elif action == "promote":
        target = stage.promote(room=room, identity=_identity(content), mic_only=_mic_only(content))
    elif action == "demote":
        target = stage.demote(room=room, identity=_identity(content))
    else:
        raise InvalidInput(f"Unknown action; use one of: {', '.join(HOST_ACTIONS)}", field="action")
    return {"participant": shapes.stage_participant_json(target)}


HOST_ACTIONS = ("remove", "mute_all", "disable_video", "end", "start", "lower_all_hands",
                "invite", "promote", "demote")  # fmt: skip


def _host_action(
    session: Any, user: Any, room_id: str, content: dict[str, Any]
) -> dict[str, Any] | None:
    """`{"type": "action", "action", "identity"?, "mic_only"?, "ref"?}` from a host page:
    the answer to send back, or None when this session is no longer the room's host."""
    room = _host_room(session, user, room_id)
    if room is None:
        return None
    action = content.get("action")
    reply: dict[str, Any] = {"action": action, "ref": content.get("ref")}
    try:
        result = _act(room, action, content)
    except ServiceError as exc:
        return {"type": "error", **reply, "code": exc.code, "message": exc.message,
                "field": exc.field}  # fmt: skip
    return {"type": "done", **reply, **result}


class HostConsumer(JsonSocket):
    async def connect(self) -> None:
        self.room_id = self.scope["url_route"]["kwargs"]["room_id"]
        snapshot = await self._snapshot()
        if snapshot is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Stage updates only for webinar rooms (a reconnect picks up a changed setting).
        self.stage = any(m["type"] == "stage" for m in snapshot)
        self.group = events.room_group(self.room_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        for message in snapshot:
            await self.send_json(message)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "action":
            session = self.scope.get("session")
            reply = None
            if session is not None:
                reply = await database_sync_to_async(_host_action)(
                    session, self.scope.get("user"), self.room_id, content
                )
            if reply is None:
                await self.close(code=CLOSE_FORBIDDEN)
                return
            await self.send_json(reply)
            return
        await self._refresh(lobby=True, stage=self.stage)

    async def host_revoked(self, message: dict[str, Any]) -> None:
        # The host link was rotated: a session it made a host closes (re-checked, so a
        # member's socket stays open).
        await self._refresh(lobby=True, stage=self.stage)

    async def parley_event(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        lobby = event in LOBBY_EVENTS | ROOM_EVENTS
        stage = self.stage and event in STAGE_EVENTS
        if not (lobby or stage):
            return
        notice = None
        if stage and event == "participant.invite_declined":
            data = message.get("data") or {}
            notice = {
                "type": "stage.declined",
                "identity": data.get("identity"),
                "name": data.get("name"),
            }
        await self._refresh(lobby=lobby, stage=stage, notice=notice)

    async def _snapshot(
        self, *, lobby: bool = True, stage: bool = True
    ) -> list[dict[str, Any]] | None:
        session = self.scope.get("session")
        if session is None:
            return None
        return await database_sync_to_async(_host_snapshot)(
            session, self.scope.get("user"), self.room_id, lobby=lobby, stage=stage
        )

    async def _refresh(
        self, *, lobby: bool, stage: bool, notice: dict[str, Any] | None = None
    ) -> None:
        # Re-checks that this session is still the host.
        snapshot = await self._snapshot(lobby=lobby, stage=stage)
        if snapshot is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if notice is not None:
            await self.send_json(notice)
        for message in snapshot:
            await self.send_json(message)


def _first_stage_state(room_id: str, livekit_room: str, identity: str) -> dict[str, Any] | None:
    """A guest's stage state when its socket authenticates, if its token is for this room
    and it is in the room now: one thread hop, one query (selectors.present_guest)."""
    participant = selectors.present_guest(
        room_id=room_id, livekit_room=livekit_room, identity=identity
    )
    return None if participant is None else dict(shapes.own_stage_json(participant))


def _own_state(room_id: str, identity: str) -> dict[str, Any] | None:
    participant = selectors.own_stage_state(room_id=room_id, identity=identity)
    return None if participant is None else dict(shapes.own_stage_json(participant))


class StageConsumer(JsonSocket):
    """A guest page's stage socket. It authenticates with its first message, `{"type":
    "auth", "token": <the page's LiveKit join token>}`, within STAGE_AUTH_SECONDS (else it
    is closed, 4401); a token in the URL is refused at the handshake (URLs end up in access
    logs). Every later message (the page's refresh, an event about this identity) re-reads
    its state, and the socket closes once the identity is no longer in the room."""

    identity: str | None = None

    async def connect(self) -> None:
        self.room_id = self.scope["url_route"]["kwargs"]["room_id"]
        if parse_qs(self.scope.get("query_string", b"").decode("latin1")):
            await self.close(code=CLOSE_FORBIDDEN)  # ?token=...: no credential in a URL
            return
        await self.accept()
        self.deadline = asyncio.ensure_future(self._auth_deadline())

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(float(getattr(settings, "STAGE_AUTH_SECONDS", 10)))
        if self.identity is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _authenticate(self, content: dict[str, Any]) -> None:
        token = content.get("token")
        if content.get("type") != "auth" or not isinstance(token, str) or not token:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        try:
            identity, livekit_room = access.guest_token_claims(token)  # a signature, no I/O
        except ServiceError:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Join the identity's group before reading its state, so that no change made in
        # between goes unheard (its event is handled once this returns).
        self.group = events.participant_group(self.room_id, identity)
        await self.channel_layer.group_add(self.group, self.channel_name)
        state = await database_sync_to_async(_first_stage_state)(
            self.room_id, livekit_room, identity
        )
        if state is None:  # another room's token, or not (or no longer) in the room
            self.gone = True
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.identity = identity
        self.deadline.cancel()
        await self.send_json({"type": "stage", "event": None, **state})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "deadline"):
            self.deadline.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.identity is None:
            await self._authenticate(content if isinstance(content, dict) else {})
            return
        await self._deliver(None)  # {"type": "refresh"}

    async def parley_event(self, message: dict[str, Any]) -> None:
        # The group is this identity's own: every event in it is about this guest.
        await self._deliver(message.get("event"))

    async def _deliver(self, event: str | None) -> None:
        if getattr(self, "gone", False) or self.identity is None:
            return
        state = await database_sync_to_async(_own_state)(self.room_id, self.identity)
        if state is None:
            self.gone = True
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.send_json({"type": "stage", "event": event, **state})
