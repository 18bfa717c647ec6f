"""The dashboard's Calls page: who called whom, when, how long; other tenants' calls are 404."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from conferences.models import Call
from conferences.services import calls
from tests.dashboard_cast import Cast


def person(tenant, user_id: str, first: str):
    return calls.vouch_user(
        tenant=tenant, profile={"id": user_id, "firstName": first, "lastName": "Doe"},
        ttl_seconds=600,
    ).user  # fmt: skip


def answered_call(tenant, caller_id="alice", callee_id="bob", seconds=125) -> Call:
    caller = person(tenant, caller_id, caller_id.title())
    callee = person(tenant, callee_id, callee_id.title())
    calls.socket_opened(user_pk=callee.pk, channel_name=f"test!{callee.pk}-{caller_id}")
    request = calls.request_direct(caller=caller, target_id=callee_id, channel_name="test!c")
    calls.accept(user=callee, request_id=request.request_id, channel_name="test!b")
    now = timezone.now()
    Call.objects.filter(pk=request.call_id).update(
        answered_at=now - dt.timedelta(seconds=seconds), ended_at=now, status="ended"
    )
    return Call.objects.get(pk=request.call_id)


def test_calls_page_shows_who_called_whom_when_and_how_long(cast: Cast):
    call = answered_call(cast.tenant)
    carol = person(cast.tenant, "carol", "Carol")
    calls.socket_opened(user_pk=carol.pk, channel_name="test!carol")
    declined = calls.request_direct(
        caller=call.caller, target_id="carol", channel_name="test!alice"
    )
    calls.decline(user=carol, request_id=declined.request_id)
    page = cast.client("viewer").get("/dashboard/calls/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'Alice Doe</span> → <span class="callee">Bob Doe' in html
    assert 'Alice Doe</span> → <span class="callee">Carol Doe' in html
    assert ">2:05<" in html and "Declined" in html and "Ended" in html
    assert 'aria-current="page"' in html and "/dashboard/calls/" in html
    detail = cast.client("viewer").get(f"/dashboard/calls/{call.call_id}/")
    assert detail.status_code == 200
    text = detail.content.decode()
    assert "alice → bob" in text and "owner" in text and "2:05" in text
    assert call.room.room_id in text


def test_outsiders_get_404_and_never_see_the_calls(cast: Cast):
    call = answered_call(cast.tenant)
    theirs = answered_call(cast.other, "alice", "bob")
    outsider = cast.client("outsider")
    assert outsider.get(f"/dashboard/calls/{call.call_id}/").status_code == 404
    listed = outsider.get("/dashboard/calls/").content.decode()
    assert call.call_id not in listed and theirs.call_id in listed
    assert cast.client("owner").get(f"/dashboard/calls/{theirs.call_id}/").status_code == 404
    assert cast.client("owner").get("/dashboard/calls/vc_nope/").status_code == 404
    assert cast.client("owner").get("/dashboard/calls/" + "x" * 500 + "/").status_code == 404
    # The call's room stays off the rooms list (its own page is the tenant's, though).
    rooms = cast.client("owner").get("/dashboard/rooms/").content.decode()
    assert call.room.room_id not in rooms and cast.room.room_id in rooms


@pytest.mark.parametrize("count", [3, 30])
def test_calls_list_query_count_is_constant(cast: Cast, count, django_assert_num_queries):
    from accounts.models import Plan

    # Answered calls are live rooms: the Free plan's 5 concurrent rooms would refuse more.
    type(cast.tenant).objects.filter(pk=cast.tenant.pk).update(
        plan=Plan.objects.get(code="enterprise")
    )
    cast.tenant.refresh_from_db()
    for i in range(count):
        answered_call(cast.tenant, f"a{i}", f"b{i}", seconds=i)
    client = cast.client("member")
    client.get("/dashboard/calls/")  # warm the session
    # 1 session, 2 user, 3 memberships (with tenants), 4 COUNT, 5 the page (callers,
    # callees, rooms and head counts joined in).
    with django_assert_num_queries(5):
        assert client.get("/dashboard/calls/").status_code == 200
