"""The one base of Parley's JSON websocket consumers (join page, host, stage, dashboard).

Channels' `AsyncJsonWebsocketConsumer` raises on a binary frame, on text that is not JSON
and (through the decoder's recursion) on deep nesting: the socket closed abnormally and a
traceback was logged. Here every frame is read by `parley.jsontext.loads`; what it refuses,
or a JSON value that is not an object, is answered with an error frame
`{"type": "error", "code": "INVALID_FRAME", "message", "field": null}` and the socket stays
open. `receive_json` only ever sees a dict.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from parley import jsontext

MAX_FRAME_CHARS = 64 * 1024  # no frame of ours is more than a few hundred bytes
INVALID_FRAME = "INVALID_FRAME"


class JsonSocket(AsyncJsonWebsocketConsumer):
    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if text_data is None:
            await self.frame_error("Send JSON text frames, not binary ones")
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.frame_error("Frame too large")
            return
        try:
            content = jsontext.loads(text_data)
        except jsontext.InvalidJSON as exc:
            await self.frame_error(str(exc))
            return
        if not isinstance(content, dict):
            await self.frame_error("A frame is a JSON object")
            return
        await self.receive_json(content, **kwargs)

    async def frame_error(self, message: str) -> None:
        await self.send_json(
            {"type": "error", "code": INVALID_FRAME, "message": message, "field": None}
        )
