"""The dashboard's cast: one tenant with an owner, an admin, a member and a viewer, and an
outsider who owns another tenant. Used by tests/test_dashboard_*.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from allauth.account.models import EmailAddress
from django.test import Client

from accounts.models import Membership, Tenant, User
from conferences.models import Room
from conferences.services import rooms as room_services
from tests.conftest import make_member

ROLES = ("owner", "admin", "member", "viewer", "outsider")
PASSWORD = "a-Long-pass-123"


def add_user(tenant: Tenant, email: str, role: str) -> User:
    user = User.objects.create_user(username=email.split("@")[0], email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


@dataclass
class Cast:
    tenant: Tenant
    other: Tenant
    users: dict[str, User]
    room: Room
    other_room: Room
    clients: dict[str, Client] = field(default_factory=dict)

    def client(self, role: str) -> Client:
        if role not in self.clients:
            client = Client()
            client.force_login(self.users[role])
            self.clients[role] = client
        return self.clients[role]


@pytest.fixture
def cast(db, livekit) -> Cast:
    acme = make_member("Acme")
    other = make_member("Other Corp")
    users = {
        "owner": acme.user,
        "admin": add_user(acme.tenant, "ada@acme.test", "admin"),
        "member": add_user(acme.tenant, "mel@acme.test", "member"),
        "viewer": add_user(acme.tenant, "vic@acme.test", "viewer"),
        "outsider": other.user,
    }
    room = room_services.create_room(tenant=acme.tenant, data={"name": "Acme weekly"})
    other_room = room_services.create_room(tenant=other.tenant, data={"name": "Their room"})
    return Cast(tenant=acme.tenant, other=other.tenant, users=users, room=room,
                other_room=other_room)  # fmt: skip


def room_post_data(**overrides: str) -> dict[str, str]:
    """A complete, valid room form as the browser sends it (checkboxes: present when on)."""
    data = {
        "name": "Design review",
        "room_type": "temporary",
        "media_type": "both",
        "max_participants": "",
        "access_type": "public",
        "video_quality": "high",
        "timezone": "UTC",
        "chat_enabled": "on",
        "screen_sharing_enabled": "on",
        "host_controls": ["mute_all", "disable_video", "kick_participants"],
        "auto_close_type": "session-ends",
        "auto_close_duration": "480",
        "join_before_minutes": "10",
    }
    data.update(overrides)
    return data
