"""One JSON reader for everything a client sends: API bodies (DRF's parser), the join pages'
JSON endpoints and websocket frames. Whatever it refuses is the client's mistake (a 400 or
an error frame), never a 500 or a crashed socket."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # no request of ours nests deeper than a few levels
_STRING = re.compile(rb'"(?:\\.|[^"\\])*"')
_BRACKET = re.compile(rb"[\[\]{}]")


class InvalidJSON(ValueError):
    """Not JSON Parley accepts; the message says why and is safe to show."""


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether `body` nests arrays/objects deeper than `limit` (strings ignored). Checked
    before parsing: the C decoder would otherwise recurse until RecursionError."""
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not a JSON value")


def loads(data: bytes | str, *, limit: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON text. Raises InvalidJSON for text that is not UTF-8, not JSON, nested
    deeper than `limit`, uses NaN/Infinity, or holds a lone surrogate (`"\\ud800"`): such a
    string cannot be written to the database or encoded as UTF-8, and used to answer 500."""
    try:
        raw = data if isinstance(data, bytes) else data.encode("utf-8")
        text = raw.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeError:
        raise InvalidJSON("The JSON text is not UTF-8") from None
    if too_deep(raw, limit):
        raise InvalidJSON("JSON nested too deeply")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidJSON("JSON nested too deeply") from None
    except InvalidJSON:
        raise
    except ValueError as exc:
        raise InvalidJSON(f"Malformed JSON: {str(exc)[:100]}") from None
    if "\\u" in text and _has_lone_surrogate(value):
        raise InvalidJSON("A JSON string holds a lone surrogate (\\ud800-\\udfff)")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
