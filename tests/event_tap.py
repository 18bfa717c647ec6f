"""Domain events as the Channels layer delivers them to one group (tests)."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from conferences import events


class EventTap:
    """Listens on a group (e.g. `events.room_group(room_id)`) from its creation on."""

    def __init__(self, group: str) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(group, self.channel)

    def names(self) -> list[str]:
        """The event names received so far, sorted (bulk events published first)."""
        assert events.wait_published()

        async def drain() -> list[str]:
            names = []
            while True:
                try:
                    message = await asyncio.wait_for(self.layer.receive(self.channel), 0.2)
                except TimeoutError:
                    return sorted(names)
                names.append(message["event"])

        return async_to_sync(drain)()
