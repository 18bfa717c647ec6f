"""kombu's filesystem transport, with atomic writes.

The stock transport creates each message file in the folder workers read and then writes it,
so a worker can read it empty and crash with a JSONDecodeError (celery/kombu#1551). Here the
message is written under a name the reader skips and renamed into place, which is atomic.
Registered as the `parleyfs://` broker of the embedded (no Redis) mode.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):  # type: ignore[override]
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: `_get` only takes names whose part after the first dot is
        # "<queue>.msg", so the half-written file is never picked up.
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> None:
    TRANSPORT_ALIASES["parleyfs"] = "dashboard.kombu_fs:Transport"
