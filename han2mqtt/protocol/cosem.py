"""COSEM value types: date-time, date, time (Blue Book §4.1.6.1), and physical units.

Units are the Blue Book table "Enumerated values for physical units", as used by the
``scaler_unit`` attribute of Register objects.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final, NamedTuple

from han2mqtt.errors import AxdrError

__all__ = [
    "CLOCK_STATUS_DAYLIGHT_SAVING",
    "UNIT_SYMBOLS",
    "CosemDate",
    "CosemDateTime",
    "CosemTime",
    "date_time_text",
    "unit_symbol",
]

_NOT_SPECIFIED_16: Final = 0xFFFF
_NOT_SPECIFIED: Final = 0xFF
DEVIATION_NOT_SPECIFIED: Final = -0x8000
"""0x8000 in the deviation field: the offset to UTC is not given."""
CLOCK_STATUS_DAYLIGHT_SAVING: Final = 0x80
"""Clock status bit 7: daylight saving time is active."""
_DATE_TIME: Final = struct.Struct(">HBBBBBBBhB")
_MAX_DEVIATION: Final = 720


class CosemDateTime(NamedTuple):
    """A COSEM date-time (12 octets). Fields hold ``None`` where the meter sends "not specified".

    ``deviation`` is in minutes and, as the meters in the field use it, has the opposite sign of
    the UTC offset: a Swedish meter in winter sends -60 for local time UTC+01:00.
    """

    year: int | None
    month: int | None
    day: int | None
    weekday: int | None
    hour: int | None
    minute: int | None
    second: int | None
    hundredths: int | None
    deviation: int | None
    clock_status: int | None

    @classmethod
    def from_bytes(cls, raw: bytes) -> CosemDateTime:
        """Parse the 12-octet encoding; reject impossible field values with AxdrError."""
        if len(raw) != _DATE_TIME.size:
            raise AxdrError(f"date-time needs 12 octets, got {len(raw)}")
        year, month, day, weekday, hour, minute, second, hundredths, deviation, status = (
            _DATE_TIME.unpack(raw)
        )
        return cls(
            None if year == _NOT_SPECIFIED_16 else year,
            _spec(month),
            _spec(day),
            _spec(weekday),
            _spec(hour),
            _spec(minute),
            _spec(second),
            _spec(hundredths),
            None if deviation == DEVIATION_NOT_SPECIFIED else deviation,
            _spec(status),
        )

    @property
    def utc_offset(self) -> timedelta | None:
        """The UTC offset the deviation implies, or None when not given or out of range."""
        if self.deviation is None or abs(self.deviation) > _MAX_DEVIATION:
            return None
        return timedelta(minutes=-self.deviation)

    def to_datetime(self, *, use_deviation: bool = True) -> datetime | None:
        """Return a :class:`datetime` (aware when the deviation is known), or None if incomplete.

        Args:
            use_deviation: False for meters known to send local time with a wrong deviation.
        """
        parts = (self.year, self.month, self.day, self.hour, self.minute)
        if any(part is None for part in parts):
            return None
        offset = self.utc_offset if use_deviation else None
        tzinfo = None if offset is None else (UTC if not offset else timezone(offset))
        try:
            return datetime(
                self.year or 0,
                self.month or 0,
                self.day or 0,
                self.hour or 0,
                self.minute or 0,
                self.second or 0,
                tzinfo=tzinfo,
            )
        except ValueError:
            return None  # month 0xFD/0xFE (DST markers) or a day that does not exist

    def isoformat(self, *, use_deviation: bool = True) -> str | None:
        """ISO 8601 text (``2017-08-16T16:00:05``, ``2021-09-22T17:35:30+01:00``) or None."""
        value = self.to_datetime(use_deviation=use_deviation)
        return None if value is None else value.isoformat()


_ZONES: Final[dict[int, tzinfo]] = {}
"""Deviation (minutes) → time zone; at most 1,441 entries (-720..720)."""


def date_time_text(raw: bytes, *, use_deviation: bool = True) -> str | None:
    """``CosemDateTime.from_bytes(raw).isoformat(use_deviation=...)`` without the tuple between.

    Every frame carries a time stamp or two, so this is on the hot path; tests pin that both give
    the same text for any 12 octets.

    Raises:
        AxdrError: ``raw`` is not 12 octets long.
    """
    if len(raw) != _DATE_TIME.size:
        raise AxdrError(f"date-time needs 12 octets, got {len(raw)}")
    year, month, day, _, hour, minute, second, _, deviation, _ = _DATE_TIME.unpack(raw)
    if year == _NOT_SPECIFIED_16 or _NOT_SPECIFIED in (month, day, hour, minute):
        return None
    zone = None
    if use_deviation and deviation != DEVIATION_NOT_SPECIFIED and abs(deviation) <= _MAX_DEVIATION:
        zone = _ZONES.get(deviation)
        if zone is None:
            zone = _ZONES[deviation] = (
                UTC if not deviation else timezone(timedelta(minutes=-deviation))
            )
    try:
        moment = datetime(
            year, month, day, hour, minute, 0 if second == _NOT_SPECIFIED else second, tzinfo=zone
        )
    except ValueError:
        return None  # month 0xFD/0xFE (DST markers) or a day that does not exist
    return moment.isoformat()


class CosemDate(NamedTuple):
    """A COSEM date (5 octets: year, month, day, weekday)."""

    year: int | None
    month: int | None
    day: int | None
    weekday: int | None

    @classmethod
    def from_bytes(cls, raw: bytes) -> CosemDate:
        """Parse the 5-octet encoding."""
        year = int.from_bytes(raw[:2], "big")
        return cls(
            None if year == _NOT_SPECIFIED_16 else year, _spec(raw[2]), _spec(raw[3]), _spec(raw[4])
        )


class CosemTime(NamedTuple):
    """A COSEM time (4 octets: hour, minute, second, hundredths)."""

    hour: int | None
    minute: int | None
    second: int | None
    hundredths: int | None

    @classmethod
    def from_bytes(cls, raw: bytes) -> CosemTime:
        """Parse the 4-octet encoding."""
        return cls(_spec(raw[0]), _spec(raw[1]), _spec(raw[2]), _spec(raw[3]))


def _spec(value: int) -> int | None:
    return None if value == _NOT_SPECIFIED else value


UNIT_SYMBOLS: Final[dict[int, str]] = {
    1: "a",
    2: "mo",
    3: "wk",
    4: "d",
    5: "h",
    6: "min",
    7: "s",
    8: "°",
    9: "°C",
    11: "m",
    12: "m/s",
    13: "m³",
    14: "m³",
    15: "m³/h",
    16: "m³/h",
    17: "m³/d",
    18: "m³/d",
    19: "l",
    20: "kg",
    23: "Pa",
    24: "bar",
    25: "J",
    26: "J/h",
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    34: "C",
    35: "V",
    44: "Hz",
    52: "K",
    56: "%",
    57: "Ah",
}
"""Blue Book unit enumeration → symbol, for the units smart meters use."""


def unit_symbol(unit: int) -> str | None:
    """Return the symbol of a Blue Book unit code, None for "count"/"other"/unknown."""
    return UNIT_SYMBOLS.get(unit)
