"""JSON parsing that turns every malformed body into a 400, never a 500."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from parley.jsontext import MAX_DEPTH, InvalidJSON, loads, too_deep

__all__ = ["MAX_DEPTH", "SafeJSONParser", "too_deep"]


class SafeJSONParser(JSONParser):
    """DRF's parser on `parley.jsontext.loads`: absurd nesting, NaN, non-UTF-8 text and lone
    surrogates are parse errors (each surface's 400), not crashes."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return loads(stream.read())
        except InvalidJSON as exc:
            raise ParseError(str(exc)) from None
