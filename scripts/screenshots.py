"""`make screenshots`: pictures of the dashboard's main pages, in docs/screenshots/.

Serves Parley as `make bench` does (bench/harness.py: a temporary SQLite database, uvicorn on
127.0.0.1, the LiveKit double instead of LiveKit), seeds a demo workspace through the
services, then drives Debian's Chromium (Playwright, /usr/bin/chromium) at 1440x900.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from harness import AppServer  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        "--disable-component-update", "--disable-sync", "--hide-scrollbars"]  # fmt: skip

SEED = Path(__file__).with_name("screenshots_seed.py")  # run with `manage.py shell -c`

PAGES = [
    ("overview", "/dashboard/"),
    ("rooms", "/dashboard/rooms/"),
    ("room-new-preset", "/dashboard/rooms/new/?preset=webinar"),
    ("room-detail", "/dashboard/rooms/{room}/"),
    ("schedule-month", "/dashboard/schedule/"),
    ("schedule-week", "/dashboard/schedule/?view=week"),
    ("api-keys", "/dashboard/api-keys/"),
    ("members", "/dashboard/members/"),
    ("usage", "/dashboard/usage/"),
    ("branding", "/dashboard/branding/"),
]


def main() -> int:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium")
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with AppServer() as server:
        seeded = json.loads(server.manage("shell", "-c", SEED.read_text()).strip().splitlines()[-1])
        for room_id in seeded["live"]:
            for identity, name in [("ana", "Ana"), ("ben", "Ben"), ("chloe", "Chloé")]:
                server.double.add_participant(room_id, f"{identity}-{room_id[:4]}", name=name,
                                              attributes={"role": "participant"})  # fmt: skip
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            context = browser.new_context(base_url=server.base_url,
                                          viewport={"width": 1440, "height": 900})  # fmt: skip
            context.add_cookies([{"name": "sessionid", "value": seeded["session"],
                                  "url": server.base_url}])  # fmt: skip
            page = context.new_page()
            for name, path in PAGES:
                page.goto(path.format(room=seeded["room"]))
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                print(f"  {name}.png")
            guest = browser.new_context(base_url=server.base_url,
                                        viewport={"width": 1440, "height": 900})  # fmt: skip
            for name, path in [("sign-in", "/accounts/login/"),
                               ("join-page", f"/room/{seeded['room']}")]:  # fmt: skip
                gpage = guest.new_page()
                gpage.goto(path)
                gpage.wait_for_load_state("load")
                gpage.wait_for_timeout(500)
                gpage.screenshot(path=str(OUT / f"{name}.png"))
                print(f"  {name}.png")
            browser.close()
    print(f"Screenshots in {OUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
