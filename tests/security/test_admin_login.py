"""Item 2 as an attacker tries it: Django admin's own sign-in form had no limit and ignored
the lock the normal sign-in puts on an account. Admin now signs in through allauth only."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.test import Client

from accounts.models import User

PASSWORD = "a-Long-pass-123"


@pytest.fixture
def staff(db, settings) -> User:
    settings.ACCOUNT_RATE_LIMITS = {}  # allauth's defaults, as in production (tests turn them off)
    user = User.objects.create_superuser("root", "root@parley.test", PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _signed_in_to_admin(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_forty_wrong_passwords_on_admin_login_then_the_right_one_is_refused(staff):
    client = Client(REMOTE_ADDR="203.0.113.50")
    for _ in range(40):
        response = client.post("/admin/login/", {"username": "root", "password": "guess"})
        # No form of its own: every POST is sent to allauth's page, nobody is signed in.
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    right = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert right.status_code == 302 and right["Location"].startswith("/accounts/login/")
    assert not _signed_in_to_admin(client)


def test_a_lock_from_the_normal_sign_in_applies_to_admin(staff):
    attacker = Client(REMOTE_ADDR="203.0.113.51")
    for _ in range(6):
        wrong = attacker.post(
            "/accounts/login/", {"login": "root@parley.test", "password": "guess"}
        )
        assert wrong.status_code == 200
    # The account is locked: the right password is refused, on every door.
    locked = attacker.post("/accounts/login/", {"login": "root@parley.test", "password": PASSWORD})
    assert locked.status_code == 200 and "Too many failed login attempts" in locked.content.decode()
    assert not _signed_in_to_admin(attacker)
    via_admin = attacker.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert via_admin.status_code == 302
    assert not _signed_in_to_admin(attacker)
    # From another address too (the lock is the account's, not the address's).
    other = Client(REMOTE_ADDR="198.51.100.52")
    again = other.post("/accounts/login/", {"login": "root@parley.test", "password": PASSWORD})
    assert again.status_code == 200 and not _signed_in_to_admin(other)


def test_staff_reach_admin_through_allauth(staff):
    client = Client()
    page = client.get("/admin/")
    assert page.status_code == 302  # to /admin/login/, which sends on to allauth
    hop = client.get(page["Location"])
    assert hop.status_code == 302 and hop["Location"] == "/accounts/login/?next=%2Fadmin%2F"
    done = client.post(hop["Location"], {"login": "root@parley.test", "password": PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/admin/"
    assert _signed_in_to_admin(client)
    # Signed in: /admin/login/ goes straight on (never to an outside address).
    assert client.get("/admin/login/?next=/admin/accounts/").headers["Location"] == (
        "/admin/accounts/"
    )
    assert client.get("/admin/login/?next=https://evil.test/").headers["Location"] == "/admin/"


def test_a_signed_in_non_staff_user_gets_no_admin(db):
    user = User.objects.create_user("mel", "mel@parley.test", PASSWORD)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/login/").status_code == 403
    assert client.get("/admin/").status_code == 302
