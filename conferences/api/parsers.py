"""JSON parsing that turns every malformed body into a 400, never a 500."""

from __future__ import annotations

import io
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 64  # no request of ours nests deeper than a few levels
_STRING = re.compile(rb'"(?:\\.|[^"\\])*"')
_BRACKET = re.compile(rb"[\[\]{}]")


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


class SafeJSONParser(JSONParser):
    """DRF's parser, plus: absurdly nested JSON is a parse error, not a crash."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read()
        if too_deep(body):
            raise ParseError("JSON nested too deeply")
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON nested too deeply") from None
