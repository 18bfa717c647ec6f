"""The dashboard's live channel: `/ws/dashboard` streams the current tenant's domain events
(rooms starting and ending, people joining and leaving, usage samples) to its pages.

Authenticated in `connect()` (a signed-in member of the session's tenant), one group per
tenant (`tenant.<id>`). Each socket also joins its membership's group
(`membership.<pk>`): removing the member or changing its role tells it after commit, through
the channel layer (any process), and the socket re-checks and closes (4403) when the
membership is gone. The membership is also re-checked before forwarding once the last check
is older than RECHECK_SECONDS, in case a notice was lost.
"""

from __future__ import annotations

import time
from typing import Any

from channels.db import database_sync_to_async

from accounts import services as account_services
from conferences import events
from parley.sockets import JsonSocket

from .views.base import SESSION_TENANT

RECHECK_SECONDS = 30
FORWARDED = ("event", "room_id", "at", "data")


@database_sync_to_async
def _membership(user: Any, tenant_public_id: str | None) -> tuple[int, int] | None:
    """(membership pk, tenant pk) of the session's current tenant, or None."""
    if user is None or not user.is_authenticated:
        return None
    memberships = account_services.memberships_of(user)
    if not memberships:
        return None
    chosen = account_services.pick_membership(memberships, tenant_public_id)
    return chosen.pk, chosen.tenant_id


@database_sync_to_async
def _still_member(membership_pk: int) -> bool:
    from accounts.models import Membership

    return Membership.objects.filter(pk=membership_pk).exists()


class DashboardConsumer(JsonSocket):
    group: str | None = None

    async def connect(self) -> None:
        session = self.scope.get("session")
        chosen = session.get(SESSION_TENANT) if session is not None else None
        found = await _membership(self.scope.get("user"), chosen)
        if found is None:
            await self.close(code=4403)
            return
        self.membership_pk, tenant_id = found
        self.checked = time.monotonic()
        self.group = events.tenant_group(tenant_id)
        self.member_group = events.membership_group(self.membership_pk)
        await self.channel_layer.group_add(self.member_group, self.channel_name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        if not await _still_member(self.membership_pk):  # removed while connecting
            await self.close(code=4403)
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_discard(self.member_group, self.channel_name)

    async def membership_changed(self, message: dict[str, Any]) -> None:
        """The membership was removed or its role changed: re-check now."""
        if not await _still_member(self.membership_pk):
            self.revoked = True
            await self.close(code=4403)
            return
        self.checked = time.monotonic()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The channel is one-way; a ping gets a pong so clients can test the line.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def parley_event(self, message: dict[str, Any]) -> None:
        if getattr(self, "revoked", False):
            return
        if time.monotonic() - self.checked > RECHECK_SECONDS:
            if not await _still_member(self.membership_pk):
                await self.close(code=4403)
                return
            self.checked = time.monotonic()
        await self.send_json({key: message.get(key) for key in FORWARDED})
