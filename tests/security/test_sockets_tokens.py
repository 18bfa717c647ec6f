"""Issue 17, item 14, as an attacker would try it: someone holding a join token (leaked
from an old access log, say) cannot use the URL form of the stage socket. A token in its URL
is refused at the handshake, even a valid one; a socket opened without sending one is closed
when the deadline passes, and one that sends anything else first is closed at once. The
page's own way (tests/security/browser/test_sockets_browser.py) sends it as the first frame.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from tests.join_helpers import Browser, make_room


def _app():
    from dashboard.asgi import application

    return application


def _socket(path: str) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    return WebsocketCommunicator(_app(), path, headers=headers)


@pytest.mark.django_db(transaction=True)
def test_a_leaked_token_cannot_open_the_stage_socket_through_its_url(owner, livekit, settings):
    room = make_room(owner, allow_webinar_mode=True)
    joined = Browser(room).join("Vera").json()
    livekit.join(joined["token"], room=room.room_id)
    settings.STAGE_AUTH_SECONDS = 0.3
    path = f"/ws/rooms/{room.room_id}/stage"

    async def scenario() -> None:
        # The old URL form, with a valid token: refused before any message.
        for query in (f"?token={joined['token']}", f"?access_token={joined['token']}"):
            ws = _socket(path + query)
            assert await ws.connect() == (False, 4403), query
        # The bare URL gives nothing: closed when no token comes in time...
        ws = _socket(path)
        assert (await ws.connect())[0]
        assert await ws.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
        # ... or at once when something else comes first; no state is ever sent.
        ws = _socket(path)
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "refresh"})
        assert await ws.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
        # The page's way works.
        ws = _socket(path)
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "auth", "token": joined["token"]})
        state = await ws.receive_json_from(timeout=3)
        assert state["type"] == "stage" and state["identity"] == joined["identity"]
        await ws.disconnect()

    async_to_sync(scenario)()
