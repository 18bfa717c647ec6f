"""The rule engine against a table of cases: DST, month ends, leap days, EXDATE, validation."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from conferences import recurrence
from conferences.recurrence import RecurrenceError

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def local_starts(value, start_local, zone, *, count=None, until_local=None, after=None):
    start = start_local.replace(tzinfo=zone).astimezone(UTC)
    rule = recurrence.parse(value, start=start, zone=zone)
    before = (until_local or start_local + dt.timedelta(days=800)).replace(tzinfo=zone)
    got = recurrence.expand(
        rule, start=start, zone=zone, after=after or start, before=before.astimezone(UTC)
    )
    pairs = got[:count] if count else got
    return [(local, utc) for local, utc in pairs]


@pytest.mark.parametrize(
    "zone, first, dst_day",
    [
        (BERLIN, dt.datetime(2026, 3, 23, 9, 0), dt.date(2026, 3, 29)),  # CET -> CEST
        (BERLIN, dt.datetime(2026, 10, 19, 9, 0), dt.date(2026, 10, 25)),  # CEST -> CET
        (NEW_YORK, dt.datetime(2026, 3, 2, 9, 0), dt.date(2026, 3, 8)),  # EST -> EDT
        (NEW_YORK, dt.datetime(2026, 10, 26, 9, 0), dt.date(2026, 11, 1)),  # EDT -> EST
    ],
)
def test_weekly_nine_oclock_stays_nine_across_dst(zone, first, dst_day):
    pairs = local_starts("FREQ=WEEKLY", first, zone, count=3)
    assert [p[0] for p in pairs] == [first + dt.timedelta(weeks=i) for i in range(3)]
    offsets = {p[1].astimezone(zone).hour for p in pairs}
    assert offsets == {9}  # 09:00 local every week
    utc_hours = [p[1].hour for p in pairs]
    assert utc_hours[0] != utc_hours[1]  # the UTC instant moved by an hour at the change
    assert pairs[0][0].date() < dst_day < pairs[1][0].date()


def test_default_rule_is_weekly_same_local_time():
    pairs = local_starts(None, dt.datetime(2026, 3, 23, 9, 0), BERLIN, count=2)
    assert [p[0] for p in pairs] == [dt.datetime(2026, 3, 23, 9), dt.datetime(2026, 3, 30, 9)]


def test_time_in_the_spring_gap_uses_the_offset_before_it():
    # 02:30 does not exist in Berlin on 2026-03-29: RFC 5545 reads it with the pre-gap offset.
    pairs = local_starts("FREQ=DAILY;COUNT=3", dt.datetime(2026, 3, 28, 2, 30), BERLIN)
    assert [p[1] for p in pairs] == [
        dt.datetime(2026, 3, 28, 1, 30, tzinfo=UTC),  # 02:30 CET
        dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # 03:30 CEST: same instant as "02:30 CET"
        dt.datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST
    ]


def test_ambiguous_fall_back_time_takes_its_first_occurrence():
    pairs = local_starts("FREQ=DAILY;COUNT=2", dt.datetime(2026, 10, 24, 2, 30), BERLIN)
    assert pairs[1][1] == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, not CET


@pytest.mark.parametrize(
    "rule, first, expected_days",
    [
        # The 31st: months without one are skipped (RFC 5545), not moved to the 30th.
        (
            "FREQ=MONTHLY;COUNT=5",
            dt.datetime(2027, 1, 31, 9),
            ["01-31", "03-31", "05-31", "07-31", "08-31"],
        ),
        (
            "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=4",
            dt.datetime(2027, 1, 31, 9),
            ["01-31", "02-28", "03-31", "04-30"],
        ),
        (
            "FREQ=MONTHLY;BYMONTHDAY=30;COUNT=3",
            dt.datetime(2027, 1, 30, 9),
            ["01-30", "03-30", "04-30"],
        ),
        # Last Friday of each month.
        (
            "FREQ=MONTHLY;BYDAY=-1FR;COUNT=3",
            dt.datetime(2027, 1, 29, 9),
            ["01-29", "02-26", "03-26"],
        ),
    ],
)
def test_month_ends(rule, first, expected_days):
    pairs = local_starts(rule, first, BERLIN)
    assert [p[0].strftime("%m-%d") for p in pairs] == expected_days


def test_leap_day_yearly_only_in_leap_years():
    pairs = local_starts(
        "FREQ=YEARLY;COUNT=3",
        dt.datetime(2028, 2, 29, 10),
        NEW_YORK,
        until_local=dt.datetime(2045, 1, 1),
    )
    assert [p[0].year for p in pairs] == [2028, 2032, 2036]


def test_exdate_removes_one_occurrence():
    text = "RRULE:FREQ=WEEKLY;COUNT=4\nEXDATE:20270112T090000"
    pairs = local_starts(text, dt.datetime(2027, 1, 5, 9), BERLIN)
    assert [p[0].day for p in pairs] == [5, 19, 26]


def test_exdate_in_utc_is_matched_in_local_time():
    text = "RRULE:FREQ=WEEKLY;COUNT=3\nEXDATE:20270112T080000Z"  # 09:00 Berlin
    pairs = local_starts(text, dt.datetime(2027, 1, 5, 9), BERLIN)
    assert [p[0].day for p in pairs] == [5, 19]


def test_until_in_utc_is_inclusive():
    pairs = local_starts("FREQ=DAILY;UNTIL=20270107T080000Z", dt.datetime(2027, 1, 5, 9), BERLIN)
    assert [p[0].day for p in pairs] == [5, 6, 7]


@pytest.mark.parametrize(
    "value, first_weekdays",
    [
        (
            {"frequency": "weekly", "weekdays": ["MO", "WE"], "count": 4},
            ["Mon", "Wed", "Mon", "Wed"],
        ),  # noqa: E501
        ({"frequency": "weekly", "weekdays": ["monday", "friday"], "count": 2}, ["Mon", "Fri"]),
        ({"frequency": "daily", "interval": 2, "count": 3}, ["Mon", "Wed", "Fri"]),
        ({"frequency": "monthly", "count": 2}, ["Mon", "Wed"]),  # 2027-03-01, 2027-04-01? see below
    ],
)
def test_plain_object_rules(value, first_weekdays):
    pairs = local_starts(value, dt.datetime(2027, 3, 1, 9), BERLIN)  # a Monday
    if value["frequency"] == "monthly":
        assert [p[0].date().isoformat() for p in pairs] == ["2027-03-01", "2027-04-01"]
    else:
        assert [p[0].strftime("%a") for p in pairs] == first_weekdays


def test_object_until_date_is_inclusive_of_that_day():
    value = {"frequency": "daily", "until": "2027-03-03"}
    pairs = local_starts(value, dt.datetime(2027, 3, 1, 9), BERLIN)
    assert [p[0].day for p in pairs] == [1, 2, 3]


@pytest.mark.parametrize(
    "value, message",
    [
        ("FREQ=HOURLY", "FREQ"),
        ("FREQ=SECONDLY;COUNT=5", "FREQ"),
        ("FREQ=WEEKLY;COUNT=5000", "COUNT"),
        ("FREQ=WEEKLY;COUNT=0", "COUNT"),
        ("FREQ=WEEKLY;COUNT=3;UNTIL=20300101T000000Z", "COUNT and UNTIL"),
        ("FREQ=WEEKLY;UNTIL=20200101T000000Z", "before start"),
        ("FREQ=WEEKLY;UNTIL=20990101T000000Z", "years"),
        ("FREQ=WEEKLY;BYHOUR=9,17", "BYHOUR"),
        ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL"),
        ("FREQ=WEEKLY;BYDAY=XX", "RRULE"),
        ("NONSENSE", "NAME=VALUE"),
        ("DTSTART:20270101T090000\nRRULE:FREQ=DAILY", "DTSTART"),
        ("FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=2", "no occurrence"),
        ({"frequency": "hourly"}, "frequency"),
        ({"frequency": "weekly", "weekdays": ["someday"]}, "weekday"),
        ({"frequency": "weekly", "count": 3, "until": "2027-05-01"}, "either"),
        ({"frequency": "weekly", "colour": "red"}, "Unknown"),
        ({"frequency": "weekly", "interval": "2"}, "interval"),
        (42, "string or an object"),
    ],
)
def test_bad_rules_are_rejected_with_a_reason(value, message):
    start = dt.datetime(2027, 3, 1, 8, tzinfo=UTC)
    with pytest.raises(RecurrenceError) as info:
        recurrence.parse(value, start=start, zone=BERLIN)
    assert message in info.value.message


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "berlin", "../etc/passwd"])
def test_unknown_zones_are_rejected(name):
    with pytest.raises(RecurrenceError):
        recurrence.get_zone(name)


def test_text_round_trip():
    start = dt.datetime(2027, 3, 1, 8, tzinfo=UTC)
    rule = recurrence.parse(
        "RRULE:FREQ=WEEKLY;BYDAY=MO\nEXDATE:20270308T090000", start=start, zone=BERLIN
    )
    assert recurrence.from_text(rule.as_text()) == rule


# --- bounded work: impossible rules refused up front, every walk under a budget ------------


@pytest.mark.parametrize(
    "rule, message",
    [
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "no occurrence"),
        ("FREQ=YEARLY;BYYEARDAY=400", "BYYEARDAY values must be between 1 and 366"),
        ("FREQ=MONTHLY;BYYEARDAY=4", "only allowed with FREQ=YEARLY"),
        ("FREQ=MONTHLY;BYWEEKNO=4", "only allowed with FREQ=YEARLY"),
        ("FREQ=WEEKLY;BYMONTHDAY=4", "not allowed with FREQ=WEEKLY"),
        ("FREQ=MONTHLY;BYDAY=6MO", "ordinals must be between 1 and 5"),
        ("FREQ=WEEKLY;BYDAY=2MO", "need FREQ=MONTHLY or YEARLY"),
        ("FREQ=MONTHLY;BYMONTHDAY=1x", "comma-separated list of integers"),
        ("FREQ=YEARLY;BYMONTH=-1", "comma-separated list of integers"),
        ("FREQ=WEEKLY;WKST=XX", "WKST"),
        ("FREQ=DAILY;BYEASTER=0", "not supported"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "within 10 years"),
        ("FREQ=MONTHLY;COUNT=200", "COUNT=200 is not reached within 10 years"),
    ],
)
def test_impossible_or_too_sparse_rules_cost_little(rule, message):
    before = recurrence.days_scanned
    with pytest.raises(RecurrenceError) as info:
        recurrence.parse(rule, start=dt.datetime(2027, 3, 1, 8, tzinfo=UTC), zone=BERLIN)
    assert message in info.value.message
    assert recurrence.days_scanned - before <= recurrence.SCAN_DAYS


def test_rare_but_possible_rules_are_kept():
    # 29 February: every four years (eight across 2100); a weekly series of 500 fits 10 years.
    pairs = local_starts(
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", dt.datetime(2027, 3, 1, 9), BERLIN,
        until_local=dt.datetime(2037, 1, 1),
    )  # fmt: skip
    assert [p[0].year for p in pairs] == [2028, 2032, 2036]
    rule = recurrence.parse(
        "FREQ=WEEKLY;COUNT=500", start=dt.datetime(2027, 3, 1, 8, tzinfo=UTC), zone=BERLIN
    )
    last = recurrence.last_start(rule, start=dt.datetime(2027, 3, 1, 8, tzinfo=UTC), zone=BERLIN)
    assert last is not None  # 09:00 Berlin time, 499 weeks on
    assert to_naive_berlin(last) == dt.datetime(2027, 3, 1, 9) + dt.timedelta(weeks=499)


def to_naive_berlin(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(BERLIN).replace(tzinfo=None)


def test_a_walk_stops_at_its_budget_whatever_the_window():
    # A daily series started in 1970, expanded in 2200: ~84k days from its start, yet the
    # walk examines at most MAX_SCAN_DAYS candidate days (and so returns nothing past them).
    rule = recurrence.Recurrence(rule="FREQ=DAILY")
    start = dt.datetime(1970, 1, 1, 9, tzinfo=UTC)
    before = recurrence.days_scanned
    got = recurrence.expand(
        rule, start=start, zone=BERLIN,
        after=dt.datetime(2200, 1, 1, tzinfo=UTC), before=dt.datetime(2200, 2, 1, tzinfo=UTC),
    )  # fmt: skip
    assert got == []
    assert recurrence.days_scanned - before <= recurrence.MAX_SCAN_DAYS
