"""The join page as the server renders it: room states, access step, host link, branding,
escaping, and the page's state endpoint."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Membership, User
from branding.models import Brand
from conferences.services import rooms as room_services
from tests.join_helpers import Browser, make_room, page_config


def view_of(response) -> str:
    html = response.content.decode()
    marker = 'id="join-app" class="join-app" data-state="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_open_public_room_shows_the_prejoin(owner, livekit):
    room = make_room(owner)
    response = Browser(room).page()
    assert response.status_code == 200
    assert view_of(response) == "prejoin"
    config = page_config(response)
    assert config["status"] == "open" and config["access"]["granted"] is True
    assert config["isHost"] is False and config["hostSecret"] == ""
    assert config["media"] == {
        "type": "both",
        "videoQuality": "high",
        "audioOnly": False,
        "screenShare": True,
        "chat": True,
    }
    # The livekit-client bundle comes from npm and is served as a static file.
    assert b"vendor/livekit-client/livekit-client.umd.js" in response.content
    assert response["Cache-Control"] == "no-store"


def test_scheduled_room_shows_its_start(owner, livekit):
    start = timezone.now() + dt.timedelta(hours=2)
    room = make_room(owner, room_type="scheduled", start_time=start)
    response = Browser(room).page()
    assert view_of(response) == "scheduled"
    config = page_config(response)
    assert config["status"] == "scheduled"
    assert dt.datetime.fromisoformat(config["startsAt"]) == start.replace(microsecond=0)
    assert b"hasn't started yet" in response.content


def test_completed_room_says_it_ended(owner, livekit):
    room = make_room(owner)
    room_services.start_room(room=room)
    room_services.stop_room(room=room)
    response = Browser(room).page()
    assert view_of(response) == "ended"
    assert b"This meeting has ended" in response.content


def test_full_room_says_so_before_connecting(owner, livekit):
    room = make_room(owner, max_participants=2)
    room_services.start_room(room=room)
    livekit.add_participant(room.room_id, "p1")
    livekit.add_participant(room.room_id, "p2")
    browser = Browser(room)
    response = browser.page()
    assert view_of(response) == "full"
    assert b"This room is full" in response.content
    joined = browser.join()
    assert joined.status_code == 409 and joined.json()["error"]["code"] == "ROOM_FULL"
    livekit.remove_participant_local(room.room_id, "p2")
    assert view_of(browser.page()) == "prejoin"


def test_page_still_renders_when_livekit_is_down(owner, livekit):
    room = make_room(owner)
    room_services.start_room(room=room)
    livekit.down()
    response = Browser(room).page()
    assert response.status_code == 200 and view_of(response) == "prejoin"
    assert page_config(response)["full"] is None


@pytest.mark.parametrize(
    "access, view",
    [
        ({"access_type": "password", "password": "hunter22"}, "password"),
        ({"access_type": "whitelist", "whitelist_emails": ["ann@example.com"]}, "email"),
        ({"access_type": "authenticated"}, "login"),
    ],
)
def test_access_step_comes_first(owner, livekit, access, view):
    room = make_room(owner, **access)
    response = Browser(room).page()
    assert view_of(response) == view
    assert page_config(response)["access"]["granted"] is False


def test_login_link_returns_to_the_room(owner, livekit):
    room = make_room(owner, access_type="authenticated")
    config = Browser(room).config()
    assert config["urls"]["login"] == f"/accounts/login/?next=/room/{room.room_id}"


def test_a_member_passes_an_authenticated_room_and_an_outsider_does_not(owner, outsider, livekit):
    room = make_room(owner, access_type="authenticated")
    viewer = User.objects.create_user("vic", "vic@acme.test", "pw-123456789")
    Membership.objects.create(user=viewer, tenant=owner.tenant, role="viewer")
    client = Client()
    client.force_login(viewer)  # a member who is not a host
    response = client.get(f"/room/{room.room_id}")
    assert view_of(response) == "prejoin"
    assert page_config(response)["isHost"] is False
    stranger = Client()
    stranger.force_login(outsider.user)  # signed in, but another tenant's
    response = stranger.get(f"/room/{room.room_id}")
    assert view_of(response) == "denied"
    assert page_config(response)["access"]["needs"] == "NOT_A_MEMBER"


def test_host_link_makes_the_browser_host(owner, livekit):
    room = make_room(owner, access_type="password", password="hunter22")
    browser = Browser(room)
    response = browser.host_page()
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    config = page_config(response)
    assert config["isHost"] is True and config["role"] == "host"
    assert config["hostSecret"] == room.host_secret
    assert view_of(response) == "prejoin"  # hosts skip the password
    # The session remembers it: the plain join link now knows this browser is the host,
    # but never embeds the secret.
    config = browser.config()
    assert config["isHost"] is True and config["hostSecret"] == ""
    assert room.host_secret not in browser.page().content.decode()


def test_wrong_host_secret_is_a_plain_404_page(owner, livekit):
    room = make_room(owner)
    response = Browser(room).host_page("x" * 32)
    assert response.status_code == 404
    assert b"couldn't find that page" in response.content
    assert b"Traceback" not in response.content


def test_unknown_room_is_a_404_page(db):
    response = Client().get("/room/doesnotexist")
    assert response.status_code == 404
    assert b"couldn't find that page" in response.content


def test_member_session_is_host_but_viewer_is_not(owner, outsider, livekit):
    from accounts.models import Membership

    room = make_room(owner)
    client = Client()
    client.force_login(owner.user)
    config = page_config(client.get(f"/room/{room.room_id}"))
    assert config["isHost"] is True and config["role"] == "owner"
    Membership.objects.create(user=outsider.user, tenant=owner.tenant, role="viewer")
    viewer = Client()
    viewer.force_login(outsider.user)
    assert page_config(viewer.get(f"/room/{room.room_id}"))["isHost"] is False


def test_branding_from_tenant_and_room_logo(owner, livekit):
    Brand.objects.create(
        tenant=owner.tenant,
        product_name="Acme Meet",
        logo_url="https://cdn.acme.test/logo.png",
        primary_color="#123456",
        accent_color="#abcdef",
    )
    plain = make_room(owner)
    html = Browser(plain).page().content.decode()
    assert "--brand: #123456; --accent: #abcdef;" in html
    assert 'src="https://cdn.acme.test/logo.png"' in html
    assert "Standup · Acme Meet</title>" in html
    custom = make_room(owner, custom_logo_url="https://img.test/room.svg")
    html = Browser(custom).page().content.decode()
    assert 'src="https://img.test/room.svg"' in html


def test_unsafe_brand_values_never_reach_the_page(owner, livekit):
    Brand.objects.create(
        tenant=owner.tenant,
        logo_url="javascript:alert(1)",
        primary_color="#f;}<sc",  # fits the column, still not a colour
        white_label=True,
    )
    html = Browser(make_room(owner)).page().content.decode()
    assert "javascript:" not in html and "#f;}<sc" not in html
    assert "--brand: #2f5bea;" in html
    assert "Parley" not in html.split("</title>")[0]  # white label: no Parley in the title


def test_user_strings_are_escaped(owner, livekit):
    room = make_room(owner, name="<img src=x onerror=alert(1)>")
    html = Browser(room).page().content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # and inside the JSON config, "<" is escaped so it cannot close the script element
    assert "\\u003Cimg src=x" in html


def test_state_endpoint(owner, livekit):
    start = timezone.now() + dt.timedelta(minutes=5)
    room = make_room(owner, room_type="scheduled", start_time=start)
    browser = Browser(room)
    state = browser.page("/state").json()
    assert state["status"] == "scheduled" and state["starts_at"] and state["full"] is False
    room_services.start_room(room=room)
    assert browser.page("/state").json()["status"] == "open"
    assert Client().get("/room/nope1234/state").status_code == 404
