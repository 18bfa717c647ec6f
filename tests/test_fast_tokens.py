"""The v1 join-token fast path (conferences.api.fasttokens) inside the ASGI application's
lean handler: it answers successes itself, hands every other case to Django unchanged, and
counts each request once against the plan's allowance and the failed-authentication budget."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from accounts import services as account_services
from accounts.models import ApiKey
from conferences.api.auth import AUTH_FAILURES_ALLOWED, failure_window
from conferences.api.fasttokens import token_input
from conferences.api.v1.serializers import TokenInputSerializer
from conferences.models import Participant, Room
from parley import ratelimit
from parley.asgi import LeanHandler, LeanRoutes
from tests.conftest import Api

DYNAMIC = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset", "content-length"}


class Lean:
    """A lean handler of its own (a fresh fast path), counting Django's answers."""

    def __init__(self) -> None:
        self.handler = LeanHandler()
        self.full = 0
        respond_fully = self.handler.respond_fully

        def counted(scope, body):
            self.full += 1
            return respond_fully(scope, body)

        self.handler.respond_fully = counted  # type: ignore[method-assign]
        self.app = LeanRoutes(app=None, lean=self.handler)

    def post(self, path: str, json=None, headers=None, content=None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                return await c.post(path, json=json, headers=headers, content=content)

        return asyncio.run(go())


def envelope(response: httpx.Response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field", "request_id"}
    assert error["request_id"] == response.headers["x-request-id"]
    if field is not None:
        assert error["field"] == field, error
    return error


@pytest.fixture
def lean(transactional_db) -> Lean:
    return Lean()


@pytest.fixture
def room(transactional_db, owner, livekit):
    response = Api(owner.api_key).post("/api/v1/rooms", {"name": "Fast room"})
    assert response.status_code == 201
    return response.json()


@pytest.fixture
def tokens(room):
    return f"/api/v1/rooms/{room['room_id']}/tokens"


def test_successes_after_the_first_are_answered_by_the_fast_path(lean, owner, tokens, livekit):
    key = {"X-API-Key": owner.api_key}
    first = lean.post(tokens, json={"name": "Ann", "identity": "ann"}, headers=key)
    assert first.status_code == 200, first.text
    assert lean.full == 1  # the room went live and the host's headers were learnt
    second = lean.post(tokens, json={"name": " Bob ", "identity": " bob "}, headers=key)
    assert second.status_code == 200, second.text
    assert lean.full == 1  # answered before Django
    body = second.json()
    assert set(body) == set(first.json())
    assert (body["identity"], body["name"], body["role"]) == ("bob", "Bob", "participant")
    claims = livekit.verify_join_token(body["token"], room=body["room_name"])
    assert claims["sub"] == "bob" and claims["video"]["canPublish"] is True
    row = Participant.objects.get(room__room_id=body["room_name"], identity="bob")
    assert (row.name, row.role) == ("Bob", "participant")
    # The same headers as Django's answer, bar the per-request values.
    same = {k: v for k, v in first.headers.items() if k not in DYNAMIC}
    assert {k: v for k, v in second.headers.items() if k not in DYNAMIC} == same
    assert "content-security-policy" in same and same["cache-control"] == "no-store"
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    sent = lean.post(tokens, json={"name": "C"}, headers={**key, "X-Request-ID": "my-own-id-1"})
    assert sent.headers["x-request-id"] == "my-own-id-1" and lean.full == 1


def test_each_request_is_counted_once_whichever_path_answers(lean, owner, tokens):
    key = {"X-API-Key": owner.api_key}
    window = ratelimit.api_window(owner.tenant.pk)
    before = ratelimit.used(window)  # the room's creation
    remaining = []
    for body in ({"name": "A"}, {"name": "B"}, {"name": ""}, {"name": "D", "x": 1}, {"name": "E"}):
        response = lean.post(tokens, json=body, headers=key)
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
    assert lean.full == 3  # the first (learning) and the two refused bodies
    assert remaining == list(range(remaining[0], remaining[0] - 5, -1))
    assert ratelimit.used(window) == before + 5


def test_over_the_allowance_is_djangos_429_counted_once(lean, owner, tokens, settings):
    key = {"X-API-Key": owner.api_key}
    assert lean.post(tokens, json={"name": "A"}, headers=key).status_code == 200
    limit = owner.tenant.plan.requests_per_hour
    window = ratelimit.api_window(owner.tenant.pk)
    from django.core.cache import cache

    cache.set(window.key, limit, timeout=window.seconds + 60)
    refused = lean.post(tokens, json={"name": "B"}, headers=key)
    envelope(refused, 429)
    assert refused.headers["x-ratelimit-remaining"] == "0" and "retry-after" in refused.headers
    assert ratelimit.used(window) == limit + 1


@pytest.mark.parametrize(
    "body, headers, status, field",
    [
        ({"name": ""}, {}, 400, "name"),
        ({"name": "A", "identity": "a b"}, {}, 400, "identity"),
        ({"name": "A", "role": "admin"}, {}, 400, "role"),
        ({"name": "A", "extra": True}, {}, 400, "extra"),
        ({"name": None}, {}, 400, "name"),
        ([1, 2], {}, 400, None),
        (None, {"Content-Type": "text/plain"}, 415, None),
    ],
)
def test_refusals_are_djangos_envelopes(lean, owner, tokens, body, headers, status, field):
    key = {"X-API-Key": owner.api_key}
    assert lean.post(tokens, json={"name": "Warm"}, headers=key).status_code == 200
    before = Participant.objects.count()
    if body is None:
        response = lean.post(tokens, content=b"name=A", headers={**key, **headers})
    else:
        response = lean.post(tokens, json=body, headers={**key, **headers})
    envelope(response, status, field)
    assert Participant.objects.count() == before  # nothing half-written


def test_keys_rooms_and_hosts_the_fast_path_does_not_know(lean, owner, outsider, tokens, room):
    key = {"X-API-Key": owner.api_key}
    assert lean.post(tokens, json={"name": "Warm"}, headers=key).status_code == 200
    envelope(lean.post(tokens, json={"name": "A"}), 401)
    envelope(lean.post(tokens, json={"name": "A"}, headers={"X-API-Key": "pk_live_nope"}), 401)
    other = {"X-API-Key": outsider.api_key}
    envelope(lean.post(tokens, json={"name": "A"}, headers=other), 404)  # never 403
    envelope(lean.post("/api/v1/rooms/NoSuchRoom12/tokens", json={"name": "A"}, headers=key), 404)
    assert Participant.objects.filter(name="A").count() == 0
    # Another host's headers (its CSP names its websockets) are learnt from Django first.
    full = lean.full
    other_host = {**key, "Host": "localhost"}
    first = lean.post(tokens, json={"name": "H1"}, headers=other_host)
    assert first.status_code == 200 and lean.full == full + 1
    assert "ws://localhost" in first.headers["content-security-policy"]
    second = lean.post(tokens, json={"name": "H2"}, headers=other_host)
    assert second.status_code == 200 and lean.full == full + 1
    assert second.headers["content-security-policy"] == first.headers["content-security-policy"]


def test_revoked_key_is_refused_by_the_fast_path_at_once(lean, owner, tokens):
    key = {"X-API-Key": owner.api_key}
    assert lean.post(tokens, json={"name": "A"}, headers=key).status_code == 200
    assert lean.post(tokens, json={"name": "B"}, headers=key).status_code == 200
    account_services.revoke_api_key(api_key=ApiKey.objects.get(tenant=owner.tenant))
    envelope(lean.post(tokens, json={"name": "C"}, headers=key), 401)


def test_an_address_over_its_failed_auth_budget_gets_no_token(lean, owner, tokens):
    key = {"X-API-Key": owner.api_key}
    assert lean.post(tokens, json={"name": "A"}, headers=key).status_code == 200
    window = failure_window("127.0.0.1")
    bad = {"X-API-Key": "pk_live_" + "x" * 40}
    for _ in range(AUTH_FAILURES_ALLOWED):
        envelope(lean.post(tokens, json={"name": "A"}, headers=bad), 401)
    assert ratelimit.used(window) == AUTH_FAILURES_ALLOWED  # each failure counted once
    envelope(lean.post(tokens, json={"name": "B"}, headers=key), 429)  # even a good key
    assert not Participant.objects.filter(name="B").exists()


def test_a_room_that_must_go_live_or_has_ended_goes_to_django(lean, owner, tokens, room, livekit):
    key = {"X-API-Key": owner.api_key}
    assert lean.post(tokens, json={"name": "A"}, headers=key).status_code == 200
    Room.objects.filter(room_id=room["room_id"]).update(status=Room.Status.COMPLETED)
    from parley import hotcache

    hotcache.clear()
    envelope(lean.post(tokens, json={"name": "B"}, headers=key), 409)


NAMES = st.one_of(
    st.text(max_size=130),
    st.sampled_from(["Ann", " Ann ", "", " ", "\x00", "a" * 100, "a" * 101]),
    st.integers(),
    st.none(),
    st.booleans(),
)
IDENTITIES = st.one_of(
    st.text(alphabet="ab-_.@:/ \x00é", max_size=130), st.sampled_from(["x" * 128, "x" * 129])
)
BODIES = st.one_of(
    st.dictionaries(
        st.sampled_from(["name", "identity", "role", "other"]),
        st.one_of(
            NAMES,
            IDENTITIES,
            st.sampled_from(["host", "viewer", "speaker", "owner", "admin", "Host"]),
        ),
    ),
    st.lists(st.integers(), max_size=2),
    st.text(max_size=3),
)


@hsettings(max_examples=300, deadline=None)
@given(BODIES)
def test_fast_path_accepts_only_what_the_serializer_accepts(data):
    """One rule: whatever token_input takes, TokenInputSerializer takes, with equal values."""
    accepted = token_input(data)
    if accepted is None:
        return
    serializer = TokenInputSerializer(data=data)
    assert serializer.is_valid(), (data, serializer.errors)
    name, identity, role = accepted
    assert serializer.validated_data.get("name") == name
    assert serializer.validated_data.get("identity") == identity
    assert serializer.validated_data.get("role") == role


@hsettings(max_examples=200, deadline=None)
@given(BODIES)
def test_serializer_accepts_what_the_fast_path_accepts_for_plain_bodies(data):
    """And no common valid body is left to the slow path: the serializer's valid bodies are
    the fast path's too."""
    serializer = TokenInputSerializer(data=data)
    if serializer.is_valid():
        assert token_input(data) is not None, data


def test_requests_arriving_together_are_answered_in_batches(lean, owner, tokens, livekit):
    key = {"X-API-Key": owner.api_key}
    assert lean.post(tokens, json={"name": "Warm"}, headers=key).status_code == 200
    bodies = [{"name": f"V{i}", "identity": f"v{i}"} for i in range(30)]
    bodies[7] = {"name": "", "identity": "bad"}  # refused, alone, by Django

    async def all_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=lean.app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await asyncio.gather(*(c.post(tokens, json=b, headers=key) for b in bodies))

    before = lean.handler.batches
    responses = asyncio.run(all_at_once())
    assert lean.handler.batches - before < len(bodies)  # some requests shared a batch
    envelope(responses[7], 400, "name")
    ok = [r for i, r in enumerate(responses) if i != 7]
    assert [r.status_code for r in ok] == [200] * 29
    assert sorted(r.json()["identity"] for r in ok) == sorted(f"v{i}" for i in range(30) if i != 7)
    for r in ok:
        assert livekit.verify_join_token(r.json()["token"])["sub"] == r.json()["identity"]
    assert len({r.headers["x-ratelimit-remaining"] for r in responses}) == 30  # once each


def test_learnt_headers_are_relearnt_by_one_request_and_never_twice_too_old(settings):
    from conferences.api.fasttokens import FastTokens

    settings.HOT_CACHE_SECONDS = 0.2
    fast, clock = FastTokens(), [100.0]
    scope = {
        "method": "POST",
        "path": "/api/v1/rooms/r/tokens",
        "scheme": "http",
        "headers": [(b"host", b"example.test")],
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("conferences.api.fasttokens.time.monotonic", lambda: clock[0])
        assert fast._headers_for(scope) is None  # never seen: the full path answers
        fast.learn(scope, 200, [(b"Content-Security-Policy", b"old")])
        assert fast._headers_for(scope) == [(b"content-security-policy", b"old")]
        assert fast._headers_for({**scope, "scheme": "https"}) is None  # another origin
        clock[0] = 100.25  # too old: one request relearns, the others keep them meanwhile
        assert fast._headers_for(scope) is None
        assert fast._headers_for(scope) == [(b"content-security-policy", b"old")]
        fast.learn(scope, 200, [(b"Content-Security-Policy", b"new")])
        assert fast._headers_for(scope) == [(b"content-security-policy", b"new")]
        clock[0] = 100.5
        assert fast._headers_for(scope) is None  # the relearning fails (the host is gone) ...
        fast.learn(scope, 400, [(b"Content-Security-Policy", b"bad")])
        assert fast._headers_for(scope) == [(b"content-security-policy", b"new")]
        clock[0] = 100.65  # ... and twice HOT_CACHE_SECONDS after learning: the full path
        assert all(fast._headers_for(scope) is None for _ in range(3))


def test_a_batch_across_the_allowance_and_with_one_identity_twice(lean, owner, tokens, livekit):
    from django.core.cache import cache

    key = {"X-API-Key": owner.api_key}
    assert lean.post(tokens, json={"name": "Warm"}, headers=key).status_code == 200
    limit = owner.tenant.plan.requests_per_hour
    window = ratelimit.api_window(owner.tenant.pk)
    cache.set(window.key, limit - 6, timeout=window.seconds + 60)
    bodies = [{"name": f"V{i}", "identity": f"v{i}"} for i in range(10)]
    bodies[3] = {"name": "Again", "identity": "v1", "role": "viewer"}

    async def all_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=lean.app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await asyncio.gather(*(c.post(tokens, json=b, headers=key) for b in bodies))

    responses = asyncio.run(all_at_once())
    assert sorted(r.status_code for r in responses) == [200] * 6 + [429] * 4
    for r in responses:
        if r.status_code == 429:
            envelope(r, 429)
    assert ratelimit.used(window) == limit + 4  # each counted once
    remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in responses)
    assert remaining == [0, 0, 0, 0, 0, 1, 2, 3, 4, 5]
    granted = {r.json()["identity"] for r in responses if r.status_code == 200}
    rows = {p.identity: p for p in Participant.objects.filter(identity__in=granted)}
    assert set(rows) == granted
    if responses[3].status_code == 200 and responses[1].status_code == 200:
        # v1 twice in one batch: written one after the other, as if alone.
        assert (responses[1].json()["role"], responses[3].json()["role"]) == (
            "participant",
            "viewer",
        )
        assert (rows["v1"].name, rows["v1"].role) == ("Again", "viewer")


def test_interactive_show_viewers_of_a_live_show_are_answered_by_the_fast_path(
    lean, owner, livekit
):
    key = {"X-API-Key": owner.api_key}
    join = "/api/rooms/join"
    host = lean.post(
        join, json={"roomName": "show-1", "participantName": "h", "role": "host"}, headers=key
    )
    assert host.status_code == 200 and lean.full == 1  # the show is created, headers learnt
    first = lean.post(join, json={"roomName": "show-1", "participantName": "v1"}, headers=key)
    assert first.status_code == 200 and lean.full == 1
    second = lean.post(
        join,
        json={"roomName": " show-1 ", "participantName": " v2 ", "role": "viewer"},
        headers=key,
    )
    assert second.status_code == 200, second.text
    assert lean.full == 1  # answered before Django
    assert second.json().keys() == host.json().keys() == {"token", "wsUrl", "roomName", "role"}
    assert (second.json()["roomName"], second.json()["role"]) == ("show-1", "viewer")
    same = {k: v for k, v in host.headers.items() if k not in DYNAMIC}
    assert {k: v for k, v in second.headers.items() if k not in DYNAMIC} == same
    assert "content-security-policy" in same
    claims = livekit.verify_join_token(second.json()["token"])
    assert claims["sub"] == "v2" and claims["video"]["canPublish"] is False
    row = Participant.objects.get(identity="v2")
    assert (row.role, row.room.name) == ("viewer", "show-1")
    # Hosts, unknown shows and bad bodies: Django, in the reference's own error shape.
    taken = lean.post(
        join, json={"roomName": "show-1", "participantName": "h2", "role": "host"}, headers=key
    )
    assert taken.status_code == 409 and taken.json() == {"error": "Room already has a host"}
    bad = lean.post(join, json={"roomName": "show-1"}, headers=key)
    assert bad.json() == {"error": "roomName and participantName are required"}
    new = lean.post(join, json={"roomName": "show-2", "participantName": "v1"}, headers=key)
    assert new.status_code == 200 and Room.objects.filter(name="show-2").exists()
    assert lean.full == 4
    # The v1 route's headers are its own (learnt from its own first answer).
    room = Room.objects.get(name="show-1")
    v1 = lean.post(f"/api/v1/rooms/{room.room_id}/tokens", json={"name": "A"}, headers=key)
    assert v1.status_code == 200 and lean.full == 5
