"""Meter time on the local clock: hours, days, tariff windows and months in an IANA zone.

Everything is computed from the meter's own timestamps.  Internally times are aware UTC
``datetime``s; local boundaries come from the zone, so a DST day has 23 or 25 hours and the hour
02:00-03:00 that a fall-back day repeats is two distinct hours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final

__all__ = [
    "REPEATED_HOUR_SLACK",
    "day_start",
    "local_iso",
    "month_end",
    "month_key",
    "next_day_start",
    "parse_meter_time",
    "window_start",
]

REPEATED_HOUR_SLACK: Final = timedelta(minutes=10)
"""How far a naive meter time may go back before it is read as the repeated (second) hour."""


def parse_meter_time(text: str, zone: tzinfo, *, after: datetime | None = None) -> datetime | None:
    """The UTC time of a ``meter_datetime`` (ISO 8601; without an offset it is local time).

    A naive time in the hour a fall-back day repeats is ambiguous: it is the first occurrence
    unless that lies well before ``after`` (the previous frame's time), then the second.
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    first = value.replace(tzinfo=zone).astimezone(UTC)
    if after is not None and first < after - REPEATED_HOUR_SLACK:
        second = value.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if second != first:
            return second
    return first


def window_start(moment: datetime, zone: tzinfo, minutes: int) -> datetime:
    """The start of the local clock window (60: the hour, 15: the quarter) holding ``moment``."""
    local = moment.astimezone(zone)
    into = timedelta(
        minutes=local.minute % minutes, seconds=local.second, microseconds=local.microsecond
    )
    return moment - into


def day_start(moment: datetime, zone: tzinfo) -> datetime:
    """Local midnight at the start of ``moment``'s day, in UTC."""
    return _midnight(moment.astimezone(zone).date(), zone)


def next_day_start(moment: datetime, zone: tzinfo) -> datetime:
    """Local midnight at the end of ``moment``'s day (23, 24 or 25 hours after its start)."""
    return _midnight(moment.astimezone(zone).date() + timedelta(days=1), zone)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def month_key(moment: datetime, zone: tzinfo) -> str:
    """``2024-03``: the local month of ``moment``."""
    return moment.astimezone(zone).strftime("%Y-%m")


def month_end(moment: datetime, zone: tzinfo) -> datetime:
    """Local midnight at the start of the month after ``moment``'s, in UTC."""
    local = moment.astimezone(zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return _midnight(date(year, month, 1), zone)


def local_iso(moment: datetime, zone: tzinfo) -> str:
    """ISO 8601 local time with its offset (``2024-10-27T02:00:00+01:00``)."""
    return moment.astimezone(zone).isoformat()
