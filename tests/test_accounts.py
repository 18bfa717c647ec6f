"""Tenants, sign-up, the create_tenant command, the demo seed and Django admin."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import ApiKey, Membership, Plan, Tenant, User
from tests.conftest import Api


def test_plans_carry_the_reference_limits(db):
    plans = {
        p.code: (p.requests_per_hour, p.max_concurrent_rooms, p.max_participants_per_room)
        for p in Plan.objects.all()
    }
    assert plans == {
        "free": (100, 5, 10),
        "starter": (1000, 25, 50),
        "pro": (10000, 100, 100),
        "enterprise": (None, None, 1000),
    }


def test_create_tenant_prints_one_json_line_that_works(db):
    out = StringIO()
    call_command(
        "create_tenant",
        "Globex",
        "--plan",
        "starter",
        "--admin-email",
        "Ops@Globex.test",
        "--json",
        stdout=out,
    )
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert {"tenant", "api_key", "admin_email", "admin_password"} <= set(data)
    assert data["tenant"] == "Globex" and data["admin_email"] == "ops@globex.test"
    tenant = Tenant.objects.get(name="Globex")
    assert tenant.plan.code == "starter"
    user = User.objects.get(email="ops@globex.test")
    assert user.check_password(data["admin_password"])
    assert Membership.objects.get(user=user, tenant=tenant).role == "owner"
    assert ApiKey.objects.get(tenant=tenant).key_hash != data["api_key"]
    assert Api(data["api_key"]).get("/api/v1/rooms").status_code == 200
    client = Client()
    assert client.login(username=user.username, password=data["admin_password"])


def test_create_tenant_refuses_a_taken_email(db):
    call_command("create_tenant", "One", "--admin-email", "a@b.test", "--json", stdout=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_tenant", "Two", "--admin-email", "A@b.test", stdout=StringIO())


def test_seed_demo_is_repeatable_and_prints_working_credentials(db):
    for _ in range(2):
        out = StringIO()
        call_command("seed_demo", stdout=out)
        text = out.getvalue()
        key = re.search(r"API key\s+: (\S+)", text).group(1)
        password = re.search(r"admin login : \S+ / (\S+)", text).group(1)
        assert Api(key).get("/api/v1/rooms").status_code == 200
        user = User.objects.get(email="admin@demo.parley.local")
        assert user.check_password(password) and user.is_staff
    assert Tenant.objects.filter(name="Demo").count() == 1


def test_signup_verifies_email_and_creates_an_owned_tenant(db):
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new@startup.test",
            "password1": "a-Long-pass-123",
            "password2": "a-Long-pass-123",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="new@startup.test")
    membership = Membership.objects.get(user=user)
    assert membership.role == "owner" and membership.tenant.plan.code == "free"
    # Mandatory verification: the console backend "sent" a confirmation link.
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+", mail.outbox[0].body).group(0)
    path = "/" + link.split("/", 3)[3]
    assert client.post(path).status_code == 302
    assert user.emailaddress_set.get().verified
    login = client.post(
        "/accounts/login/", {"login": "new@startup.test", "password": "a-Long-pass-123"}
    )
    assert login.status_code == 302
    page = client.get("/dashboard/")
    assert page.status_code == 200 and b"new&#x27;s team" in page.content  # escaped


def test_dashboard_requires_sign_in(db):
    response = Client().get("/dashboard/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_django_admin_works_for_staff(db):
    admin = User.objects.create_superuser("root", "root@parley.test", "pw-123456789")
    client = Client()
    client.force_login(admin)
    for path in [
        "/admin/",
        "/admin/accounts/tenant/",
        "/admin/accounts/apikey/",
        "/admin/conferences/room/",
    ]:
        assert client.get(path).status_code == 200, path
