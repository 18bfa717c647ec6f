"""Item 4 as an attacker tries it: making Parley mail join codes (with the tenant's room
name in the subject) to a victim, from many client addresses, and probing the guest list.

Only listed addresses get mail, the answer is the same either way, and codes are capped
per email address and per room each hour whatever the client address."""

from __future__ import annotations

import pytest

from conferences.services import access as access_services
from tests.join_helpers import Browser, make_room

mails = pytest.mark.django_db(transaction=True)
VICTIM = "victim@example.com"


@mails
def test_an_unlisted_victim_gets_nothing_from_many_addresses(owner, livekit, mailoutbox):
    room = make_room(owner, access_type="whitelist", whitelist_emails=["ann@example.com"])
    answers = []
    for n in range(20):
        response = Browser(room, ip=f"192.0.2.{n + 1}").post("email", {"email": VICTIM})
        answers.append(response.status_code)
    assert mailoutbox == []
    # Past the hourly cap per address the answer is 429, listed or not (no oracle).
    cap = access_services.CODES_PER_ADDRESS_HOUR
    assert answers == [200] * cap + [429] * (20 - cap)


@mails
def test_a_listed_address_gets_at_most_the_hourly_cap(owner, livekit, mailoutbox):
    room = make_room(owner, access_type="whitelist", whitelist_emails=[VICTIM])
    codes = [
        Browser(room, ip=f"192.0.2.{n + 1}").post("email", {"email": VICTIM}).status_code
        for n in range(20)
    ]
    cap = access_services.CODES_PER_ADDRESS_HOUR
    assert codes == [200] * cap + [429] * (20 - cap)
    assert len(mailoutbox) == cap
    # The cap is the address's, across rooms.
    other = make_room(owner, access_type="whitelist", whitelist_emails=[VICTIM])
    limited = Browser(other, ip="198.51.100.3").post("email", {"email": VICTIM})
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "TOO_MANY_ATTEMPTS"
    assert len(mailoutbox) == cap


@mails
def test_a_room_caps_codes_per_hour(owner, livekit, mailoutbox, monkeypatch):
    monkeypatch.setattr(access_services, "CODES_PER_ROOM_HOUR", 3)
    guests = [f"g{n}@example.com" for n in range(5)]
    room = make_room(owner, access_type="whitelist", whitelist_emails=guests)
    answers = [
        Browser(room, ip=f"192.0.2.{n + 1}").post("email", {"email": guest}).status_code
        for n, guest in enumerate(guests)
    ]
    assert answers == [200, 200, 200, 429, 429]
    assert len(mailoutbox) == 3
