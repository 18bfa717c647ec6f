"""Item 11 of #17, websocket side: a binary frame, text that is not JSON, a JSON value that is
not an object, deep nesting or a lone surrogate used to close the join page's, host's and
dashboard's sockets abnormally with a logged traceback. Every such frame now gets one error
frame in that socket's shape and the socket stays open and usable; the videochat socket
answers every frame, whatever it holds, once.

Frames come from hypothesis with a fixed seed (derandomize): PARLEY_FUZZ_EXAMPLES examples
per test (a few in `make test`, a few hundred in `make fuzz`)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from conferences import consumers
from conferences.routing import websocket_urlpatterns
from conferences.services import calls
from conferences.videochat import VideochatConsumer
from parley.sockets import JsonSocket
from tests.fuzzing import fuzz_settings
from tests.join_helpers import Browser, make_room
from tests.videochat_helpers import Sock, vouch

fuzz = fuzz_settings(8)

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# Frames every socket must refuse: none of them is one JSON object of plain text.
BAD_FRAMES = st.one_of(
    st.binary(max_size=48).map(lambda b: {"bytes_data": b}),
    st.text(max_size=48)
    .filter(lambda t: not t.lstrip().startswith("{"))
    .map(lambda t: {"text_data": t}),
    JSON.filter(lambda v: not isinstance(v, dict)).map(lambda v: {"text_data": json.dumps(v)}),
    st.integers(65, 5000).map(lambda n: {"text_data": "[" * n + "]" * n}),
    st.integers(65, 5000).map(lambda n: {"text_data": '{"a":' * n + "1" + "}" * n}),
    st.text(max_size=8).map(lambda t: {"text_data": json.dumps({"type": t + "\ud800"})}),
    st.sampled_from(['{"a": NaN}', '{"a": Infinity}', "", "{", '{"a": 1}}', "\ufeff{}"]).map(
        lambda t: {"text_data": t}
    ),
)


def test_every_room_and_dashboard_socket_reads_frames_through_the_one_base():
    """New consumers get the same handling: all but videochat (its own protocol, below)."""
    from dashboard.routing import websocket_urlpatterns as dashboard_routes

    routed = [p.callback.consumer_class for p in websocket_urlpatterns + dashboard_routes]
    assert len(routed) >= 6
    for consumer in routed:
        assert issubclass(consumer, JsonSocket) or consumer is VideochatConsumer, consumer


def _app():
    from dashboard.asgi import application

    return application


def _socket(path: str, client: Client | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    session = client.cookies.get("sessionid") if client is not None else None
    if session is not None:
        headers.append((b"cookie", f"sessionid={session.value}".encode()))
    return WebsocketCommunicator(_app(), path, headers=headers)


async def _refused_then_alive(ws: WebsocketCommunicator, frames, probe: dict, answer) -> None:
    """Each bad frame gets exactly one error frame; then the probe still gets its answer."""
    for frame in frames:
        await _send(ws, frame)
        reply = await ws.receive_json_from(timeout=3)
        assert reply["type"] == "error" and reply["code"] == "INVALID_FRAME", (frame, reply)
        assert reply["message"] and set(reply) == {"type", "code", "message", "field"}
    await ws.send_json_to(probe)
    assert answer(await ws.receive_json_from(timeout=3))
    await ws.disconnect()


async def _send(ws: WebsocketCommunicator, frame: dict[str, Any]) -> None:
    """One frame as the server hands it over (an empty one included, which `send_to` refuses)."""
    if "bytes_data" in frame:
        await ws.send_input({"type": "websocket.receive", "bytes": frame["bytes_data"]})
    else:
        await ws.send_input({"type": "websocket.receive", "text": frame["text_data"]})


class Sockets:
    """The join page's status, lobby and host sockets and the dashboard's, for one room."""

    def __init__(self, owner, livekit) -> None:
        self.room = make_room(owner, waiting_room_enabled=True)
        self.host = Browser(self.room)
        self.host.host_page()
        self.dashboard = Client()
        self.dashboard.force_login(owner.user)
        self.dashboard.get("/dashboard/")
        self.ips = (f"198.51.{n // 250}.{n % 250 + 1}" for n in itertools.count(10))

    def waiting_guest(self) -> tuple[Browser, str]:
        guest = Browser(self.room, ip=next(self.ips))
        return guest, guest.join("Fuzzy").json()["entry_id"]


@pytest.fixture
def sockets(owner, livekit) -> Sockets:
    return Sockets(owner, livekit)


@pytest.mark.django_db(transaction=True)
@fuzz
@given(frames=st.lists(BAD_FRAMES, min_size=1, max_size=6))
def test_room_and_dashboard_sockets_refuse_bad_frames_and_stay_open(sockets, frames):
    room_id = sockets.room.room_id
    guest, entry_id = sockets.waiting_guest()

    async def scenario():
        status = _socket(f"/ws/rooms/{room_id}/status")
        assert (await status.connect())[0]
        assert (await status.receive_json_from())["type"] == "room"
        await _refused_then_alive(
            status, frames, {"type": "refresh"}, lambda m: m["type"] == "room"
        )

        lobby = _socket(f"/ws/rooms/{room_id}/lobby/{entry_id}", guest.client)
        assert (await lobby.connect())[0]
        assert await lobby.receive_json_from() == {"type": "waiting"}
        await _refused_then_alive(lobby, frames, {}, lambda m: m == {"type": "waiting"})

        host = _socket(f"/ws/rooms/{room_id}/host", sockets.host.client)
        assert (await host.connect())[0]
        assert (await host.receive_json_from())["type"] == "lobby"
        await _refused_then_alive(host, frames, {"type": "refresh"}, lambda m: m["type"] == "lobby")

        dash = _socket("/ws/dashboard", sockets.dashboard)
        assert (await dash.connect())[0]
        await _refused_then_alive(dash, frames, {"type": "ping"}, lambda m: m == {"type": "pong"})

    async_to_sync(scenario)()


HOST_ACTION = st.fixed_dictionaries(
    {"type": st.just("action")},
    optional={
        "action": st.sampled_from([*consumers.HOST_ACTIONS, "explode"]) | JSON,
        "identity": JSON,
        "mic_only": JSON,
        "ref": JSON,
    },
)


@pytest.mark.django_db(transaction=True)
@fuzz
@given(content=HOST_ACTION)
def test_host_actions_answer_done_or_error_whatever_they_hold(sockets, content):
    """The one handler that reads more than a frame's type: any content is a done or an
    error frame (the same services and rules as the host API), never an exception."""
    session = sockets.host.client.session
    reply = consumers._host_action(session, None, sockets.room.room_id, content)
    assert reply is not None and reply["type"] in ("done", "error"), reply
    json.dumps(reply)  # sendable as it is
    if reply["type"] == "error":
        assert reply["code"] and reply["message"]


VIDEOCHAT_FRAMES = st.one_of(
    BAD_FRAMES,
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["auth", "videochat:invite", "videochat:merge"])
                    | st.text(max_size=70),
            "data": JSON,
        },
        optional={"event": JSON},
    ).map(lambda f: {"text_data": json.dumps(f)}),
)  # fmt: skip


@pytest.fixture
def call_token(owner, settings) -> str:
    settings.VIDEOCHAT_RATE_PER_SECOND = 10_000  # the flood limit is tested on its own
    settings.VIDEOCHAT_BURST = 10_000
    return vouch(owner, "fuzzy")  # once: every example's socket authenticates with it


@pytest.mark.django_db(transaction=True)
@fuzz
@given(frames=st.lists(VIDEOCHAT_FRAMES, min_size=1, max_size=6))
def test_the_videochat_socket_answers_every_frame_once(call_token, frames):
    token = call_token

    async def scenario():
        sock = Sock(token)
        assert (await sock.open())["error"]["status"] is False
        for frame in frames:
            await _send(sock.ws, frame)
            answer = json.loads(await sock.ws.receive_from(timeout=3))
            assert set(answer) == {"type", "data", "error", "event"}, (frame, answer)
            refused = "bytes_data" in frame or not _is_object(frame["text_data"])
            if refused:
                assert answer["error"]["code"] == calls.INVALID_FRAME, (frame, answer)
        answer = await sock.call("videochat:nope", {})
        assert answer["error"]["code"] == calls.UNKNOWN_TYPE  # still open, still answering
        await sock.close()

    async_to_sync(scenario)()


def _is_object(text: str) -> bool:
    try:
        value: Any = json.loads(text)
        json.dumps(value, ensure_ascii=False).encode()
    except (ValueError, RecursionError, UnicodeEncodeError):
        return False
    return isinstance(value, dict) and not text.startswith("\ufeff")


@pytest.mark.django_db(transaction=True)
def test_a_database_write_never_sees_a_lone_surrogate(owner, livekit):
    """The frame is refused before any handler runs: nothing of it reaches a service."""
    room = make_room(owner, waiting_room_enabled=True)
    host = Browser(room)
    host.host_page()

    async def scenario():
        ws = _socket(f"/ws/rooms/{room.room_id}/host", host.client)
        assert (await ws.connect())[0]
        await ws.receive_json_from()
        await ws.send_to(text_data='{"type": "action", "action": "remove", "identity": "\\ud800"}')
        reply = await ws.receive_json_from(timeout=3)
        assert reply["code"] == "INVALID_FRAME" and "surrogate" in reply["message"]
        await ws.disconnect()

    async_to_sync(scenario)()
