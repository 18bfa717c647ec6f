"""Browser tests: Debian's headless Chromium driven by Playwright (Python), fake camera and
microphone, against Parley served for real by uvicorn (HTTP and websockets, the project's
ASGI routing) in a thread of this process, on the same test database.

No LiveKit server runs here: each page's connection to LIVEKIT_URL (`/rtc/v1?access_token=`)
is intercepted with `page.route_web_socket`, and the token it carries is checked with the
LiveKit double's `verify_join_token`, the way livekit-server checks it on connect.

One browser serves the whole package (started on first use, closed after the last browser
test). Playwright's synchronous API keeps an event loop running on the main thread while
it is started, so Django code that the tests run themselves goes through `off_loop`, on a
worker thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
T = TypeVar("T")


def _unavailable(reason: str) -> None:
    # On CI a missing browser is a failure, never a silent skip.
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run on CI: {reason}")
    pytest.skip(reason)


_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="off-loop")


def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run Django code (ORM, services) on a worker thread, away from Playwright's loop."""

    def run() -> T:
        from django.db import connections

        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return _pool.submit(run).result(timeout=60)


@pytest.fixture(scope="package")
def _playwright_browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with launch_chromium(sync_playwright, CHROMIUM_ARGS) as browser:
        yield browser


@contextlib.contextmanager
def launch_chromium(sync_playwright: Any, args: list[str]) -> Iterator[Any]:
    """Debian's Chromium under Playwright with `args`, closed (and the environment restored)
    on exit. Shared by the browser and the real-media tests."""
    # The Playwright loop on this thread makes Django think it is in async code; test code
    # here is plain synchronous code, so allow it (fixtures set up data on this thread).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class LiveServer:
    """The project's ASGI app (static files served as runserver would) on 127.0.0.1."""

    def __init__(self) -> None:
        import uvicorn
        from channels.routing import ProtocolTypeRouter
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
        from django.core.handlers.asgi import ASGIHandler

        from dashboard.asgi import application

        app = ProtocolTypeRouter(
            {
                "http": ASGIStaticFilesHandler(ASGIHandler()),
                "websocket": application.application_mapping["websocket"],
            }
        )
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture(scope="package")
def live_server_asgi(_playwright_browser, django_db_setup) -> Iterator[LiveServer]:
    server = LiveServer()
    yield server
    server.stop()


@dataclass
class Intercepted:
    """Connections a page opened to LiveKit's signalling endpoint (never reaching it)."""

    urls: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)  # uncaught errors in the page

    def tokens(self) -> list[str]:
        return [
            urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["access_token"][0]
            for url in self.urls
        ]


@pytest.fixture
def open_page(_playwright_browser, live_server_asgi, livekit, transactional_db):
    """open_page(path) -> (page, intercepted): a fresh browser context per call (its own
    cookies, like another person's browser), LiveKit connections intercepted."""
    contexts = []
    opened: list[Intercepted] = []

    def open_(path: str):
        context = _playwright_browser.new_context(base_url=live_server_asgi.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        intercepted = Intercepted()
        pattern = re.compile(rf"^ws://127\.0\.0\.1:{livekit.port}/rtc(/v1)?\?")

        def on_livekit(ws) -> None:
            intercepted.urls.append(ws.url)
            ws.close(code=1011, reason="no LiveKit server in tests")

        page.route_web_socket(pattern, on_livekit)
        page.on("pageerror", lambda error: intercepted.page_errors.append(str(error)))
        opened.append(intercepted)
        page.goto(path)
        return page, intercepted

    yield open_
    for context in contexts:
        context.close()
    errors = [e for i in opened for e in i.page_errors]
    assert not errors, f"uncaught errors in the page: {errors}"


def wait_until(page, condition: Callable[[], Any], timeout: float = 10.0, what: str = ""):
    """Poll `condition` while letting the page's events flow; its first truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        page.wait_for_timeout(50)
