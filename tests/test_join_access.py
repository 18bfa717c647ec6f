"""Access before any LiveKit token: password (with per-room, per-client lockout), whitelist
one-time codes, sign-in; display names; the token each join answers with."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.utils import timezone

from accounts.models import Membership, User
from conferences.models import AccessAttempt, JoinCode, Room
from conferences.services import joining
from conferences.services import rooms as room_services
from tests.join_helpers import Browser, make_room

PASSWORD = {"access_type": "password", "password": "hunter22"}
GUEST_LIST = {"access_type": "whitelist", "whitelist_emails": ["ann@example.com"]}


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"] and body["error"]["request_id"]
    return body["error"]


# --- password ---------------------------------------------------------------------------------


def test_no_token_without_the_password(owner, livekit):
    room = make_room(owner, **PASSWORD)
    error(Browser(room).join(), 403, "PASSWORD_REQUIRED")
    assert not livekit.calls_to("CreateRoom")  # nothing happened on LiveKit


def test_wrong_then_right_password(owner, livekit):
    room = make_room(owner, **PASSWORD)
    browser = Browser(room)
    wrong = error(browser.post("password", {"password": "nope"}), 403, "WRONG_PASSWORD")
    assert wrong["field"] == "password" and "9 tries left" in wrong["message"]
    assert browser.post("password", {"password": "hunter22"}).json() == {"ok": True}
    joined = browser.join()
    assert joined.status_code == 200 and joined.json()["status"] == "admitted"
    # the session keeps a proof, never the password
    session = browser.client.session
    assert "hunter22" not in str(dict(session.items()))


def test_ten_wrong_tries_lock_the_client_out(owner, livekit):
    room = make_room(owner, **PASSWORD)
    browser = Browser(room)
    for _ in range(9):
        error(browser.post("password", {"password": "nope"}), 403, "WRONG_PASSWORD")
    tenth = browser.post("password", {"password": "nope"})
    locked = error(tenth, 429, "TOO_MANY_ATTEMPTS")
    assert "Try again in 15 minutes" in locked["message"]
    assert 0 < int(tenth["Retry-After"]) <= 15 * 60
    # even the right password is refused while locked out, and nothing is checked
    error(browser.post("password", {"password": "hunter22"}), 429, "TOO_MANY_ATTEMPTS")
    assert AccessAttempt.objects.filter(room=room).count() == 10
    # another client, and another room, are not affected
    assert Browser(room, ip="203.0.113.9").post("password", {"password": "hunter22"}).json()
    other = make_room(owner, **PASSWORD)
    assert Browser(other).post("password", {"password": "hunter22"}).json() == {"ok": True}


def test_lockout_ends_when_the_window_slides(owner, livekit):
    room = make_room(owner, **PASSWORD)
    browser = Browser(room)
    for _ in range(10):
        browser.post("password", {"password": "nope"})
    error(browser.post("password", {"password": "hunter22"}), 429, "TOO_MANY_ATTEMPTS")
    AccessAttempt.objects.filter(room=room).update(
        created_at=timezone.now() - dt.timedelta(minutes=15, seconds=1)
    )
    assert browser.post("password", {"password": "hunter22"}).json() == {"ok": True}


def test_changing_the_password_voids_earlier_proofs(owner, livekit):
    room = make_room(owner, **PASSWORD)
    browser = Browser(room)
    browser.post("password", {"password": "hunter22"})
    room_services.update_room(room=room, data={"password": "correct-horse"})
    error(browser.join(), 403, "PASSWORD_REQUIRED")


@pytest.mark.parametrize("body", [{}, {"password": ""}, {"password": 42}, {"password": None}])
def test_password_input_is_validated(owner, livekit, body):
    room = make_room(owner, **PASSWORD)
    error(Browser(room).post("password", body), 400, "INVALID_PARAMETER")


def test_password_endpoint_on_a_public_room(owner, livekit):
    room = make_room(owner)
    error(Browser(room).post("password", {"password": "x"}), 409, "NO_PASSWORD")


def test_password_needs_the_csrf_token(owner, livekit):
    room = make_room(owner, **PASSWORD)
    browser = Browser(room)
    browser.page()
    response = browser.client.post(
        f"/room/{room.room_id}/password",
        data='{"password": "hunter22"}',
        content_type="application/json",
    )
    error(response, 403, "CSRF_FAILED")


# --- whitelist: one-time codes ------------------------------------------------------------------


def code_from(mail) -> str:
    return re.search(r"\b(\d{6})\b", mail.body).group(1)


# Codes are mailed once the transaction commits: these tests run with real commits.
mails = pytest.mark.django_db(transaction=True)


@mails
def test_whitelist_code_flow(owner, livekit, mailoutbox):
    room = make_room(owner, **GUEST_LIST)
    browser = Browser(room)
    error(browser.join(), 403, "EMAIL_VERIFICATION_REQUIRED")
    sent = browser.post("email", {"email": "  Ann@Example.com "})
    assert sent.status_code == 200 and sent.json()["email"] == "ann@example.com"
    [mail] = mailoutbox
    assert mail.to == ["ann@example.com"] and "Standup" in mail.subject
    code = code_from(mail)
    assert not JoinCode.objects.filter(code_hash__contains=code).exists()  # stored hashed
    verified = browser.post("code", {"email": "ann@example.com", "code": code})
    assert verified.json() == {"ok": True, "email": "ann@example.com"}
    assert browser.join().json()["status"] == "admitted"
    assert browser.config()["access"]["email"] == "ann@example.com"


@mails
def test_reused_code_is_refused(owner, livekit, mailoutbox):
    room = make_room(owner, **GUEST_LIST)
    first, second = Browser(room), Browser(room, ip="203.0.113.5")
    first.post("email", {"email": "ann@example.com"})
    code = code_from(mailoutbox[0])
    assert first.post("code", {"email": "ann@example.com", "code": code}).status_code == 200
    used = second.post("code", {"email": "ann@example.com", "code": code})
    assert error(used, 400, "CODE_USED")["field"] == "code"


@mails
def test_expired_code_is_refused(owner, livekit, mailoutbox):
    room = make_room(owner, **GUEST_LIST)
    browser = Browser(room)
    browser.post("email", {"email": "ann@example.com"})
    JoinCode.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = browser.post("code", {"email": "ann@example.com", "code": code_from(mailoutbox[0])})
    assert "expired" in error(response, 400, "CODE_EXPIRED")["message"]


@mails
def test_only_the_latest_code_works(owner, livekit, mailoutbox):
    room = make_room(owner, **GUEST_LIST)
    browser = Browser(room)
    browser.post("email", {"email": "ann@example.com"})
    browser.post("email", {"email": "ann@example.com"})
    old, new = code_from(mailoutbox[0]), code_from(mailoutbox[1])
    if old != new:
        error(browser.post("code", {"email": "ann@example.com", "code": old}), 400, "CODE_INVALID")
    assert browser.post("code", {"email": "ann@example.com", "code": new}).status_code == 200


@mails
def test_wrong_codes_block_the_code(owner, livekit, mailoutbox):
    room = make_room(owner, **GUEST_LIST)
    browser = Browser(room)
    browser.post("email", {"email": "ann@example.com"})
    code = code_from(mailoutbox[0])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(joining.CODE_MAX_TRIES):
        error(
            browser.post("code", {"email": "ann@example.com", "code": wrong}), 400, "CODE_INVALID"
        )
    blocked = browser.post("code", {"email": "ann@example.com", "code": code})
    assert "too many wrong tries" in error(blocked, 400, "CODE_INVALID")["message"]


@mails
def test_address_not_on_the_list_gets_no_mail(owner, livekit, mailoutbox):
    room = make_room(owner, **GUEST_LIST)
    browser = Browser(room)
    listed = browser.post("email", {"email": "ann@example.com"})
    unlisted = browser.post("email", {"email": "eve@example.com"})
    # The same answer either way, so the list cannot be probed; only Ann gets a mail.
    assert unlisted.status_code == listed.status_code == 200
    assert unlisted.json() == {**listed.json(), "email": "eve@example.com"}
    assert [m.to for m in mailoutbox] == [["ann@example.com"]]
    response = browser.post("code", {"email": "eve@example.com", "code": code_from(mailoutbox[0])})
    error(response, 400, "CODE_INVALID")
    error(browser.join(), 403, "EMAIL_VERIFICATION_REQUIRED")


@mails
def test_removing_an_address_voids_its_proof(owner, livekit, mailoutbox):
    room = make_room(owner, **GUEST_LIST)
    browser = Browser(room)
    browser.post("email", {"email": "ann@example.com"})
    browser.post("code", {"email": "ann@example.com", "code": code_from(mailoutbox[0])})
    room_services.update_room(room=room, data={"whitelist_emails": ["bob@example.com"]})
    error(browser.join(), 403, "NOT_ON_GUEST_LIST")


@mails
def test_code_requests_are_limited(owner, livekit, mailoutbox):
    room = make_room(owner, **GUEST_LIST)
    browser = Browser(room)
    for _ in range(joining.MAX_CODE_REQUESTS):
        assert browser.post("email", {"email": "ann@example.com"}).status_code == 200
    error(browser.post("email", {"email": "ann@example.com"}), 429, "TOO_MANY_ATTEMPTS")
    assert len(mailoutbox) == joining.MAX_CODE_REQUESTS


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"email": ["a@b.c"]}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
    ],
)
def test_email_input_is_validated(owner, livekit, body, field):
    room = make_room(owner, **GUEST_LIST)
    assert error(Browser(room).post("email", body), 400, "INVALID_PARAMETER")["field"] == field


@pytest.mark.parametrize("code", ["12345", "abcdef", "1234567", "", None, 123456])
def test_code_input_is_validated(owner, livekit, code):
    room = make_room(owner, **GUEST_LIST)
    response = Browser(room).post("code", {"email": "ann@example.com", "code": code})
    assert error(response, 400, "INVALID_PARAMETER")["field"] == "code"


# --- sign-in ------------------------------------------------------------------------------------


def _signed_in_join(user, room):
    client = Client()
    client.force_login(user)
    client.get(f"/room/{room.room_id}")
    return client.post(
        f"/room/{room.room_id}/join", {"name": "Otto"}, content_type="application/json"
    )


def test_authenticated_room_admits_the_tenants_members_only(owner, outsider, livekit):
    room = make_room(owner, access_type="authenticated")
    error(Browser(room).join(), 403, "LOGIN_REQUIRED")
    # Another tenant's signed-in user is not "authenticated" for this room.
    error(_signed_in_join(outsider.user, room), 403, "NOT_A_MEMBER")
    viewer = User.objects.create_user("vic", "vic@acme.test", "pw-123456789")
    Membership.objects.create(user=viewer, tenant=owner.tenant, role="viewer")
    assert _signed_in_join(viewer, room).json()["role"] == "participant"


def test_authenticated_room_may_allow_other_email_domains(api, owner, outsider, livekit):
    body = {"name": "Partners", "access_type": "authenticated"}
    created = api.post("/api/v1/rooms", {**body, "allowed_email_domains": ["@Partner.example"]})
    assert created.status_code == 201, created.content
    assert created.json()["allowed_email_domains"] == ["partner.example"]
    room = Room.objects.get(room_id=created.json()["room_id"])
    bad = api.post("/api/v1/rooms", {**body, "allowed_email_domains": ["not a domain"]})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "allowed_email_domains"
    public = api.post("/api/v1/rooms", {"name": "x" * 5, "allowed_email_domains": ["a.example"]})
    assert public.status_code == 400
    partner = User.objects.create_user("pat", "pat@partner.example", "pw-123456789")
    # The address must be verified: anyone can sign up with any address.
    unverified = EmailAddress.objects.create(user=partner, email=partner.email, verified=False)
    error(_signed_in_join(partner, room), 403, "NOT_A_MEMBER")
    unverified.verified = True
    unverified.save()
    assert _signed_in_join(partner, room).json()["role"] == "participant"
    error(_signed_in_join(outsider.user, room), 403, "NOT_A_MEMBER")


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "Enter your name"),
        ("   ", "Enter your name"),
        ("x" * 51, "at most 50"),
        ("<script>alert(1)</script>", "cannot contain < or >"),
        ("Ann\u202eevil", "cannot be shown"),  # right-to-left override
        ("Ann\x00", "cannot be shown"),
        (42, "Enter your name"),
        (None, "Enter your name"),
    ],
)
def test_bad_display_names(owner, livekit, name, message):
    room = make_room(owner)
    response = Browser(room).join(name)
    body = error(response, 400, "INVALID_PARAMETER")
    assert body["field"] == "name" and message in body["message"]
    assert not livekit.calls_to("CreateRoom")


def test_names_are_tidied(owner, livekit):
    room = make_room(owner)
    token = Browser(room).join("  Zoë   O'Brien 👩‍💻 ").json()
    claims = livekit.verify_join_token(token["token"], room=room.room_id)
    assert claims["name"] == "Zoë O'Brien 👩‍💻"


# --- the token ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "media_type, sources",
    [
        ("audio", ["microphone"]),  # voice only, whatever the screen switch says
        ("video", ["camera", "screen_share"]),
        ("both", ["camera", "microphone", "screen_share", "screen_share_audio"]),
    ],
)
def test_guest_token_matches_role_and_media_type(owner, livekit, media_type, sources):
    room = make_room(owner, media_type=media_type, chat_enabled=False)
    body = Browser(room).join("Ann").json()
    assert body["status"] == "admitted" and body["ws_url"] == livekit.ws_url
    assert body["role"] == "participant" and body["room_name"] == room.room_id
    claims = livekit.verify_join_token(body["token"], room=room.room_id)
    assert claims["sub"] == body["identity"] and claims["name"] == "Ann"
    assert claims["attributes"] == {"role": "participant"}
    video = claims["video"]
    assert video["roomJoin"] is True and video["room"] == room.room_id
    assert video["canPublish"] is True and video["canSubscribe"] is True
    assert video.get("canPublishData", False) is False  # chat disabled
    assert sorted(video["canPublishSources"]) == sorted(sources)
    assert not any(video.get(g) for g in ("roomAdmin", "roomCreate", "roomList", "roomRecord"))


def test_host_token_has_no_admin_grant(owner, livekit):
    room = make_room(owner, waiting_room_enabled=True, **PASSWORD)
    browser = Browser(room)
    browser.host_page()
    body = browser.join("Host Hannah").json()
    assert body["status"] == "admitted" and body["role"] == "host"
    claims = livekit.verify_join_token(body["token"], room=room.room_id)
    assert claims["attributes"] == {"role": "host"}
    assert not claims["video"].get("roomAdmin")


def test_scheduled_and_ended_rooms_refuse_to_join(owner, livekit):
    room = make_room(
        owner, room_type="scheduled", start_time=timezone.now() + dt.timedelta(hours=1)
    )
    error(Browser(room).join(), 409, "ROOM_NOT_STARTED")
    other = make_room(owner)
    room_services.start_room(room=other)
    room_services.stop_room(room=other)
    error(Browser(other).join(), 409, "ROOM_ENDED")


def test_livekit_down_is_a_clear_503(owner, livekit):
    room = make_room(owner)
    livekit.down()
    error(Browser(room).join(), 503, "LIVEKIT_UNAVAILABLE")
