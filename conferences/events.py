"""Domain events, emitted after commit to the Channels groups of the tenant and the room."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def room_group(room_id: str) -> str:
    return f"room.{room_id}"


def emit_on_commit(event: str, *, tenant_id: int, room_id: str, data: dict[str, Any]) -> None:
    """Publish `event` once the current transaction commits (at once outside one)."""
    message = {
        "type": "parley.event",
        "event": event,
        "room_id": room_id,
        "at": timezone.now().isoformat(),
        "data": data,
    }

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            for group in (tenant_group(tenant_id), room_group(room_id)):
                async_to_sync(layer.group_send)(group, message)
        except Exception:  # the write already happened; a lost notification must not undo it
            logger.exception("Could not publish %s for room %s", event, room_id)

    transaction.on_commit(send)
