"""Item 3 as an attacker tries it: password guessing against a room from many addresses,
and rotating `X-Forwarded-For` to look like many clients.

The client address comes from one setting (PARLEY_TRUSTED_PROXIES, default: nobody is
believed); the per-client limit stays; and the room slows every client down once many
passwords were wrong, with a wait that always ends."""

from __future__ import annotations

import pytest

from conferences.services import access as access_services
from parley import clientip, ratelimit
from tests.join_helpers import Browser, make_room

PASSWORD = {"access_type": "password", "password": "hunter22"}


def _code(response) -> str:
    return response.json()["error"]["code"]


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(owner, livekit):
    room = make_room(owner, **PASSWORD)
    attacker = Browser(room, ip="127.0.0.1")
    for n in range(10):
        headers = {"X-Forwarded-For": f"192.0.2.{n}"}
        assert attacker.post("password", {"password": "nope"}, headers=headers).status_code in (
            403,
            429,  # the tenth wrong try already locks
        )
    # A fresh X-Forwarded-For does not make a fresh client: still locked out.
    locked = attacker.post(
        "password", {"password": "hunter22"}, headers={"X-Forwarded-For": "192.0.2.99"}
    )
    assert locked.status_code == 429 and _code(locked) == "TOO_MANY_ATTEMPTS"


def test_a_trusted_proxy_names_the_client(owner, livekit, settings):
    settings.PARLEY_TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    room = make_room(owner, **PASSWORD)
    proxy = Browser(room, ip="127.0.0.1")
    for _ in range(10):
        proxy.post("password", {"password": "nope"}, headers={"X-Forwarded-For": "192.0.2.1"})
    locked = proxy.post(
        "password", {"password": "hunter22"}, headers={"X-Forwarded-For": "192.0.2.1"}
    )
    assert locked.status_code == 429
    # Another client behind the same proxy is another client.
    other = proxy.post(
        "password", {"password": "hunter22"}, headers={"X-Forwarded-For": "192.0.2.2, 10.1.2.3"}
    )
    assert other.json() == {"ok": True}
    # A client that is not a trusted proxy cannot name someone else.
    direct = Browser(room, ip="198.51.100.20")
    for _ in range(10):
        direct.post("password", {"password": "nope"}, headers={"X-Forwarded-For": "192.0.2.3"})
    assert direct.post("password", {"password": "hunter22"}).status_code == 429


@pytest.mark.parametrize(
    "peer, header, expected",
    [
        ("198.51.100.1", "", "198.51.100.1"),
        ("198.51.100.1", "192.0.2.1", "198.51.100.1"),  # not a proxy: header ignored
        ("127.0.0.1", "192.0.2.1", "192.0.2.1"),
        ("127.0.0.1", "192.0.2.9, 192.0.2.1", "192.0.2.1"),  # the client wrote the left part
        ("127.0.0.1", "192.0.2.1, 10.0.0.7", "192.0.2.1"),  # through two trusted proxies
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("127.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
        ("::1", "192.0.2.1", "::1"),  # ::1 is not on the list
    ],
)
def test_client_address_rules(settings, peer, header, expected):
    settings.PARLEY_TRUSTED_PROXIES = ["127.0.0.1/32", "10.0.0.0/8"]
    assert clientip.resolve(peer, header) == expected


def test_the_default_trusts_no_proxy(settings):
    assert settings.PARLEY_TRUSTED_PROXIES == []
    assert clientip.resolve("127.0.0.1", "192.0.2.1") == "127.0.0.1"


def test_guessing_from_many_addresses_slows_the_whole_room(owner, livekit):
    room = make_room(owner, **PASSWORD)
    free = access_services.ROOM_FREE_FAILURES
    for n in range(free + 1):
        wrong = Browser(room, ip=f"192.0.2.{n + 1}").post("password", {"password": "nope"})
        assert wrong.status_code == 403, n
    # Past the free failures every client waits, even one with the right password ...
    slowed = Browser(room, ip="198.51.100.77").post("password", {"password": "hunter22"})
    assert slowed.status_code == 429 and _code(slowed) == "ROOM_SLOW_DOWN"
    assert slowed["Retry-After"] == "1"
    # ... and only for a moment: once the wait ends the right password gets in.
    ratelimit.cache.delete(access_services.room_backoff(room).until_key)
    assert Browser(room, ip="198.51.100.77").post("password", {"password": "hunter22"}).json() == {
        "ok": True
    }
    # Other rooms are not slowed.
    other = make_room(owner, **PASSWORD)
    assert Browser(other, ip="198.51.100.78").post("password", {"password": "hunter22"}).json()


def test_the_room_wait_doubles_and_is_capped():
    b = ratelimit.Backoff(scope="t", subject="x", free=3, cap=30, seconds=900)
    now = 1_000_000.0
    delays = [ratelimit.backoff_fail(b, now=now) for _ in range(12)]
    assert delays == [0, 0, 0, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    assert ratelimit.backoff_wait(b, now=now) == 30
    assert ratelimit.backoff_wait(b, now=now + 30) == 0  # never locked for good
