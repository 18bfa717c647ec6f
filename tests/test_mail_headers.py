"""Item 12 of #17: a room name with line breaks made the join-code email fail silently
(Django refuses a header with a line break) while the page answered "sent". Header values
built from user text are put on one line, and a mail that cannot be sent says so."""

from __future__ import annotations

import smtplib

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import TestCase

from parley.mail import header_text
from tests.join_helpers import Browser, make_room

GUEST_LIST = {"access_type": "whitelist", "whitelist_emails": ["ann@example.com"]}
mails = pytest.mark.django_db(transaction=True)  # codes are mailed once the write commits


class RefusingBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Standup\r\nBcc: evil@example.com", "Standup Bcc: evil@example.com"),
        ("A\u2028B\u0085C\x0bD\tE", "A B C D E"),
        ("  spaced   out  ", "spaced out"),
        ("x" * 200, "x" * 149 + "…"),
    ],
)
def test_header_text_is_one_line(value, expected):
    assert header_text(value) == expected


@mails
def test_a_room_name_with_line_breaks_still_gets_its_code_mailed(owner, livekit, mailoutbox):
    room = make_room(owner, name="Standup\r\nBcc: evil@example.com\nX-Spam: yes", **GUEST_LIST)
    sent = Browser(room).post("email", {"email": "ann@example.com"})
    assert sent.status_code == 200 and sent.json()["sent"] is True
    [message] = mailoutbox
    assert message.subject == "Your code to join Standup Bcc: evil@example.com X-Spam: yes"
    assert message.to == ["ann@example.com"] and message.bcc == []
    headers = message.message().as_string().split("\n\n", 1)[0]
    assert "\nBcc:" not in headers and "\nX-Spam:" not in headers


@mails
def test_a_mail_that_cannot_be_sent_is_an_error_not_sent(owner, livekit, settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    room = make_room(owner, **GUEST_LIST)
    response = Browser(room).post("email", {"email": "ann@example.com"})
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert error["code"] == "EMAIL_NOT_SENT" and error["field"] == "email"
    assert error["message"] and error["request_id"]


def test_an_invitation_from_a_workspace_with_line_breaks_is_mailed(cast):
    cast.tenant.name = "Acme\nBcc: evil@example.com"
    cast.tenant.save(update_fields=["name"])
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = cast.client("admin").post(
            "/dashboard/members/", {"email": "new@x.test", "role": "member"}
        )
    assert response.status_code == 302
    assert mail.outbox[-1].subject == "Join Acme Bcc: evil@example.com on Parley"
    assert mail.outbox[-1].to == ["new@x.test"] and mail.outbox[-1].bcc == []


def test_the_sender_name_is_one_line_too():
    from branding.dashboard_selectors import EmailBrand, email_sender

    sender = email_sender(
        EmailBrand(product_name="Acme\r\nBcc: evil@example.com", white_label=True)
    )
    assert "\n" not in sender and "\r" not in sender
    assert sender.startswith('"Acme Bcc: evil@example.com" <')  # quoted: one display name
