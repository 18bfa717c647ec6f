"""Recurrence rules: parse, validate and expand them in a room's IANA time zone.

Rules are RFC 5545 RRULEs expanded on *local* wall-clock times (python-dateutil, which follows
RFC 5545 for month ends and leap days: a monthly rule on the 31st skips shorter months, a
yearly rule on 29 February only hits leap years), then each local time is placed in the zone:
a weekly 09:00 Europe/Berlin stays 09:00 Berlin time on both sides of a DST change. A local
time that does not exist (spring-forward gap) is read with the offset before the gap, and an
ambiguous one (fall-back) as its first occurrence, as RFC 5545 section 3.3.5 says.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.rrule import rrule, rruleset, rrulestr

MAX_COUNT = 1000  # occurrences one rule may produce when bounded by COUNT
MAX_YEARS = 10  # UNTIL may not reach further than this
ALLOWED_FREQ = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
FORBIDDEN_PARTS = {"BYHOUR", "BYMINUTE", "BYSECOND", "DTSTART", "WKST_INVALID"}
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
    if "INTERVAL" in parts:
        if not parts["INTERVAL"].isdigit() or not 1 <= int(parts["INTERVAL"]) <= 366:
            raise RecurrenceError("INTERVAL must be between 1 and 366")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("COUNT and UNTIL cannot both be given (RFC 5545)")
    if "COUNT" in parts:
        if not parts["COUNT"].isdigit() or not 1 <= int(parts["COUNT"]) <= MAX_COUNT:
            raise RecurrenceError(f"COUNT must be between 1 and {MAX_COUNT}")
    start_local = to_local(start, zone)
    if "UNTIL" in parts:
        until = _parse_until(parts["UNTIL"], zone)
        if until < start_local:
            raise RecurrenceError("The recurrence ends (UNTIL) before start_time")
        if until > start_local.replace(year=min(start_local.year + MAX_YEARS, 9999), day=1):
            raise RecurrenceError(f"UNTIL may be at most {MAX_YEARS} years after start_time")
        parts["UNTIL"] = until.strftime("%Y%m%dT%H%M%S")
    rule = ";".join(f"{k}={v}" for k, v in parts.items())
    try:
        compiled = rrulestr(rule, dtstart=start_local)
    except (ValueError, TypeError, KeyError) as exc:
        raise RecurrenceError(f"Invalid RRULE: {str(exc)[:120]}") from None
    if compiled.after(start_local - dt.timedelta(seconds=1), inc=True) is None:
        raise RecurrenceError("The recurrence produces no occurrence")
    exdates = sorted(set(exdates))
    return Recurrence(rule=rule, exdates=tuple(exdates))


def compile_rule(recurrence: Recurrence, start_local: dt.datetime) -> rrule | rruleset:
    return rrulestr(recurrence.rule, dtstart=start_local)


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
    rule = compile_rule(recurrence, start_local)
    lo = to_local(after, zone) - dt.timedelta(days=1)
    hi = to_local(before, zone) + dt.timedelta(days=1)
    excluded = set(recurrence.exdates)
    out = []
    for local in rule.between(lo, hi, inc=True):
        if local in excluded:
            continue
        utc = to_utc(local, zone)
        if (utc >= after if inclusive else utc > after) and utc < before:
            out.append((local, utc))
    return out


def from_text(text: str) -> Recurrence:
    """Rebuild a stored rule (as written by `Recurrence.as_text`)."""
    rule, exdates = "", []
    for line in text.splitlines():
        if line.startswith("RRULE:"):
            rule = line[6:]
        elif line.startswith("EXDATE:"):
            exdates = [dt.datetime.strptime(v, "%Y%m%dT%H%M%S") for v in line[7:].split(",")]
    return Recurrence(rule=rule, exdates=tuple(exdates))
