"""Recurrence rules: parse, validate and expand them in a room's IANA time zone.

Rules are RFC 5545 RRULEs expanded on *local* wall-clock times (python-dateutil, which follows
RFC 5545 for month ends and leap days: a monthly rule on the 31st skips shorter months, a
yearly rule on 29 February only hits leap years), then each local time is placed in the zone:
a weekly 09:00 Europe/Berlin stays 09:00 Berlin time on both sides of a DST change. A local
time that does not exist (spring-forward gap) is read with the offset before the gap, and an
ambiguous one (fall-back) as its first occurrence, as RFC 5545 section 3.3.5 says.

Expansion work is bounded, not only its results: dateutil walks every candidate period until
a rule matches, so a rule that never matches (`BYMONTH=2;BYMONTHDAY=30`) would walk to year
9999. Impossible rules are refused up front (`parse`), and every walk runs under a budget of
candidate days examined (`SCAN_DAYS`, or the window asked for): a rule costs milliseconds.
"""

from __future__ import annotations

import datetime as dt
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import dateutil.rrule
from dateutil.rrule import rrule, rrulestr

MAX_COUNT = 1000  # occurrences one rule may produce when bounded by COUNT
MAX_YEARS = 10  # a series (UNTIL, or its COUNT-th start) may not reach further than this
# Candidate days dateutil may examine to validate a rule: MAX_YEARS of days plus one period.
SCAN_DAYS = 366 * (MAX_YEARS + 1)
# Most candidate days one expansion may examine whatever window it is asked for (~60 years
# of a daily rule, tens of milliseconds); a walk that reaches it stops there.
MAX_SCAN_DAYS = 366 * 60
ALLOWED_FREQ = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
FORBIDDEN_PARTS = {"BYHOUR", "BYMINUTE", "BYSECOND", "DTSTART", "WKST_INVALID"}
ALLOWED_PARTS = {
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "WKST",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYSETPOS",
}
# RFC 5545 value ranges of the numeric BY* parts (a value may also be negative, never 0).
NUMERIC_RANGES = {
    "BYMONTH": 12,
    "BYMONTHDAY": 31,
    "BYYEARDAY": 366,
    "BYWEEKNO": 53,
    "BYSETPOS": 366,
}
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # longest length of each month
WEEKDAYS = {
    "MO": "MO",
    "TU": "TU",
    "WE": "WE",
    "TH": "TH",
    "FR": "FR",
    "SA": "SA",
    "SU": "SU",
    "MON": "MO",
    "TUE": "TU",
    "WED": "WE",
    "THU": "TH",
    "FRI": "FR",
    "SAT": "SA",
    "SUN": "SU",
    "MONDAY": "MO",
    "TUESDAY": "TU",
    "WEDNESDAY": "WE",
    "THURSDAY": "TH",
    "FRIDAY": "FR",
    "SATURDAY": "SA",
    "SUNDAY": "SU",
}
OBJECT_KEYS = {"frequency", "interval", "weekdays", "count", "until", "exdates"}


class RecurrenceError(ValueError):
    def __init__(self, message: str, *, field: str = "recurrence") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Recurrence:
    """A validated rule: RRULE parts (no DTSTART) and excluded local start times."""

    rule: str  # e.g. "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE"
    exdates: tuple[dt.datetime, ...] = ()  # naive local wall-clock times

    def as_text(self) -> str:
        lines = [f"RRULE:{self.rule}"]
        if self.exdates:
            lines.append("EXDATE:" + ",".join(d.strftime("%Y%m%dT%H%M%S") for d in self.exdates))
        return "\n".join(lines)


def get_zone(name: str, *, field: str = "timezone") -> ZoneInfo:
    if not isinstance(name, str) or not name or name not in _zones():
        raise RecurrenceError(
            f"The '{field}' must be an IANA time zone such as Europe/Berlin", field=field
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError(f"Unknown time zone '{name}'", field=field) from None


_ZONES: set[str] | None = None


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones() | {"UTC"}
    return _ZONES


def to_local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Aware instant -> naive wall-clock time in `zone`."""
    return moment.astimezone(zone).replace(tzinfo=None)


def to_utc(local: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Naive wall-clock time in `zone` -> aware UTC (RFC 5545 rules for gaps and folds)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)


def _parse_until(raw: str, zone: ZoneInfo) -> dt.datetime:
    """UNTIL as a naive local time: a UTC `...Z` value is converted, a date is end of day."""
    try:
        if re.fullmatch(r"\d{8}", raw):
            day = dt.datetime.strptime(raw, "%Y%m%d")
            return day.replace(hour=23, minute=59, second=59)
        if raw.endswith("Z"):
            moment = dt.datetime.strptime(raw, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
            return to_local(moment, zone)
        return dt.datetime.strptime(raw, "%Y%m%dT%H%M%S")
    except ValueError:
        raise RecurrenceError(f"UNTIL '{raw}' is not an RFC 5545 date or date-time") from None


def _parse_exdate_value(raw: str, zone: ZoneInfo) -> dt.datetime:
    raw = raw.strip()
    try:
        if raw.endswith("Z"):
            moment = dt.datetime.strptime(raw, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
            return to_local(moment, zone)
        if re.fullmatch(r"\d{8}T\d{6}", raw):
            return dt.datetime.strptime(raw, "%Y%m%dT%H%M%S")
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise RecurrenceError(
            f"EXDATE '{raw[:40]}' is not a date-time", field="recurrence"
        ) from None
    if moment.tzinfo is not None:
        return to_local(moment, zone)
    return moment


def _parts(rule: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for chunk in rule.strip().strip(";").split(";"):
        if "=" not in chunk:
            raise RecurrenceError(f"'{chunk[:40]}' is not a NAME=VALUE rule part")
        name, value = chunk.split("=", 1)
        name = name.strip().upper()
        if name in parts:
            raise RecurrenceError(f"Rule part {name} appears twice")
        parts[name] = value.strip().upper() if name != "UNTIL" else value.strip()
    return parts


def _from_text(text: str, zone: ZoneInfo) -> tuple[dict[str, str], list[dt.datetime]]:
    rule_line: str | None = None
    exdates: list[dt.datetime] = []
    for line in re.split(r"[\r\n]+", text.strip()):
        line = line.strip()
        if not line:
            continue
        head, sep, body = line.partition(":")
        name = head.split(";")[0].upper()
        if sep and name == "RRULE":
            if rule_line is not None:
                raise RecurrenceError("Only one RRULE is supported")
            rule_line = body
        elif sep and name == "EXDATE":
            exdates += [_parse_exdate_value(v, zone) for v in body.split(",") if v.strip()]
        elif sep and name == "DTSTART":
            raise RecurrenceError("Give the first start as start_time, not as DTSTART")
        elif not sep or "=" in head:
            if rule_line is not None:
                raise RecurrenceError("Only one RRULE is supported")
            rule_line = line
        else:
            raise RecurrenceError(f"Unsupported line '{name[:20]}'; use RRULE and EXDATE")
    if rule_line is None:
        raise RecurrenceError("The recurrence has no RRULE")
    return _parts(rule_line), exdates


def _from_object(value: dict[str, Any], zone: ZoneInfo) -> tuple[dict[str, str], list[dt.datetime]]:
    unknown = set(value) - OBJECT_KEYS
    if unknown:
        raise RecurrenceError(
            f"Unknown recurrence key '{sorted(unknown)[0]}'; allowed: "
            + ", ".join(sorted(OBJECT_KEYS))
        )
    freq = value.get("frequency")
    if not isinstance(freq, str) or freq.upper() not in {"DAILY", "WEEKLY", "MONTHLY"}:
        raise RecurrenceError("The 'recurrence.frequency' must be daily, weekly or monthly")
    parts = {"FREQ": freq.upper()}
    if "interval" in value:
        interval = value["interval"]
        if isinstance(interval, bool) or not isinstance(interval, int):
            raise RecurrenceError("The 'recurrence.interval' must be an integer")
        parts["INTERVAL"] = str(interval)
    if "weekdays" in value:
        days = value["weekdays"]
        if not isinstance(days, list) or not days:
            raise RecurrenceError("The 'recurrence.weekdays' must be a non-empty array")
        codes = []
        for day in days:
            code = WEEKDAYS.get(day.upper()) if isinstance(day, str) else None
            if code is None:
                raise RecurrenceError(f"'{str(day)[:20]}' is not a weekday (MO..SU or monday..)")
            if code not in codes:
                codes.append(code)
        parts["BYDAY"] = ",".join(codes)
    if "count" in value and "until" in value:
        raise RecurrenceError("Give either 'recurrence.count' or 'recurrence.until', not both")
    if "count" in value:
        count = value["count"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise RecurrenceError("The 'recurrence.count' must be an integer")
        parts["COUNT"] = str(count)
    if "until" in value:
        until = value["until"]
        if not isinstance(until, str):
            raise RecurrenceError("The 'recurrence.until' must be an ISO 8601 date or date-time")
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", until):
                local_until = dt.datetime.fromisoformat(until).replace(
                    hour=23, minute=59, second=59
                )
            else:
                moment = dt.datetime.fromisoformat(until)
                local_until = to_local(moment, zone) if moment.tzinfo else moment
        except ValueError:
            raise RecurrenceError(
                "The 'recurrence.until' must be an ISO 8601 date or date-time"
            ) from None
        parts["UNTIL"] = local_until.strftime("%Y%m%dT%H%M%S")
    exdates: list[dt.datetime] = []
    if "exdates" in value:
        raw = value["exdates"]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise RecurrenceError("The 'recurrence.exdates' must be an array of date-times")
        exdates = [_parse_exdate_value(x, zone) for x in raw]
    return parts, exdates


def parse(value: str | dict[str, Any] | None, *, start: dt.datetime, zone: ZoneInfo) -> Recurrence:
    """Validate a rule given as RRULE text (optionally with EXDATE lines) or as a plain object.

    `None` means "weekly at the same local time". Raises RecurrenceError naming what is wrong.
    """
    if value is None:
        parts, exdates = {"FREQ": "WEEKLY"}, []  # type: ignore[var-annotated]
    elif isinstance(value, str):
        if len(value) > 2000:
            raise RecurrenceError("The 'recurrence' is too long")
        parts, exdates = _from_text(value, zone)
    elif isinstance(value, dict):
        parts, exdates = _from_object(value, zone)
    else:
        raise RecurrenceError("The 'recurrence' must be an RRULE string or an object")

    freq = parts.get("FREQ")
    if freq not in ALLOWED_FREQ:
        raise RecurrenceError("FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")
    for name in parts:
        if name in FORBIDDEN_PARTS:
            raise RecurrenceError(f"Rule part {name} is not supported; one start per occurrence")
        if name not in ALLOWED_PARTS:
            raise RecurrenceError(f"Rule part {name[:20]} is not supported")
    if "INTERVAL" in parts:
        if not parts["INTERVAL"].isdigit() or not 1 <= int(parts["INTERVAL"]) <= 366:
            raise RecurrenceError("INTERVAL must be between 1 and 366")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("COUNT and UNTIL cannot both be given (RFC 5545)")
    if "COUNT" in parts:
        if not parts["COUNT"].isdigit() or not 1 <= int(parts["COUNT"]) <= MAX_COUNT:
            raise RecurrenceError(f"COUNT must be between 1 and {MAX_COUNT}")
    _check_possible(parts)
    start_local = to_local(start, zone)
    horizon = start_local.replace(year=min(start_local.year + MAX_YEARS, 9999), day=1)
    if "UNTIL" in parts:
        until = _parse_until(parts["UNTIL"], zone)
        if until < start_local:
            raise RecurrenceError("The recurrence ends (UNTIL) before start_time")
        if until > horizon:
            raise RecurrenceError(f"UNTIL may be at most {MAX_YEARS} years after start_time")
        parts["UNTIL"] = until.strftime("%Y%m%dT%H%M%S")
    rule = ";".join(f"{k}={v}" for k, v in parts.items())
    try:
        compiled = compile_rule(Recurrence(rule=rule), start_local, scan_days=SCAN_DAYS)
    except (ValueError, TypeError, KeyError) as exc:
        raise RecurrenceError(f"Invalid RRULE: {str(exc)[:120]}") from None
    found = 0
    try:
        for local in compiled:
            if local > horizon:
                break
            found += 1
            if "COUNT" not in parts:
                break  # one start is enough: the rule is possible
    except ScanLimitReached:
        pass
    if found == 0:
        raise RecurrenceError(
            f"The recurrence produces no occurrence within {MAX_YEARS} years of start_time"
        )
    if "COUNT" in parts and found < int(parts["COUNT"]):
        raise RecurrenceError(
            f"COUNT={parts['COUNT']} is not reached within {MAX_YEARS} years of start_time"
        )
    exdates = sorted(set(exdates))
    return Recurrence(rule=rule, exdates=tuple(exdates))


def _numbers(name: str, raw: str, limit: int, *, signed: bool = True) -> list[int]:
    values = []
    for item in raw.split(","):
        item = item.strip()
        if not re.fullmatch(r"[+-]?\d{1,3}" if signed else r"\d{1,2}", item):
            raise RecurrenceError(f"{name} must be a comma-separated list of integers")
        value = int(item)
        if value == 0 or abs(value) > limit:
            bounds = f"1 and {limit}" + (f" (or -{limit} and -1)" if signed else "")
            raise RecurrenceError(f"{name} values must be between {bounds}")
        values.append(value)
    return values


def _check_possible(parts: dict[str, str]) -> None:
    """Refuse, before any expansion, rule parts out of RFC 5545 ranges or that can never match
    (e.g. BYMONTH=2;BYMONTHDAY=30), and parts RFC 5545 forbids with the frequency."""
    freq = parts["FREQ"]
    numbers = {
        name: _numbers(name, parts[name], limit, signed=name != "BYMONTH")
        for name, limit in NUMERIC_RANGES.items()
        if name in parts
    }
    if "BYYEARDAY" in parts and freq in {"DAILY", "WEEKLY", "MONTHLY"}:
        raise RecurrenceError("BYYEARDAY is only allowed with FREQ=YEARLY")
    if "BYWEEKNO" in parts and freq != "YEARLY":
        raise RecurrenceError("BYWEEKNO is only allowed with FREQ=YEARLY")
    if "BYMONTHDAY" in parts and freq == "WEEKLY":
        raise RecurrenceError("BYMONTHDAY is not allowed with FREQ=WEEKLY")
    if "WKST" in parts and parts["WKST"] not in set(WEEKDAYS.values()):
        raise RecurrenceError("WKST must be a weekday (MO..SU)")
    if "BYDAY" in parts:
        for item in parts["BYDAY"].split(","):
            match = re.fullmatch(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)", item.strip())
            if match is None:
                raise RecurrenceError(
                    f"Invalid RRULE: BYDAY value '{item[:10]}' is not a weekday such as MO or 2TU"
                )
            if match.group(1) is not None:
                nth, most = int(match.group(1)), (5 if freq == "MONTHLY" else 53)
                if freq not in {"MONTHLY", "YEARLY"}:
                    raise RecurrenceError("BYDAY ordinals (2TU) need FREQ=MONTHLY or YEARLY")
                if nth == 0 or abs(nth) > most:
                    raise RecurrenceError(f"BYDAY ordinals must be between 1 and {most} (or -)")
    months = numbers.get("BYMONTH") or range(1, 13)
    days = numbers.get("BYMONTHDAY")
    if days and not any(abs(day) <= MONTH_DAYS[month - 1] for month in months for day in days):
        raise RecurrenceError(
            "The recurrence produces no occurrence: no month in BYMONTH has that BYMONTHDAY"
        )


# --- budgeted expansion ---------------------------------------------------------------------

days_scanned = 0  # candidate days examined by every walk so far (a metric; tests read it)


class ScanLimitReached(Exception):
    """A walk examined as many candidate days as its budget allows."""


class _CountingIterinfo(dateutil.rrule._iterinfo):  # type: ignore[name-defined]
    """dateutil's per-walk helper, counting the candidate days of each period it hands out."""

    def _tick(self, dayset: Any) -> Any:
        global days_scanned
        budget, days = self.rrule._parley_budget, dayset[2] - dayset[1]  # type: ignore[attr-defined]
        if budget[0] + days > budget[1]:
            raise ScanLimitReached  # before dateutil examines this period's days
        budget[0] += days
        days_scanned += days
        return dayset

    def ydayset(self, *args: int) -> Any:
        return self._tick(super().ydayset(*args))

    def mdayset(self, *args: int) -> Any:
        return self._tick(super().mdayset(*args))

    def wdayset(self, *args: int) -> Any:
        return self._tick(super().wdayset(*args))

    def ddayset(self, *args: int) -> Any:
        return self._tick(super().ddayset(*args))


# dateutil's own walk (`rrule._iter`), run with the counting helper in place of `_iterinfo`:
# the same code, bounded, without patching the module for anyone else.
_dateutil_iter: Any = vars(rrule)["_iter"]
_budgeted_iter = types.FunctionType(
    _dateutil_iter.__code__,
    {**vars(dateutil.rrule), "_iterinfo": _CountingIterinfo},
    "_budgeted_iter",
    _dateutil_iter.__defaults__,
    _dateutil_iter.__closure__,
)


def compile_rule(
    recurrence: Recurrence, start_local: dt.datetime, *, scan_days: int = SCAN_DAYS
) -> rrule:
    """The dateutil rule, whose walks raise ScanLimitReached after `scan_days` candidate days."""
    compiled = rrulestr(recurrence.rule, dtstart=start_local)
    compiled._parley_budget = [0, scan_days]  # type: ignore[union-attr]
    compiled._iter = types.MethodType(_budgeted_iter, compiled)  # type: ignore[union-attr]
    return compiled  # type: ignore[return-value]


def walk(
    recurrence: Recurrence, *, start_local: dt.datetime, until_local: dt.datetime
) -> Iterator[dt.datetime]:
    """Local starts up to `until_local` (inclusive), EXDATEs kept; the work is bounded by the
    span asked for (plus one period), and never more than MAX_SCAN_DAYS."""
    span = max(0, (until_local - start_local).days) + 2 * 366
    rule = compile_rule(recurrence, start_local, scan_days=min(span, MAX_SCAN_DAYS))
    try:
        for local in rule:
            if local > until_local:
                return
            yield local
    except ScanLimitReached:
        return  # no start up to `until_local` was left unseen, or MAX_SCAN_DAYS ended the walk


def expand(
    recurrence: Recurrence,
    *,
    start: dt.datetime,
    zone: ZoneInfo,
    after: dt.datetime,
    before: dt.datetime,
    inclusive: bool = True,
) -> list[tuple[dt.datetime, dt.datetime]]:
    """(local wall-clock start, UTC start) of each occurrence with after <= start < before
    (UTC bounds; `after` exclusive when inclusive=False), EXDATEs removed."""
    start_local = to_local(start, zone)
    lo = to_local(after, zone) - dt.timedelta(days=1)
    hi = to_local(before, zone) + dt.timedelta(days=1)
    excluded = set(recurrence.exdates)
    out = []
    for local in walk(recurrence, start_local=start_local, until_local=hi):
        if local < lo or local in excluded:
            continue
        utc = to_utc(local, zone)
        if (utc >= after if inclusive else utc > after) and utc < before:
            out.append((local, utc))
    return out


def last_start(recurrence: Recurrence, *, start: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """UTC start of a finite series' last occurrence (COUNT or UNTIL; EXDATEs ignored), or
    None for an endless one. Validated series end within MAX_YEARS, so the walk is short."""
    if "COUNT=" not in recurrence.rule and "UNTIL=" not in recurrence.rule:
        return None
    start_local = to_local(start, zone)
    horizon = start_local.replace(year=min(start_local.year + MAX_YEARS + 1, 9999), day=1)
    last = None
    for local in walk(recurrence, start_local=start_local, until_local=horizon):
        last = local
    return to_utc(last, zone) if last is not None else None


def from_text(text: str) -> Recurrence:
    """Rebuild a stored rule (as written by `Recurrence.as_text`)."""
    rule, exdates = "", []
    for line in text.splitlines():
        if line.startswith("RRULE:"):
            rule = line[6:]
        elif line.startswith("EXDATE:"):
            exdates = [dt.datetime.strptime(v, "%Y%m%dT%H%M%S") for v in line[7:].split(",")]
    return Recurrence(rule=rule, exdates=tuple(exdates))
