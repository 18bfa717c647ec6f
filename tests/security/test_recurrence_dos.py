"""Item 5 of the security review, as an attacker would try it: recurrence rules that never
match (or match too rarely) used to walk dateutil's calendar to the year 9999, 7-10 s of
CPU per request, through the API and the dashboard form alike.

Each is now refused with a 400 on the field `recurrence`, and the work is measured, not timed:
`recurrence.days_scanned` counts the candidate days the rule engine examined."""

from __future__ import annotations

import pytest

from conferences import recurrence
from conferences.models import Room
from tests.conftest import assert_error
from tests.dashboard_cast import Cast, room_post_data

START = "2031-03-03T09:00:00Z"

# Rules that can never match, or not within a series' ten years: each used to cost seconds.
ATTACKS = [
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",  # 30 February
    "FREQ=DAILY;BYMONTH=4,6,9,11;BYMONTHDAY=31",  # the 31st of 30-day months
    "FREQ=YEARLY;BYYEARDAY=400",  # no year has 400 days
    "FREQ=YEARLY;BYYEARDAY=-367",
    "FREQ=YEARLY;BYWEEKNO=54",
    "FREQ=MONTHLY;BYDAY=6MO",  # no month has six Mondays
    "FREQ=MONTHLY;BYMONTHDAY=0",
    "FREQ=YEARLY;BYMONTH=13",
    "FREQ=YEARLY;BYYEARDAY=1;BYMONTH=2",  # day 1 of the year is never in February
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",  # 29 February on a Monday: every 28 years
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=1000",  # 1000 leap days: 4000 years
    "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2",  # one Monday a week: never a second one
    "FREQ=DAILY;BYEASTER=0",  # a dateutil extension, not RFC 5545
]


def _cost(action) -> int:
    before = recurrence.days_scanned
    action()
    return recurrence.days_scanned - before


@pytest.mark.parametrize("rule", ATTACKS)
def test_api_refuses_rules_that_never_match_cheaply(api, rule):
    body = {"name": "DoS", "room_type": "scheduled", "start_time": START, "recurrence": rule}
    responses = []
    cost = _cost(lambda: responses.append(api.post("/api/v1/rooms", body)))
    assert_error(responses[0], 400, field="recurrence")
    # At most one series' worth of candidate days (ten years of a daily rule), never 9999.
    assert cost <= recurrence.SCAN_DAYS
    assert not Room.objects.filter(name="DoS").exists()


@pytest.mark.parametrize("rule", ATTACKS[:4])
def test_dashboard_form_refuses_them_too(cast: Cast, rule):
    data = room_post_data(
        name="DoS", room_type="scheduled", start_time="2031-03-03T09:00",
        recurring="on", recurrence=rule,
    )  # fmt: skip
    responses = []
    cost = _cost(lambda: responses.append(cast.client("owner").post("/dashboard/rooms/new/", data)))
    assert responses[0].status_code == 400
    assert 'data-field="recurrence"' in responses[0].content.decode()
    assert cost <= recurrence.SCAN_DAYS
    assert not Room.objects.filter(name="DoS").exists()


def test_a_stored_rule_is_expanded_with_bounded_work(api):
    """Listing far ahead re-walks the series from its start: the work follows the window
    asked for, not the rule's sparseness."""
    body = {"name": "Leap", "room_type": "scheduled", "start_time": "2032-02-29T09:00:00Z",
            "recurrence": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"}  # fmt: skip
    room = api.post("/api/v1/rooms", body).json()
    responses = []
    cost = _cost(
        lambda: responses.append(
            api.get(f"/api/v1/rooms/{room['room_id']}/occurrences?to=2040-01-01T00:00:00Z")
        )
    )
    assert responses[0].status_code == 200
    assert cost <= recurrence.SCAN_DAYS
