"""The dashboard in real headless Chromium (harness: tests/browser/conftest.py).

* The whole first-run path: sign up, verify the email from the console backend's output,
  brand the workspace, create a room from a preset, copy its join link with the page's copy
  button, open the link as a guest and see the tenant's branding.
* An accessibility check of the dashboard, account and join pages with axe-core (npm,
  node_modules/axe-core): no serious or critical violation.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import off_loop

pytestmark = pytest.mark.browser
expect.set_options(timeout=10_000)

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "a-Long-pass-123"


def _confirmation_link(output: str) -> str:
    links = re.findall(r"https?://\S+/accounts/confirm-email/\S+", output)
    assert links, "no confirmation email was printed by the console backend"
    return links[-1]


def test_sign_up_verify_create_from_preset_copy_and_join(
    _playwright_browser, live_server_asgi, livekit, transactional_db, settings, capsys
):
    from tests.conftest import ensure_plans

    off_loop(ensure_plans)  # sign-up puts the new workspace on the Free plan
    # Emails go to the console, as with `make run`: the test reads them from stdout.
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    base = live_server_asgi.url
    context = _playwright_browser.new_context(base_url=base)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        # 1. sign up
        page.goto("/accounts/signup/")
        page.fill("#id_email", "founder@startup.test")
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_contain_text("Verify")

        # 2. verify the email with the link the console backend printed
        link = _confirmation_link(capsys.readouterr().out)
        page.goto(
            link.replace("http://testserver", base).replace("http://127.0.0.1", "http://127.0.0.1")
        )
        page.click("button[type=submit]")
        if "/accounts/login/" in page.url:
            page.fill("#id_login", "founder@startup.test")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/dashboard/$"))
        expect(page.locator("h1")).to_have_text("Overview")

        # 3. brand the workspace
        page.click("nav >> text=Branding")
        page.fill("#id_product_name", "Startup Meet")
        page.fill("#id_primary_color", "#1f45c4")
        expect(page.locator("#primary-contrast")).to_contain_text("passes AA")
        page.click("text=Save branding")
        expect(page.locator(".messages")).to_contain_text("Branding saved")

        # 4. create a room from the webinar preset
        page.click("nav >> text=Rooms")
        page.click("text=New room")
        page.click("[data-preset=webinar]")
        expect(page.locator("#id_name")).to_have_value("Guest webinar room")
        expect(page.locator("#id_max_participants")).to_have_value("10")  # Free plan's cap
        expect(page.locator("#id_allow_webinar_mode")).to_be_checked()
        expect(page.locator("#id_screen_sharing_enabled")).not_to_be_checked()
        page.click("text=Create room")
        expect(page.locator("h1")).to_have_text("Guest webinar room")
        expect(page.locator(".messages")).to_contain_text("created")

        # 5. copy the join link with the page's button
        page.click("[data-copy='#join-link']")
        expect(page.locator("[data-copy='#join-link']")).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.input_value("#join-link")
        assert re.fullmatch(rf"{re.escape(base)}/room/[A-Za-z0-9]{{12}}", copied), copied

        # 6. open it as a guest (another browser) and see the tenant's branding
        guest = _playwright_browser.new_context()
        try:
            join = guest.new_page()
            join.goto(copied)
            expect(join.locator(".brand-name")).to_have_text("Startup Meet")
            expect(join).to_have_title(re.compile("Startup Meet"))
            brand = join.evaluate(
                "getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()"
            )
            assert brand == "#1f45c4"
            assert "Parley" not in join.locator(".room-brand").inner_text()
        finally:
            guest.close()
    finally:
        context.close()
    assert not errors, errors


# --- accessibility ---------------------------------------------------------------------------


def _seed():
    """A tenant with something on every page: rooms (one live), a schedule, a key, members,
    an invitation, usage, branding and a pending custom domain."""
    from allauth.account.models import EmailAddress
    from django.test import Client

    from accounts import services as account_services
    from accounts.models import Membership, UsageDay, User
    from branding.models import Brand, CustomDomain
    from conferences.api.v1.serializers import RoomInputSerializer
    from conferences.services import rooms as room_services
    from tests.conftest import make_member

    acme = make_member("Acme")
    for i in range(3):
        room_services.create_room(tenant=acme.tenant, data={"name": f"Room {i}"})
    live = room_services.create_room(tenant=acme.tenant, data={"name": "Live standup"})
    room_services.start_room(room=live)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    serializer = RoomInputSerializer(
        data={"name": "Weekly review", "room_type": "scheduled", "start_time": start.isoformat(),
              "recurring": True, "recurrence": "FREQ=WEEKLY;COUNT=6"},
        context={"tenant": acme.tenant},
    )  # fmt: skip
    assert serializer.is_valid(), serializer.errors
    room_services.create_room(tenant=acme.tenant, data=serializer.validated_data)
    viewer = User.objects.create_user(username="vic", email="vic@acme.test", password=PASSWORD)
    EmailAddress.objects.create(user=viewer, email=viewer.email, verified=True, primary=True)
    Membership.objects.create(user=viewer, tenant=acme.tenant, role="viewer")
    owner = Membership.objects.get(user=acme.user, tenant=acme.tenant)
    account_services.invite_member(actor=owner, tenant=acme.tenant, email="new@acme.test",
                                   role="member", base_url="http://x")  # fmt: skip
    today = dt.datetime.now(dt.UTC).date()
    for i in range(10):
        UsageDay.objects.create(tenant=acme.tenant, day=today - dt.timedelta(days=i),
                                participant_minutes=30 * (i + 1), peak_participants=i)  # fmt: skip
    Brand.objects.create(tenant=acme.tenant, product_name="Acme Meet", primary_color="#1f45c4",
                         accent_color="#0f766e")  # fmt: skip
    CustomDomain.objects.create(tenant=acme.tenant, domain="meet.acme.test")
    client = Client()
    client.force_login(acme.user)
    return {"session": client.cookies["sessionid"].value, "room": live.room_id,
            "host": live.host_secret}  # fmt: skip


def _axe(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(
             v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def test_dashboard_account_and_join_pages_pass_axe(
    _playwright_browser, live_server_asgi, livekit, transactional_db
):
    assert AXE.exists(), "run `npm ci` to install axe-core"
    seeded = off_loop(_seed)
    base = live_server_asgi.url
    # axe-core goes in as an inline script: these contexts bypass the pages' CSP (which is
    # checked on its own in tests/security/browser/test_headers_csp.py).
    signed_in = _playwright_browser.new_context(base_url=base, bypass_csp=True)
    signed_in.add_cookies([{"name": "sessionid", "value": seeded["session"], "url": base}])
    anonymous = _playwright_browser.new_context(base_url=base, bypass_csp=True)
    room = seeded["room"]
    pages = [
        (signed_in, "/dashboard/"),
        (signed_in, "/dashboard/rooms/"),
        (signed_in, "/dashboard/rooms/new/"),
        (signed_in, f"/dashboard/rooms/{room}/"),
        (signed_in, f"/dashboard/rooms/{room}/edit/"),
        (signed_in, "/dashboard/schedule/"),
        (signed_in, "/dashboard/schedule/?view=week"),
        (signed_in, "/dashboard/api-keys/"),
        (signed_in, "/dashboard/members/"),
        (signed_in, "/dashboard/usage/"),
        (signed_in, "/dashboard/branding/"),
        (signed_in, "/dashboard/settings/"),
        (signed_in, "/accounts/2fa/"),
        (anonymous, "/accounts/login/"),
        (anonymous, "/accounts/signup/"),
        (anonymous, "/accounts/password/reset/"),
        (anonymous, f"/room/{room}"),
        (anonymous, f"/room/{room}/host/{seeded['host']}"),
    ]
    found: dict[str, list[dict]] = {}
    try:
        for context, path in pages:
            page = context.new_page()
            page.goto(path)
            page.wait_for_load_state("load")
            bad = _axe(page)
            if bad:
                found[path] = bad
            page.close()
        # A form with errors on it, too.
        page = signed_in.new_page()
        page.goto("/dashboard/rooms/new/")
        page.fill("#id_name", "x")
        page.click("text=Create room")
        expect(page.locator("#form-errors")).to_be_visible()
        bad = _axe(page)
        if bad:
            found["/dashboard/rooms/new/ (errors)"] = bad
    finally:
        signed_in.close()
        anonymous.close()
    assert not found, found
