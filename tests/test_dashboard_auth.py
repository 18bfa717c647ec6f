"""Account pages (allauth) in the product's look, and optional TOTP two-factor sign-in."""

from __future__ import annotations

import time

from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from django.test import Client

from tests.dashboard_cast import PASSWORD, Cast

ENTRANCE = ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]


def test_account_pages_wear_the_product(db):
    client = Client()
    for path in ENTRANCE:
        page = client.get(path).content.decode()
        assert "css/dashboard.css" in page and 'class="auth-card' in page, path
        assert 'class="btn primary"' in page, path
        assert "<label" in page, path  # every field labelled


def test_password_reset_sends_a_link(cast: Cast):
    from django.core import mail

    response = Client().post("/accounts/password/reset/", {"email": "mel@acme.test"})
    assert response.status_code == 302
    assert "/accounts/password/reset/key/" in mail.outbox[-1].body


def _code(secret: str, shift: int = 0) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30 + shift))


def test_totp_two_factor_sign_in(cast: Cast, settings):
    settings.MFA_TOTP_TOLERANCE = 1
    client = Client()
    assert (
        client.post(
            "/accounts/login/", {"login": "mel@acme.test", "password": PASSWORD}
        ).status_code
        == 302
    )
    # Turning two-factor on asks for the password again first.
    ask = client.get("/accounts/2fa/totp/activate/")
    assert ask.status_code == 302 and "/accounts/reauthenticate/" in ask["Location"]
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200 and "QR code" in page.content.decode()
    secret = client.session[SECRET_SESSION_KEY]
    activated = client.post("/accounts/2fa/totp/activate/", {"code": _code(secret)})
    assert activated.status_code == 302
    client.post("/accounts/logout/")

    client = Client()
    response = client.post("/accounts/login/", {"login": "mel@acme.test", "password": PASSWORD})
    assert response.status_code == 302 and "/accounts/2fa/authenticate/" in response["Location"]
    # Without the second factor, no dashboard.
    assert client.get("/dashboard/").status_code == 302
    prompt = client.get("/accounts/2fa/authenticate/").content.decode()
    assert 'class="auth-card' in prompt
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200
    done = client.post("/accounts/2fa/authenticate/", {"code": _code(secret, 1)})
    assert done.status_code == 302
    assert client.get("/dashboard/").status_code == 200


def test_security_link_in_the_dashboard(cast: Cast):
    page = cast.client("viewer").get("/dashboard/").content.decode()
    assert 'href="/accounts/2fa/"' in page
    assert cast.client("viewer").get("/accounts/2fa/").status_code == 200
