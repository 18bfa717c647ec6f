"""A webhook receiver on 127.0.0.1 for the outbound-webhook tests: records every request
(headers and body) and answers with scripted statuses, delays and bodies."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.arrivals = 0  # requests that reached the handler (answered or not)
        self.script: list[tuple[int, float, bytes, dict[str, str]]] = []  # status, delay, body
        self.default: tuple[int, float, bytes, dict[str, str]] = (200, 0.0, b"ok", {})
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.arrivals += 1
                    step = receiver.script.pop(0) if receiver.script else receiver.default
                status, delay, reply, headers = step
                if delay:
                    time.sleep(delay)
                with receiver.lock:
                    receiver.requests.append(
                        Received(self.path, dict(self.headers.items()), body, time.time())
                    )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                try:
                    self.wfile.write(reply)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def answer(self, *statuses: int, delay: float = 0.0, body: bytes = b"", headers=None) -> None:
        with self.lock:
            for status in statuses:
                self.script.append((status, delay, body, dict(headers or {})))

    def types(self) -> list[str]:
        return [r.json["type"] for r in self.requests]
