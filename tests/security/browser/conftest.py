"""The browser harness of tests/browser/ for the security checks that need real Chromium.
Re-exported from a conftest of this package so that its package-scoped browser (whose
Playwright loop blocks synchronous Django code on the main thread) is closed when this
package's tests end, before the rest of tests/security/ runs."""

from tests.browser.conftest import (  # noqa: F401 -- fixtures
    _playwright_browser,
    live_server_asgi,
    open_page,
)
