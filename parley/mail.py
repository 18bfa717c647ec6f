"""Email header values built from user text (room and workspace names).

Django refuses a header holding a line break (`BadHeaderError`, raised inside `send_mail`),
so a room named "Standup\\nBcc: x" would make every email about it fail. Every header value
Parley builds from user text goes through `header_text` first.
"""

from __future__ import annotations

import re

# Line breaks of every kind (CR, LF, VT, FF, NEL, U+2028/9) and the other control characters.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def header_text(value: str, *, limit: int = 150) -> str:
    """`value` on one line: control characters and line breaks become spaces, runs of white
    space one space, trimmed to at most `limit` characters (with an ellipsis when cut)."""
    text = " ".join(_BREAKS.sub(" ", value).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
