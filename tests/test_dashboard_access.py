"""Every dashboard page and action for the whole cast: owner, admin, member, viewer (reads
only: 403 on writes) and an outsider from another tenant (404 on this tenant's objects, and
never a sight of its data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts import services as account_services
from accounts.models import ApiKey, Invitation, Membership
from branding.models import CustomDomain
from conferences.models import Room
from tests.dashboard_cast import ROLES, Cast, room_post_data

# --- pages: everyone of the tenant reads them -------------------------------------------------

PAGES = [
    "/dashboard/",
    "/dashboard/live",
    "/dashboard/rooms/",
    "/dashboard/rooms/?q=weekly&status=active&type=temporary&sort=name&order=asc",
    "/dashboard/rooms/new/",
    "/dashboard/rooms/new/?preset=webinar",
    "/dashboard/schedule/",
    "/dashboard/schedule/?view=week",
    "/dashboard/api-keys/",
    "/dashboard/members/",
    "/dashboard/usage/",
    "/dashboard/branding/",
    "/dashboard/settings/",
]
ROOM_PAGES = [
    "/dashboard/rooms/{room}/",
    "/dashboard/rooms/{room}/edit/",
    "/dashboard/rooms/{room}/participants/",
]


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_everyone_signed_in(cast: Cast, role: str):
    client = cast.client(role)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, (role, path, response.status_code)
        assert "Server-Timing" in response
        if role == "outsider":  # their own tenant: nothing of Acme's
            assert b"Acme" not in response.content, path


@pytest.mark.parametrize("role", ROLES)
def test_room_pages_are_the_tenants_only(cast: Cast, role: str):
    client = cast.client(role)
    for template in ROOM_PAGES:
        response = client.get(template.format(room=cast.room.room_id))
        expected = 404 if role == "outsider" else 200
        assert response.status_code == expected, (role, template, response.status_code)
        # Nobody reaches the outsider tenant's room through Acme's dashboard.
        if role != "outsider":
            assert client.get(template.format(room=cast.other_room.room_id)).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(cast: Cast):
    client = Client()
    for path in [*PAGES, ROOM_PAGES[0].format(room=cast.room.room_id)]:
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], path
    response = client.post(f"/dashboard/rooms/{cast.room.room_id}/start/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_viewer_pages_offer_no_write_controls(cast: Cast):
    client = cast.client("viewer")
    detail = client.get(f"/dashboard/rooms/{cast.room.room_id}/").content.decode()
    assert "Start room" not in detail and "Delete room" not in detail
    assert "Create key" not in client.get("/dashboard/api-keys/").content.decode()
    assert "Send invitation" not in client.get("/dashboard/members/").content.decode()


# --- actions: the write matrix ---------------------------------------------------------------

Setup = Callable[[Cast], dict[str, Any]]


def _room(cast: Cast) -> dict[str, Any]:
    return {"room": cast.room.room_id}


def _live_room(cast: Cast) -> dict[str, Any]:
    from conferences.services import rooms as room_services

    room_services.start_room(room=cast.room)
    return {"room": cast.room.room_id}


def _key(cast: Cast) -> dict[str, Any]:
    key = account_services.create_api_key(tenant=cast.tenant, name="ci")
    return {"key": key.api_key.prefix}


def _member(cast: Cast) -> dict[str, Any]:
    # The admin's membership: below admin nobody may touch it (a member leaving would be
    # their own business).
    membership = Membership.objects.get(user=cast.users["admin"], tenant=cast.tenant)
    return {"member": membership.pk}


def _invitation(cast: Cast) -> dict[str, Any]:
    owner = Membership.objects.get(user=cast.users["owner"], tenant=cast.tenant)
    issued = account_services.invite_member(
        actor=owner, tenant=cast.tenant, email="new@acme.test", role="member", base_url="http://x"
    )
    return {"inv": issued.invitation.public_id}


def _domain(cast: Cast) -> dict[str, Any]:
    CustomDomain.objects.create(tenant=cast.tenant, domain="meet.acme.test")
    return {}


def _nothing(cast: Cast) -> dict[str, Any]:
    return {}


# (name, path template, setup, POST data, lowest role allowed, whether the target is an
# object of the tenant (the outsider gets 404) rather than the caller's own tenant)
ACTIONS: list[tuple[str, str, Setup, dict[str, Any], str, bool]] = [
    ("room-create", "/dashboard/rooms/new/", _nothing, room_post_data(), "member", False),
    ("room-edit", "/dashboard/rooms/{room}/edit/", _room, room_post_data(name="Renamed"),
     "member", True),
    ("room-start", "/dashboard/rooms/{room}/start/", _room, {}, "member", True),
    ("room-stop", "/dashboard/rooms/{room}/stop/", _live_room, {"confirm": "yes"}, "member",
     True),
    ("room-delete", "/dashboard/rooms/{room}/delete/", _room, {"confirm": "yes"}, "member",
     True),
    ("room-mute", "/dashboard/rooms/{room}/mute/", _live_room, {"kind": "audio"}, "member",
     True),
    ("participant-remove", "/dashboard/rooms/{room}/participants/guest-1/remove/", _live_room,
     {"confirm": "yes"}, "member", True),
    ("participant-stage", "/dashboard/rooms/{room}/participants/guest-1/stage/", _live_room,
     {"action": "promote"}, "member", True),
    ("key-create", "/dashboard/api-keys/", _nothing, {"name": "backend"}, "admin", False),
    ("key-rename", "/dashboard/api-keys/{key}/rename/", _key, {"name": "renamed"}, "admin", True),
    ("key-revoke", "/dashboard/api-keys/{key}/revoke/", _key, {"confirm": "yes"}, "admin", True),
    ("invite", "/dashboard/members/", _nothing, {"email": "x@y.test", "role": "member"},
     "admin", False),
    ("member-role", "/dashboard/members/{member}/role/", _member, {"role": "viewer"}, "admin",
     True),
    ("member-remove", "/dashboard/members/{member}/remove/", _member, {"confirm": "yes"},
     "admin", True),
    ("invitation-revoke", "/dashboard/invitations/{inv}/revoke/", _invitation,
     {"confirm": "yes"}, "admin", True),
    ("settings", "/dashboard/settings/", _nothing, {"name": "Acme Inc", "timezone": "UTC"},
     "admin", False),
    ("branding", "/dashboard/branding/", _nothing,
     {"product_name": "Acme Meet", "primary_color": "#1f45c4", "accent_color": "#14b8a6"},
     "admin", False),
    ("logo-remove", "/dashboard/branding/logo/", _nothing, {"confirm": "yes"}, "admin", False),
    ("domain-add", "/dashboard/branding/domain/", _nothing, {"domain": "meet.acme.test"},
     "admin", False),
    ("domain-remove", "/dashboard/branding/domain/remove/", _domain, {"confirm": "yes"},
     "admin", False),
]  # fmt: skip
RANK = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "name, template, setup, data, minimum, scoped", ACTIONS, ids=[a[0] for a in ACTIONS]
)
def test_action_matrix(cast: Cast, role, name, template, setup, data, minimum, scoped):
    path = template.format(**setup(cast))
    response = cast.client(role).post(path, data)
    if role == "outsider":
        # The outsider is an owner, but of another tenant: the tenant's objects are 404 to
        # them; tenant-wide actions act on their own tenant.
        expected = {404} if scoped else {302, 200}
    elif RANK[role] < RANK[minimum]:
        expected = {403}
    else:
        expected = {302, 200}  # done (a redirect), or a page saying why not (LiveKit state)
    assert response.status_code in expected, (name, role, response.status_code)
    if role == "outsider" or RANK.get(role, 0) < RANK[minimum]:
        _assert_untouched(cast, name)


def _assert_untouched(cast: Cast, name: str) -> None:
    """A refused write changed nothing of the tenant's."""
    room = Room.objects.filter(pk=cast.room.pk).first()
    assert room is not None and room.name == "Acme weekly"
    if name == "room-start":
        assert room.live_since is None
    if name == "room-stop":
        assert room.live_since is not None
    if name.startswith("key-"):
        assert not ApiKey.objects.filter(tenant=cast.tenant, revoked_at__isnull=False).exists()
        assert not ApiKey.objects.filter(tenant=cast.tenant, name__in=["renamed", "backend"])
    if name.startswith("member-"):
        target = Membership.objects.get(user=cast.users["admin"], tenant=cast.tenant)
        assert target.role == "admin"
    if name == "invite":
        assert not Invitation.objects.filter(tenant=cast.tenant).exists()
    cast.tenant.refresh_from_db()
    assert cast.tenant.name == "Acme"


@pytest.mark.parametrize("role", ["owner", "admin", "member", "viewer"])
def test_switching_to_a_tenant_of_ones_own(cast: Cast, role: str):
    """A user in two tenants switches between them; an unknown tenant is 404."""
    user = cast.users[role]
    Membership.objects.create(user=user, tenant=cast.other, role="viewer")
    client = cast.client(role)
    assert b"Acme" in client.get("/dashboard/").content
    response = client.post("/dashboard/switch/", {"tenant": cast.other.public_id})
    assert response.status_code == 302
    page = client.get("/dashboard/rooms/").content
    assert b"Their room" in page and b"Acme weekly" not in page
    # Acme's room is now another tenant's room for this session.
    assert client.get(f"/dashboard/rooms/{cast.room.room_id}/").status_code == 404
    assert client.post("/dashboard/switch/", {"tenant": "nope"}).status_code == 404


def test_outsider_cannot_switch_into_the_tenant(cast: Cast):
    client = cast.client("outsider")
    response = client.post("/dashboard/switch/", {"tenant": cast.tenant.public_id})
    assert response.status_code == 404
    assert b"Acme" not in client.get("/dashboard/").content


def test_a_refused_write_explains_itself(cast: Cast):
    response = cast.client("viewer").post(f"/dashboard/rooms/{cast.room.room_id}/start/")
    assert response.status_code == 403
    assert "Your role (viewer) cannot do this" in response.content.decode()
