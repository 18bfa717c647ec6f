"""Item 11 of #17, HTTP side: input that used to answer 500 now answers each surface's 400.

* A lone surrogate (`"\\ud800"`) in a JSON string: valid JSON, but no UTF-8 text (nor the
  database) can hold it. One reader (`parley.jsontext.loads`) refuses it for DRF's parser
  (v1 and the facades) and the join pages' JSON endpoints (which answered an HTML 500 page).
* `?offset=10**20` overflowed the database's integers.
The dashboard schedule's out-of-range dates are in tests/test_dashboard_live.py; websocket
frames in tests/test_socket_fuzz.py."""

from __future__ import annotations

import pytest

from conferences.models import Room
from parley import jsontext
from tests.conftest import assert_error
from tests.join_helpers import Browser, make_room
from tests.test_callaba import Callaba
from tests.test_callaba import error as callaba_error
from tests.videosdk_helpers import SigningPair, VideoSdkClient, assert_videosdk_error

LONE = '"\\ud800 Weekly"'  # JSON text of a string holding a lone high surrogate


@pytest.mark.parametrize(
    "text",
    [
        '{"name": ' + LONE + "}",
        '{"a": ["x", {"b": "\\udfff"}]}',  # a lone low surrogate, nested
        '{"\\ud800": 1}',  # in a key
        '{"a": NaN}',
        '{"a": -Infinity}',
    ],
)
def test_the_reader_refuses_what_no_utf8_text_holds(text):
    with pytest.raises(jsontext.InvalidJSON):
        jsontext.loads(text.encode())
    with pytest.raises(jsontext.InvalidJSON):
        jsontext.loads(text)


@pytest.mark.parametrize(
    "raw", [b'{"a": "\xed\xa0\x80"}', b'{"a": "\xff"}', b"\xef\xbb\xbf{}", b"[" * 100 + b"]" * 100]
)
def test_the_reader_refuses_bytes_that_are_not_utf8_or_too_deep(raw):
    with pytest.raises(jsontext.InvalidJSON):
        jsontext.loads(raw)


def test_the_reader_keeps_real_text():
    text = '{"name": "\\ud83d\\ude00 caf\\u00e9 \\\\ud800", "n": [1, 2.5, null, true]}'
    assert jsontext.loads(text) == {"name": "😀 café \\ud800", "n": [1, 2.5, None, True]}


@pytest.fixture
def room(owner) -> Room:
    return make_room(owner)


V1_CASES = [
    ("post", "/api/v1/rooms", '{"name": ' + LONE + "}"),
    ("patch", "/api/v1/rooms/{room}", '{"name": ' + LONE + "}"),
    ("post", "/api/v1/rooms/{room}/tokens", '{"name": ' + LONE + "}"),
    ("post", "/api/v1/webhooks", '{"url": "https://example.com/' + LONE[1:-1] + '"}'),
    ("post", "/api/v1/rooms", '{"name": "ok", "whitelist_emails": [' + LONE + "]}"),
]


@pytest.mark.parametrize("method, path, raw", V1_CASES)
def test_v1_answers_the_envelope(api, room, method, path, raw):
    response = api.request(method.upper(), path.format(room=room.room_id), raw=raw)
    assert_error(response, 400)
    assert Room.objects.count() == 1 and Room.objects.get().name == "Standup"


def test_callaba_answers_its_shape(owner):
    response = Callaba(owner.api_key).call("create", '{"name": ' + LONE + "}")
    callaba_error(response, 400, "JSON")
    assert not Room.objects.exists()


def test_videosdk_answers_its_shape(owner):
    sdk = VideoSdkClient(SigningPair(owner.tenant).token())
    assert_videosdk_error(sdk.post("/v2/rooms", raw='{"customRoomId": ' + LONE + "}"), 400)
    assert not Room.objects.exists()


@pytest.mark.parametrize(
    "path, raw",
    [
        ("/api/rooms/show/hand-raise", '{"participantIdentity": ' + LONE + "}"),
        ("/api/rooms/join", '{"roomName": "show", "participantName": ' + LONE + "}"),
    ],
)
def test_interactive_show_answers_its_shape(api, path, raw):
    response = api.request("POST", path, raw=raw)
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"error"} and "JSON" in response.json()["error"]


@pytest.mark.parametrize("action", ["password", "email", "code", "join"])
def test_join_page_endpoints_answer_json_not_an_html_500(owner, livekit, action):
    room = make_room(owner, access_type="password", password="hunter22")
    raw = ('{"password": ' + LONE + ', "name": ' + LONE + "}").encode()
    response = Browser(room).post(action, raw=raw, content_type="application/json")
    assert response["Content-Type"].startswith("application/json")
    assert_error(response, 400, "INVALID_JSON")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/rooms",
        "/api/v1/webhooks",
        "/api/v1/rooms/{room}/occurrences",
    ],
)
@pytest.mark.parametrize("offset", [str(10**20), "9" * 400, "2147483648", "-1"])
def test_huge_offsets_are_400s(api, room, path, offset):
    response = api.get(path.format(room=room.room_id) + f"?offset={offset}")
    error = assert_error(response, 400, field="offset")
    assert "between 0 and 2147483647" in error["message"]


def test_the_largest_offset_is_an_empty_page(api, room):
    body = api.get("/api/v1/rooms?offset=2147483647").json()
    assert body["rooms"] == [] and body["offset"] == 2147483647
