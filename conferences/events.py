"""Domain events, emitted after commit to the Channels groups of the tenant and the room."""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def membership_group(membership_pk: int) -> str:
    """The dashboard sockets of one membership: told when it is removed or its role changes,
    so they close at once (through the channel layer: whichever process holds them)."""
    return f"membership.{membership_pk}"


def room_group(room_id: str) -> str:
    return f"room.{room_id}"


def room_status_group(room_id: str) -> str:
    """Pages that only follow the room's lifecycle (opened, ended): every join page's status
    socket and every waiting guest. Kept apart from `room.<room_id>` so that a webinar's
    thousand audience pages do not each hear every hand raised."""
    return f"room-status.{room_id}"


def participant_group(room_id: str, identity: str) -> str:
    """One participant's own page(s) in a room (its stage socket): the stage events about
    that identity only. Identities may hold any character, so the group is named by a digest
    (group names allow ASCII letters, digits, '-', '_' and '.')."""
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"participant.{room_id}.{digest}"


# Stage events also go to the participant's own group, so its page learns of an invitation
# or a role change without every audience page hearing every event of the room.
PERSONAL_EVENTS = frozenset(
    {
        "participant.hand_raised",
        "participant.hand_lowered",
        "participant.invited",
        "participant.invite_declined",
        "participant.promoted",
        "participant.demoted",
        "participant.removed",
    }
)


def _message_and_groups(
    event: str, *, tenant_id: int, room_id: str, data: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The Channels message of `event` and the groups it goes to (see emit_on_commit)."""
    message = {
        "type": "parley.event",
        "event": event,
        "room_id": room_id,
        "at": timezone.now().isoformat(),
        "data": data,
    }
    groups = [tenant_group(tenant_id), room_group(room_id)]
    if event.startswith(("room.", "recording-", "hls-")):
        # Every page of the room hears it opening, ending, and being recorded.
        groups.append(room_status_group(room_id))
    identity = data.get("identity")
    if event in PERSONAL_EVENTS and isinstance(identity, str) and identity:
        groups.append(participant_group(room_id, identity))
    return message, groups


Sends = list[tuple[dict[str, Any], list[str]]]


def _send_on_commit(sends: Sends, *, in_background: bool = False) -> None:
    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return

        async def send_all() -> None:
            for message, groups in sends:
                for group in groups:
                    try:
                        await layer.group_send(group, message)
                    except Exception:  # one lost notification must not stop the others
                        logger.exception(
                            "Could not publish %s for room %s", message["event"], message["room_id"]
                        )

        try:
            # One event loop (and, on Redis, one connection) for all the groups.
            async_to_sync(send_all)()
        except Exception:  # the write already happened; a lost notification must not undo it
            logger.exception("Could not publish %d event(s)", len(sends))

    if in_background:
        transaction.on_commit(lambda: _publish_in_background(send))
    else:
        transaction.on_commit(send)


# Bulk events (a burst of starts) are published by one thread per process, in order, so that
# the caller's next batch does not wait for hundreds of group_send round trips.
_publisher: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_publisher_lock = threading.Lock()
_publisher_thread: threading.Thread | None = None


def _publish_loop() -> None:
    while True:
        _publisher.get()()  # each job logs its own failures


def _publish_in_background(send: Callable[[], None]) -> None:
    global _publisher_thread
    with _publisher_lock:
        if _publisher_thread is None or not _publisher_thread.is_alive():
            _publisher_thread = threading.Thread(
                target=_publish_loop, name="parley-events", daemon=True
            )
            _publisher_thread.start()
    _publisher.put(send)


def wait_published(timeout: float = 10.0) -> bool:
    """Wait until every bulk event handed to the publisher so far is published (tests)."""
    done = threading.Event()
    _publish_in_background(done.set)
    return done.wait(timeout)


def emit_on_commit(event: str, *, tenant_id: int, room_id: str, data: dict[str, Any]) -> None:
    """Publish `event` once the current transaction commits (at once outside one), to the
    tenant's and the room's groups; room lifecycle events also to the room's status group,
    and stage events to the participant's own group. Events with an outbound type are also
    written to the webhook outbox in the current transaction (conferences.outbox)."""
    _send_on_commit([_message_and_groups(event, tenant_id=tenant_id, room_id=room_id, data=data)])
    # The outbound-webhook outbox: written now, in the caller's transaction (see outbox.py).
    from . import outbox

    outbox.record(event, tenant_id=tenant_id, room_id=room_id, data=data)


@dataclass(frozen=True)
class Event:
    event: str
    tenant_id: int
    room_id: str
    data: dict[str, Any]


def emit_many_on_commit(items: list[Event]) -> None:
    """`emit_on_commit` for many events at once (a burst of scheduled starts), in order:
    after commit the process's publisher thread sends them all (the caller goes on at once),
    and the outbox looks up the tenants' endpoints once instead of once per event."""
    if not items:
        return
    _send_on_commit(
        [
            _message_and_groups(e.event, tenant_id=e.tenant_id, room_id=e.room_id, data=e.data)
            for e in items
        ],
        in_background=True,
    )
    from . import outbox

    outbox.record_many([(e.event, e.tenant_id, e.room_id, e.data) for e in items])


def lobby_group(entry_id: str) -> str:
    """One waiting guest's connection(s): decisions about that entry only."""
    return f"lobby.{entry_id}"


def notify_on_commit(group: str, message: dict[str, Any]) -> None:
    """Send `message` (a Channels message with a `type`) to one group once the current
    transaction commits. For direct notices that are not domain events (no webhooks)."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # the write already happened; a lost notification must not undo it
            logger.exception("Could not notify %s", group)

    transaction.on_commit(send)
