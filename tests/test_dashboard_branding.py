"""Branding: product name, colours with the contrast rule, logo by URL or upload, white label
in emails, and the custom domain: TXT verification against a DNS double, then join pages on
that host (and nothing else there)."""

from __future__ import annotations

import struct
import zlib

import pytest
from django.core import mail
from django.test import Client

from accounts import services as account_services
from accounts.models import Membership
from branding.models import Brand, BrandLogo, CustomDomain
from branding.selectors import brand_for_room
from branding.services import contrast
from tests.dashboard_cast import Cast
from tests.dns_double import DnsDouble


@pytest.fixture(scope="session")
def _dns_server():
    server = DnsDouble().start()
    yield server
    server.stop()


@pytest.fixture
def dns(_dns_server, settings) -> DnsDouble:
    _dns_server.reset()
    settings.DNS_NAMESERVERS = [_dns_server.address]
    settings.DNS_TIMEOUT = 1.0
    return _dns_server


def png(width: int = 2, height: int = 2) -> bytes:
    """A tiny valid PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


BRAND = {
    "product_name": "Acme Meet",
    "primary_color": "#1f45c4",
    "accent_color": "#0f766e",
    "logo_url": "https://cdn.acme.test/logo.png",
}


def test_contrast_ratio():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#2f5bea", "#ffffff"), 1) == 5.5
    assert contrast("#ffffff", "#ffffff") == 1.0


def test_brand_is_saved_and_shown_on_join_pages(cast: Cast):
    client = cast.client("admin")
    response = client.post("/dashboard/branding/", BRAND)
    assert response.status_code == 302
    brand = Brand.objects.get(tenant=cast.tenant)
    assert (brand.product_name, brand.primary_color, brand.logo_url) == (
        "Acme Meet", "#1f45c4", "https://cdn.acme.test/logo.png"
    )  # fmt: skip
    seen = brand_for_room(cast.room)
    assert seen.product_name == "Acme Meet" and seen.primary_color == "#1f45c4"
    page = Client().get(f"/room/{cast.room.room_id}").content.decode()
    assert "Acme Meet" in page


def test_low_contrast_primary_is_refused_and_input_kept(cast: Cast):
    client = cast.client("owner")
    response = client.post("/dashboard/branding/", {**BRAND, "primary_color": "#ffd400"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "pick a darker colour" in page and 'value="#ffd400"' in page
    assert 'value="Acme Meet"' in page
    assert not Brand.objects.filter(tenant=cast.tenant).exists()


@pytest.mark.parametrize("bad", ["blue", "#12345", "#12345g", "javascript:x"])
def test_colours_must_be_hex(cast: Cast, bad: str):
    response = cast.client("owner").post("/dashboard/branding/", {**BRAND, "accent_color": bad})
    assert response.status_code == 400 and "Use a colour like" in response.content.decode()


def test_logo_upload_is_served_and_replaces_the_url(cast: Cast):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = cast.client("admin")
    image = png()
    upload = SimpleUploadedFile("logo.png", image, content_type="image/png")
    response = client.post("/dashboard/branding/", {**BRAND, "logo_url": "", "logo": upload})
    assert response.status_code == 302
    stored = BrandLogo.objects.get(tenant=cast.tenant)
    brand = Brand.objects.get(tenant=cast.tenant)
    assert brand.logo_url == f"http://testserver/brand/logo/{stored.sha}"
    served = Client().get(f"/brand/logo/{stored.sha}")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served.content == image and "immutable" in served["Cache-Control"]
    assert served["X-Content-Type-Options"] == "nosniff"
    # Saving again without touching the URL keeps the upload.
    assert client.post("/dashboard/branding/", {**BRAND, "logo_url": ""}).status_code == 302
    assert BrandLogo.objects.filter(tenant=cast.tenant).exists()
    # Removing asks first, then removes.
    assert client.post("/dashboard/branding/logo/").status_code == 200
    assert client.post("/dashboard/branding/logo/", {"confirm": "yes"}).status_code == 302
    assert not BrandLogo.objects.filter(tenant=cast.tenant).exists()
    assert Brand.objects.get(tenant=cast.tenant).logo_url == ""
    assert Client().get(f"/brand/logo/{stored.sha}").status_code == 404


@pytest.mark.parametrize(
    "content, message",
    [(b"<svg onload='alert(1)'></svg>", "PNG, JPEG, GIF or WebP"),
     (b"\x89PNG\r\n\x1a\n" + b"0" * (600 * 1024), "at most 512 KB")],
)  # fmt: skip
def test_bad_logo_uploads_are_refused(cast: Cast, content: bytes, message: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("logo.svg", content, content_type="image/svg+xml")
    response = cast.client("owner").post("/dashboard/branding/", {**BRAND, "logo": upload})
    assert response.status_code == 400 and message in response.content.decode()
    assert not BrandLogo.objects.exists()
    assert not Brand.objects.filter(tenant=cast.tenant).exists()  # nothing half-saved


def test_white_label_hides_parley_in_invitation_emails(cast: Cast):
    owner = Membership.objects.get(user=cast.users["owner"], tenant=cast.tenant)
    cast.client("owner").post("/dashboard/branding/", {**BRAND, "white_label": "on"})
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        account_services.invite_member(
            actor=owner, tenant=cast.tenant, email="guest@x.test", role="member",
            base_url="https://app.test",
        )  # fmt: skip
    message = mail.outbox[-1]
    text = message.subject + message.body + message.from_email
    assert "Acme Meet" in text and "Parley" not in text
    assert "https://app.test/dashboard/invitations/" in message.body


# --- custom domain ----------------------------------------------------------------------------


def test_domain_is_verified_by_its_txt_record(cast: Cast, dns: DnsDouble):
    client = cast.client("admin")
    response = client.post("/dashboard/branding/domain/", {"domain": "https://Meet.Acme.test/"})
    assert response.status_code == 302
    claim = CustomDomain.objects.get(tenant=cast.tenant)
    assert claim.domain == "meet.acme.test" and claim.verified_at is None
    page = client.get("/dashboard/branding/").content.decode()
    assert (
        "_parley-challenge.meet.acme.test" in page and f"parley-verification={claim.token}" in page
    )

    # Not there yet: the page says so, nothing is verified.
    failed = client.post("/dashboard/branding/domain/verify/", follow=True).content.decode()
    assert "No TXT record" in failed
    assert dns.queries == ["_parley-challenge.meet.acme.test"]
    claim.refresh_from_db()
    assert claim.verified_at is None and claim.last_error

    dns.set_txt(
        "_parley-challenge.meet.acme.test", "something-else", f"parley-verification={claim.token}"
    )
    done = client.post("/dashboard/branding/domain/verify/", follow=True).content.decode()
    assert "is verified" in done
    claim.refresh_from_db()
    assert claim.verified_at is not None
    # Join links now use the domain.
    detail = client.get(f"/dashboard/rooms/{cast.room.room_id}/").content.decode()
    assert f"http://meet.acme.test/room/{cast.room.room_id}" in detail


def test_dns_timeout_is_a_message(cast: Cast, dns: DnsDouble):
    cast.client("admin").post("/dashboard/branding/domain/", {"domain": "meet.acme.test"})
    dns.answering = False
    page = cast.client("admin").post("/dashboard/branding/domain/verify/", follow=True)
    assert "DNS did not answer" in page.content.decode()


@pytest.mark.parametrize("bad", ["localhost", "not a domain", "acme", "testserver", "1.2.3.4"])
def test_bad_domains_are_refused(cast: Cast, bad: str):
    response = cast.client("admin").post("/dashboard/branding/domain/", {"domain": bad})
    assert response.status_code == 400
    assert not CustomDomain.objects.exists()


def test_a_verified_domain_belongs_to_one_tenant(cast: Cast, dns: DnsDouble):
    from django.utils import timezone

    CustomDomain.objects.create(tenant=cast.other, domain="meet.acme.test",
                                verified_at=timezone.now())  # fmt: skip
    response = cast.client("admin").post(
        "/dashboard/branding/domain/", {"domain": "meet.acme.test"}
    )
    assert response.status_code == 400
    assert "Another workspace" in response.content.decode()


def _verified(cast: Cast, domain: str = "meet.acme.test") -> None:
    from django.utils import timezone

    CustomDomain.objects.create(tenant=cast.tenant, domain=domain, verified_at=timezone.now())


def test_join_pages_answer_on_the_verified_domain(cast: Cast):
    _verified(cast)
    client = Client(HTTP_HOST="meet.acme.test")
    page = client.get(f"/room/{cast.room.room_id}")
    assert page.status_code == 200 and b"Acme weekly" in page.content
    # Another tenant's room, the dashboard, the API and the admin do not answer there.
    assert client.get(f"/room/{cast.other_room.room_id}").status_code == 404
    for path in ["/dashboard/", "/api/v1/rooms", "/admin/", "/accounts/login/", "/"]:
        assert client.get(path).status_code == 404, path
    # An unverified or unknown host is refused as before.
    assert Client(HTTP_HOST="evil.test").get(f"/room/{cast.room.room_id}").status_code == 400
    CustomDomain.objects.filter(tenant=cast.tenant).update(verified_at=None)
    from django.core.cache import cache

    cache.clear()
    assert client.get(f"/room/{cast.room.room_id}").status_code == 400


def test_join_page_posts_work_on_the_custom_domain(cast: Cast):
    """CSRF-protected calls of the join page pass on the domain (its Origin is the host)."""
    _verified(cast)
    client = Client(HTTP_HOST="meet.acme.test", enforce_csrf_checks=True)
    client.get(f"/room/{cast.room.room_id}")
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/room/{cast.room.room_id}/join",
        data='{"name": "Guest"}',
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
        HTTP_ORIGIN="http://meet.acme.test",
    )
    assert response.status_code in (200, 202), response.content


def test_removing_the_domain_asks_then_stops_serving(cast: Cast):
    _verified(cast)
    client = cast.client("owner")
    assert client.post("/dashboard/branding/domain/remove/").status_code == 200
    assert CustomDomain.objects.exists()
    assert client.post("/dashboard/branding/domain/remove/", {"confirm": "yes"}).status_code == 302
    assert not CustomDomain.objects.exists()
    on_domain = Client(HTTP_HOST="meet.acme.test").get(f"/room/{cast.room.room_id}")
    assert on_domain.status_code == 400


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin, accepted",
    [(b"http://testserver", True), (b"http://meet.acme.test", True),
     (b"http://evil.test", False), (None, False)],
)  # fmt: skip
def test_websocket_origins(origin, accepted):
    """Join-page sockets open from our hosts and verified custom domains only (the custom
    domain for its own tenant's rooms: tests/security/test_sockets_origin.py)."""
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator
    from django.utils import timezone

    from branding.middleware import CustomDomainOriginValidator
    from conferences.services import rooms as room_services
    from tests.conftest import make_member

    acme = make_member("Acme")
    CustomDomain.objects.create(tenant=acme.tenant, domain="meet.acme.test",
                                verified_at=timezone.now())  # fmt: skip
    room = room_services.create_room(tenant=acme.tenant, data={"name": "Acme weekly"})

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})

    async def scenario():
        headers = [(b"origin", origin)] if origin else []
        communicator = WebsocketCommunicator(CustomDomainOriginValidator(app),
                                             f"/ws/rooms/{room.room_id}/status",
                                             headers=headers)  # fmt: skip
        connected, _ = await communicator.connect()
        assert connected is accepted
        await communicator.disconnect()

    async_to_sync(scenario)()
