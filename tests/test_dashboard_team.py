"""API keys (shown once), members and invitations (roles and their rules), workspaces (a
user in several, switching, settings)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts import services as account_services
from accounts.models import ApiKey, Invitation, Membership, Tenant, User
from tests.conftest import Api
from tests.dashboard_cast import PASSWORD, Cast, add_user


def membership(cast: Cast, role: str) -> Membership:
    return Membership.objects.get(user=cast.users[role], tenant=cast.tenant)


# --- API keys -------------------------------------------------------------------------------


def test_a_new_key_is_shown_once_and_works(cast: Cast):
    client = cast.client("admin")
    response = client.post("/dashboard/api-keys/", {"name": "Production backend"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = re.search(
        r'id="new-key" type="text" readonly value="(pk_[^"]+)"', response.content.decode()
    ).group(1)
    assert Api(secret).get("/api/v1/rooms").status_code == 200
    listing = client.get("/dashboard/api-keys/").content.decode()
    assert "Production backend" in listing and secret not in listing
    key = ApiKey.objects.get(tenant=cast.tenant, name="Production backend")
    assert key.last_used_at is not None and "ago" in listing


def test_key_name_is_required(cast: Cast):
    response = cast.client("owner").post("/dashboard/api-keys/", {"name": "  "})
    assert response.status_code == 400 and "1-100 characters" in response.content.decode()


def test_rename_and_revoke_with_confirmation(cast: Cast):
    issued = account_services.create_api_key(tenant=cast.tenant, name="old")
    prefix = issued.api_key.prefix
    client = cast.client("admin")
    client.post(f"/dashboard/api-keys/{prefix}/rename/", {"name": "new name"})
    assert ApiKey.objects.get(prefix=prefix).name == "new name"
    assert client.post(f"/dashboard/api-keys/{prefix}/revoke/").status_code == 200  # asks
    assert ApiKey.objects.get(prefix=prefix).revoked_at is None
    client.post(f"/dashboard/api-keys/{prefix}/revoke/", {"confirm": "yes"})
    assert ApiKey.objects.get(prefix=prefix).revoked_at is not None
    assert Api(issued.secret).get("/api/v1/rooms").status_code == 401


def test_another_tenants_key_is_404(cast: Cast):
    theirs = account_services.create_api_key(tenant=cast.other, name="theirs").api_key
    client = cast.client("owner")
    assert (
        client.post(f"/dashboard/api-keys/{theirs.prefix}/revoke/", {"confirm": "yes"}).status_code
        == 404
    )
    assert ApiKey.objects.get(pk=theirs.pk).revoked_at is None


# --- members and invitations -----------------------------------------------------------------


def _invite(client: Client, email: str, role: str = "member"):
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/dashboard/members/", {"email": email, "role": role})


def _link(message) -> str:
    return re.search(r"https?://testserver(/dashboard/invitations/[^/\s]+/)", message.body).group(1)


def test_invite_accept_flow_for_an_existing_user(cast: Cast):
    newcomer = add_user(cast.other, "newcomer@x.test", "member")
    response = _invite(cast.client("admin"), "Newcomer@X.test", "viewer")
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["newcomer@x.test"]
    assert "Join Acme on Parley" in mail.outbox[-1].subject
    link = _link(mail.outbox[-1])
    listing = cast.client("admin").get("/dashboard/members/").content.decode()
    assert "newcomer@x.test" in listing
    # Signed out: sign in first, then back to the link.
    signed_out = Client().get(link)
    assert signed_out.status_code == 302 and "/accounts/login/" in signed_out["Location"]
    client = Client()
    client.force_login(newcomer)
    assert b"Join Acme" in client.get(link).content
    assert client.post(link).status_code == 302
    assert Membership.objects.get(user=newcomer, tenant=cast.tenant).role == "viewer"
    # The link is spent.
    assert client.get(link).status_code == 404


def test_an_invitation_is_for_its_address_only(cast: Cast):
    _invite(cast.client("owner"), "someone@x.test")
    link = _link(mail.outbox[-1])
    response = cast.client("outsider").post(link)
    assert response.status_code == 403 and b"someone@x.test" in response.content
    assert not Membership.objects.filter(user=cast.users["outsider"], tenant=cast.tenant).exists()


def test_signup_through_an_invitation(cast: Cast):
    _invite(cast.client("owner"), "fresh@x.test", "member")
    link = _link(mail.outbox[-1])
    client = Client()
    response = client.post("/accounts/signup/", {"email": "fresh@x.test", "password1": PASSWORD,
                                                  "password2": PASSWORD, "next": link})  # fmt: skip
    assert response.status_code == 302
    confirm = re.search(r"https?://\S+/accounts/confirm-email/\S+", mail.outbox[-1].body).group(0)
    client.post("/" + confirm.split("/", 3)[3])
    client.post("/accounts/login/", {"login": "fresh@x.test", "password": PASSWORD})
    assert client.post(link).status_code == 302
    user = User.objects.get(email="fresh@x.test")
    assert Membership.objects.get(user=user, tenant=cast.tenant).role == "member"
    # Their own workspace from sign-up, and Acme: they can switch.
    assert Membership.objects.filter(user=user).count() == 2


@pytest.mark.parametrize(
    "email, role, error",
    [("not-an-email", "member", "valid email"), ("ada@acme.test", "member", "already a member"),
     ("x@y.test", "superuser", "Select a valid choice")],
)  # fmt: skip
def test_invite_errors_keep_input(cast: Cast, email, role, error):
    response = cast.client("owner").post("/dashboard/members/", {"email": email, "role": role})
    assert response.status_code == 400
    assert error in response.content.decode() and f'value="{email}"' in response.content.decode()


def test_admin_cannot_invite_or_touch_owners(cast: Cast):
    admin = cast.client("admin")
    assert (
        admin.post("/dashboard/members/", {"email": "boss@x.test", "role": "owner"}).status_code
        == 403
    )
    owner_pk = membership(cast, "owner").pk
    assert admin.post(f"/dashboard/members/{owner_pk}/role/", {"role": "viewer"}).status_code == 403
    assert (
        admin.post(f"/dashboard/members/{owner_pk}/remove/", {"confirm": "yes"}).status_code == 403
    )
    assert membership(cast, "owner").role == "owner"


def test_role_changes_and_the_last_owner(cast: Cast):
    owner = cast.client("owner")
    member_pk = membership(cast, "member").pk
    owner.post(f"/dashboard/members/{member_pk}/role/", {"role": "admin"})
    assert Membership.objects.get(pk=member_pk).role == "admin"
    # The only owner cannot step down or leave.
    own_pk = membership(cast, "owner").pk
    page = owner.post(f"/dashboard/members/{own_pk}/role/", {"role": "admin"}, follow=True)
    assert "at least one owner" in page.content.decode()
    left = owner.post(f"/dashboard/members/{own_pk}/remove/", {"confirm": "yes"}, follow=True)
    assert "at least one owner" in left.content.decode()
    assert membership(cast, "owner").role == "owner"
    # With a second owner, the first may step down.
    owner.post(f"/dashboard/members/{member_pk}/role/", {"role": "owner"})
    owner.post(f"/dashboard/members/{own_pk}/role/", {"role": "member"})
    assert membership(cast, "owner").role == "member"


def test_members_may_leave_and_then_have_no_access(cast: Cast):
    client = cast.client("viewer")
    own = membership(cast, "viewer").pk
    response = client.post(f"/dashboard/members/{own}/remove/", {"confirm": "yes"})
    assert response.status_code == 302
    # No workspace left: they are asked to create one.
    assert client.get("/dashboard/").status_code == 302
    assert client.get(f"/dashboard/rooms/{cast.room.room_id}/").status_code == 302
    welcome = client.post("/dashboard/welcome/", {"name": "Vic's"})
    assert welcome.status_code == 302
    assert b"Vic&#x27;s" in client.get("/dashboard/").content


def test_revoking_an_invitation_stops_its_link(cast: Cast):
    _invite(cast.client("owner"), "late@x.test")
    link = _link(mail.outbox[-1])
    invitation = Invitation.objects.get(email="late@x.test")
    cast.client("admin").post(
        f"/dashboard/invitations/{invitation.public_id}/revoke/", {"confirm": "yes"}
    )
    assert Client().get(link).status_code == 404


# --- workspaces -------------------------------------------------------------------------------


def test_workspace_settings(cast: Cast):
    client = cast.client("admin")
    response = client.post("/dashboard/settings/", {"name": "Acme Inc", "timezone": "Europe/Paris"})
    assert response.status_code == 302
    tenant = Tenant.objects.get(pk=cast.tenant.pk)
    assert (tenant.name, tenant.timezone) == ("Acme Inc", "Europe/Paris")
    bad = client.post("/dashboard/settings/", {"name": "", "timezone": "Nowhere/City"})
    assert bad.status_code == 400 and "1-100 characters" in bad.content.decode()


def test_create_another_workspace_and_switch(cast: Cast):
    client = cast.client("member")
    response = client.post("/dashboard/workspaces/new/", {"name": "Side project"})
    assert response.status_code == 302
    assert b"Side project" in client.get("/dashboard/").content
    side = Tenant.objects.get(name="Side project")
    assert Membership.objects.get(tenant=side, user=cast.users["member"]).role == "owner"
    client.post("/dashboard/switch/", {"tenant": cast.tenant.public_id})
    page = client.get("/dashboard/rooms/").content.decode()
    assert "Acme weekly" in page and "selected>Acme</option>" in page
