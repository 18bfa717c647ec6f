"""Dashboard rooms: the list (search, filters, sorting, pages, constant queries), the create
and edit forms (presets, the API's validation, input kept on error), and the room page
(links, start/stop/delete with confirmation, live participants and moderation)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from livekit.protocol.models import TrackSource

from accounts import services as account_services
from conferences.api.v1.serializers import RoomInputSerializer
from conferences.models import Occurrence, Room
from conferences.services import rooms as room_services
from tests.conftest import Api
from tests.dashboard_cast import Cast, room_post_data


def bulk_rooms(tenant, count: int, **fields) -> None:
    """`count` rooms for list tests, inserted at once (the list reads them, nothing else)."""
    tenant.refresh_from_db()
    start = tenant.room_seq
    Room.objects.bulk_create(
        [
            Room(tenant=tenant, number=start + i + 1, name=f"Bulk room {i:05d}",
                 room_type="temporary", media_type="both", max_participants=10,
                 access_type="public", status="active", video_quality="high", **fields)
            for i in range(count)
        ],
        batch_size=500,
    )  # fmt: skip
    type(tenant).objects.filter(pk=tenant.pk).update(room_seq=start + count)


def names(response) -> list[str]:
    return re.findall(r'class="room-name" href="[^"]+">([^<]+)</a>', response.content.decode())


# --- the list -------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [10, 1000])
def test_rooms_list_queries_do_not_grow_with_rooms(cast: Cast, count: int):
    bulk_rooms(cast.tenant, count)
    client = cast.client("owner")
    client.get("/dashboard/rooms/")  # warm: session and caches settled
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/dashboard/rooms/?sort=name&order=asc&status=active")
    assert response.status_code == 200
    assert len(names(response)) == min(count + 1, 25)
    # 1. the session
    # 2. the signed-in user
    # 3. the user's memberships with their tenants and plans (one JOIN)
    # 4. COUNT(*) of the matching rooms
    # 5. the page of rooms
    assert len(queries) == 5, "\n".join(q["sql"] for q in queries)


def test_search_filters_sort_and_pages(cast: Cast):
    bulk_rooms(cast.tenant, 60)
    room_services.start_room(room=cast.room)
    client = cast.client("member")
    page1 = client.get("/dashboard/rooms/?sort=name&order=asc")
    assert names(page1)[:2] == ["Acme weekly", "Bulk room 00000"]
    assert "Page 1 of 3" in page1.content.decode()
    page3 = client.get("/dashboard/rooms/?sort=name&order=asc&page=3")
    assert names(page3) == [f"Bulk room {i:05d}" for i in range(49, 60)]
    assert names(client.get("/dashboard/rooms/?q=00042")) == ["Bulk room 00042"]
    assert names(client.get(f"/dashboard/rooms/?q={cast.room.room_id}")) == ["Acme weekly"]
    assert names(client.get("/dashboard/rooms/?status=live")) == ["Acme weekly"]
    assert names(client.get("/dashboard/rooms/?type=scheduled")) == []
    desc = names(client.get("/dashboard/rooms/?sort=name&order=desc"))
    assert desc[0] == "Bulk room 00059"
    # Unknown values fall back to the defaults rather than failing.
    assert client.get("/dashboard/rooms/?sort=size&order=up&status=x&page=abc").status_code == 200
    # The page keeps the query in its search box and its page links.
    searched = client.get("/dashboard/rooms/?q=Bulk&sort=name").content.decode()
    assert (
        'value="Bulk"' in searched and "q=Bulk&amp;sort=name&amp;order=desc&amp;page=2" in searched
    )


def test_list_never_shows_other_tenants_rooms(cast: Cast):
    bulk_rooms(cast.other, 5)
    listed = names(cast.client("owner").get("/dashboard/rooms/"))
    assert listed == ["Acme weekly"]


# --- the forms ------------------------------------------------------------------------------


def test_create_room_from_the_form(cast: Cast):
    client = cast.client("member")
    response = client.post("/dashboard/rooms/new/", room_post_data(max_participants="8"))
    assert response.status_code == 302
    room = Room.objects.get(tenant=cast.tenant, name="Design review")
    assert response["Location"] == f"/dashboard/rooms/{room.room_id}/"
    assert room.max_participants == 8 and room.chat_enabled and not room.recording_enabled
    assert room.host_controls == {"mute_all": True, "disable_video": True,
                                  "kick_participants": True}  # fmt: skip


def test_authenticated_room_with_allowed_domains_from_the_form(cast: Cast):
    data = room_post_data(
        access_type="authenticated", allowed_email_domains="partner.example\nOther.example"
    )
    response = cast.client("member").post("/dashboard/rooms/new/", data)
    assert response.status_code == 302
    room = Room.objects.get(tenant=cast.tenant, name="Design review")
    assert room.allowed_email_domains == ["partner.example", "other.example"]
    edit = cast.client("member").get(f"/dashboard/rooms/{room.room_id}/edit/").content.decode()
    assert "partner.example\nother.example" in edit


@pytest.mark.parametrize("preset", ["team", "webinar", "audio", "recorded"])
def test_presets_fill_the_form(cast: Cast, preset: str):
    page = cast.client("owner").get(f"/dashboard/rooms/new/?preset={preset}").content.decode()
    presets = json.loads(re.search(r'id="room-presets" type="application/json">(.+?)</script>',
                                   page).group(1))  # fmt: skip
    assert set(presets) == {"team", "webinar", "audio", "recorded"}
    values = presets[preset]["values"]
    # Capped by the Free plan's 10 participants per room.
    assert values["max_participants"] == 10
    assert f'value="{values["name"]}"' in page
    assert {"webinar": True, "recorded": True}.get(preset, False) == values["allow_webinar_mode"]
    assert values["recording_enabled"] == (preset == "recorded")
    assert values["media_type"] == ("audio" if preset == "audio" else "both")


def test_every_api_field_is_on_the_form(cast: Cast):
    page = cast.client("owner").get("/dashboard/rooms/new/").content.decode()
    for name in RoomInputSerializer().fields:
        if name == "auto_close_config":
            assert 'name="auto_close_type"' in page and 'name="auto_close_duration"' in page
        else:
            assert f'name="{name}"' in page, name


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"name": "ab"}, "name"),
        ({"max_participants": "500"}, "max_participants"),
        ({"max_participants": "ten"}, "max_participants"),
        ({"access_type": "password", "password": "abc"}, "password"),
        ({"access_type": "password"}, "password"),
        ({"access_type": "whitelist", "whitelist_emails": "not-an-email"}, "whitelist_emails"),
        (
            {"access_type": "authenticated", "allowed_email_domains": "not a domain"},
            "allowed_email_domains",
        ),
        ({"room_type": "scheduled"}, "start_time"),
        ({"custom_logo_url": "javascript:alert(1)"}, "custom_logo_url"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"auto_close_duration": "0"}, "auto_close_duration"),
        ({"video_quality": "8k"}, "video_quality"),
    ],
)
def test_form_errors_are_the_apis_and_input_is_kept(cast: Cast, overrides, field):
    data = room_post_data(**overrides)
    response = cast.client("owner").post("/dashboard/rooms/new/", data)
    assert response.status_code == 400
    page = response.content.decode()
    errors = field_errors(page)
    assert field in errors, errors
    # The same input through the API fails on the same field with the same words.
    form_message = errors[field]
    body = _api_body(data)
    api = Api(account_services.create_api_key(tenant=cast.tenant, name="t").secret)
    api_error = api.post("/api/v1/rooms", body).json()["error"]
    assert api_error["field"] == ("auto_close_config" if field.startswith("auto_close") else field)
    import html

    assert form_message == api_error["message"]
    # What was typed is still there (a select shows only its own options).
    for key, value in overrides.items():
        if key not in ("password", "timezone", "video_quality") and value:
            assert html.escape(value) in page or value in page, key
    assert not Room.objects.filter(tenant=cast.tenant, name=data["name"]).exists()


def _api_body(data: dict) -> dict:
    """The JSON the form sent to the serializer: what an API client would send."""
    from accounts.models import Tenant
    from dashboard.forms import RoomForm

    form = RoomForm(data, tenant=Tenant.objects.get(name="Acme"))
    form.is_valid()
    return form.body


def field_errors(page: str) -> dict[str, str]:
    """{field name: its first error message} of a rendered form."""
    import html

    out = {}
    for chunk in page.split('data-field="')[1:]:
        name = chunk.split('"', 1)[0]
        found = re.search(r'<ul class="errors"[^>]*><li>(.*?)</li>', chunk.split("data-field=")[0])
        if found:
            out[name] = html.unescape(found.group(1))
    return out


def test_edit_sends_only_what_changed(cast: Cast):
    start = dt.datetime(2031, 3, 3, 9, 0, tzinfo=dt.UTC)
    serializer = RoomInputSerializer(
        data={"name": "Standup", "room_type": "scheduled", "start_time": start.isoformat(),
              "recurring": True, "recurrence": "FREQ=DAILY;COUNT=5"},
        context={"tenant": cast.tenant},
    )  # fmt: skip
    assert serializer.is_valid(), serializer.errors
    room = room_services.create_room(tenant=cast.tenant, data=serializer.validated_data)
    moved = Occurrence.objects.filter(room=room).order_by("start_time")[1]
    moved.start_time += dt.timedelta(hours=2)
    moved.modified = True
    moved.save()
    client = cast.client("member")
    page = client.get(f"/dashboard/rooms/{room.room_id}/edit/").content.decode()
    assert 'value="2031-03-03T09:00"' in page and "RRULE:FREQ=DAILY;COUNT=5" in page
    data = room_post_data(name="Standup (new name)", room_type="scheduled",
                          start_time="2031-03-03T09:00", recurring="on",
                          recurrence="RRULE:FREQ=DAILY;COUNT=5")  # fmt: skip
    response = client.post(f"/dashboard/rooms/{room.room_id}/edit/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    room.refresh_from_db()
    assert room.name == "Standup (new name)"
    # The schedule was not touched: the moved occurrence is still moved.
    moved.refresh_from_db()
    assert moved.modified and Occurrence.objects.filter(room=room).count() == 5


def test_edit_keeps_the_password_unless_a_new_one_is_typed(cast: Cast):
    room = room_services.create_room(
        tenant=cast.tenant, data={"name": "Locked", "access_type": "password", "password": "s3cret"}
    )
    old_hash = room.password_hash
    client = cast.client("owner")
    data = room_post_data(name="Locked", access_type="password", password="")
    assert client.post(f"/dashboard/rooms/{room.room_id}/edit/", data).status_code == 302
    room.refresh_from_db()
    assert room.password_hash == old_hash
    data["password"] = "n3w-secret"
    assert client.post(f"/dashboard/rooms/{room.room_id}/edit/", data).status_code == 302
    room.refresh_from_db()
    assert room.password_hash != old_hash


def test_edit_errors_keep_input(cast: Cast):
    client = cast.client("owner")
    data = room_post_data(name="Still typed", max_participants="999")
    response = client.post(f"/dashboard/rooms/{cast.room.room_id}/edit/", data)
    assert response.status_code == 400
    assert 'value="Still typed"' in response.content.decode()
    cast.room.refresh_from_db()
    assert cast.room.name == "Acme weekly"


# --- the room page and its actions --------------------------------------------------------


def test_room_page_links_and_settings(cast: Cast):
    page = cast.client("member").get(f"/dashboard/rooms/{cast.room.room_id}/").content.decode()
    assert f"http://testserver/room/{cast.room.room_id}" in page
    assert f"/room/{cast.room.room_id}/host/{cast.room.host_secret}" in page
    hidden = room_services.hidden_token(cast.room)
    assert hidden in page  # the Callaba API's hidden-participant secret (issue 13)
    assert page.count("data-copy=") == 3
    assert "Anyone with the link" in page
    # The host link acts on the room: a viewer sees the join link only.
    page = cast.client("viewer").get(f"/dashboard/rooms/{cast.room.room_id}/").content.decode()
    assert cast.room.host_secret not in page and page.count("data-copy=") == 1
    assert hidden not in page


def test_start_then_stop_with_confirmation(cast: Cast, livekit):
    client = cast.client("member")
    url = f"/dashboard/rooms/{cast.room.room_id}"
    assert client.post(f"{url}/start/").status_code == 302
    cast.room.refresh_from_db()
    assert cast.room.live_since is not None and cast.room.livekit_name in livekit.room_names()
    # Without the confirmation the server asks first, and nothing happens.
    ask = client.post(f"{url}/stop/")
    assert ask.status_code == 200 and b'name="confirm" value="yes"' in ask.content
    cast.room.refresh_from_db()
    assert cast.room.live_since is not None
    assert client.post(f"{url}/stop/", {"confirm": "yes"}).status_code == 302
    cast.room.refresh_from_db()
    assert cast.room.live_since is None and cast.room.status == "completed"
    assert cast.room.livekit_name not in livekit.room_names()


def test_start_when_livekit_is_down_says_so(cast: Cast, livekit):
    livekit.down()
    client = cast.client("member")
    response = client.post(f"/dashboard/rooms/{cast.room.room_id}/start/", follow=True)
    assert response.status_code == 200
    assert "media server is unavailable" in response.content.decode()
    cast.room.refresh_from_db()
    assert cast.room.live_since is None


def test_start_past_the_plan_limit_says_so(cast: Cast):
    for i in range(5):
        room = room_services.create_room(tenant=cast.tenant, data={"name": f"Busy {i}"})
        room_services.start_room(room=room)
    response = cast.client("member").post(
        f"/dashboard/rooms/{cast.room.room_id}/start/", follow=True
    )
    assert "allows 5 concurrent rooms" in response.content.decode()


def test_delete_asks_then_deletes(cast: Cast):
    client = cast.client("member")
    url = f"/dashboard/rooms/{cast.room.room_id}/delete/"
    assert client.post(url).status_code == 200
    assert Room.objects.filter(pk=cast.room.pk).exists()
    response = client.post(url, {"confirm": "yes"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/rooms/"
    assert not Room.objects.filter(pk=cast.room.pk).exists()


def test_live_participants_with_remove_and_mute(cast: Cast, livekit):
    room_services.start_room(room=cast.room)
    name = cast.room.livekit_name
    livekit.add_participant(name, "guest-1", name="Grace", attributes={"role": "participant"})
    livekit.publish_track(name, "guest-1", source=TrackSource.MICROPHONE)
    client = cast.client("member")
    panel = client.get(f"/dashboard/rooms/{cast.room.room_id}/participants/").content.decode()
    assert "Grace" in panel and "mic on" in panel and "Remove" in panel
    muted = client.post(f"/dashboard/rooms/{cast.room.room_id}/mute/", {"kind": "audio"},
                        follow=True)  # fmt: skip
    assert "1 microphones muted" in muted.content.decode()
    assert livekit.calls_to("MutePublishedTrack")
    removed = client.post(
        f"/dashboard/rooms/{cast.room.room_id}/participants/guest-1/remove/", {"confirm": "yes"}
    )
    assert removed.status_code == 302
    assert livekit.get_participant(name, "guest-1") is None
    panel = client.get(f"/dashboard/rooms/{cast.room.room_id}/participants/").content.decode()
    assert "Nobody has joined yet" in panel


def test_participants_panel_when_livekit_is_down(cast: Cast, livekit):
    room_services.start_room(room=cast.room)
    livekit.down()
    page = cast.client("viewer").get(f"/dashboard/rooms/{cast.room.room_id}/")
    assert page.status_code == 200
    assert "media server is unavailable" in page.content.decode()


def test_promote_to_the_stage_and_back(cast: Cast, livekit):
    """Webinar rooms: a member brings an audience member on stage from the room page."""
    from conferences.models import Participant

    room = room_services.create_room(
        tenant=cast.tenant, data={"name": "Town hall", "allow_webinar_mode": True}
    )
    issued = room_services.issue_token(room=room, name="Vera", identity="vera-1")
    livekit.join(issued.token)
    client = cast.client("member")
    panel = client.get(f"/dashboard/rooms/{room.room_id}/participants/").content.decode()
    assert "Vera" in panel and "Promote to stage" in panel
    url = f"/dashboard/rooms/{room.room_id}/participants/vera-1/stage/"
    assert client.post(url, {"action": "promote"}).status_code == 302
    assert Participant.objects.get(room=room, identity="vera-1").role == "speaker"
    assert livekit.get_participant(room.livekit_name, "vera-1").permission.can_publish
    panel = client.get(f"/dashboard/rooms/{room.room_id}/participants/").content.decode()
    assert "Back to audience" in panel
    client.post(url, {"action": "demote"})
    assert Participant.objects.get(room=room, identity="vera-1").role == "viewer"
    assert not livekit.get_participant(room.livekit_name, "vera-1").permission.can_publish
