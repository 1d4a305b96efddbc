"""The ledger of a gas or water meter: each reading's increase booked where it was used.

Sans-IO, like :mod:`han2mqtt.energy.ledger`, and giving the same :class:`LedgerInterval` values
(their ``import_kwh`` holds the volume, in the meter's unit, m³; ``export_kwh`` is None and
``kind`` says what they measure).  A sub-meter behind a P1 port sends its register with the
moment the device *captured* it (``0-n:24.2.1(capture time)(value*m3)``): a DSMR 4 gas meter
once an hour, stamped with the hour it was taken; a DSMR 5 meter every 5 minutes.  The telegram
repeats the last reading until the next one is captured.

* The increase from one reading to the next was used between their capture times: it is booked
  over the quarters that span covers, in proportion to the time each covers (the flow between two
  readings is not known, so a span over several quarters spreads evenly).  A capture time up to
  :data:`SNAP` after a quarter boundary counts as taken at the boundary (meters stamp the second
  they took it: ``223001S`` for the 22:30 reading).
* So an hourly DSMR 4 reading stamped 10:00 books the 09:00-10:00 hour: hourly gas lands in the
  hour it was used, not in the hour after.
* A quarter (or hour) is ``exact`` when no span booked into it reaches beyond it (readings on its
  boundaries, or inside it), else ``estimated``.  A quarter is emitted once a reading at or after
  its end is known and spans covered all of it; an hour once all its quarters are.  Intervals
  before the first reading, or whose span was longer than :data:`MAX_SPAN` (or crossed a register
  that went backwards: a new meter), are absent, never a partial value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final

from han2mqtt.energy.clock import day_start, window_start
from han2mqtt.energy.ledger import LedgerInterval

__all__ = ["MAX_SPAN", "SNAP", "VOLUME_FIELDS", "VolumeLedger"]

VOLUME_FIELDS: Final = {"gas_total": "gas", "water_total": "water"}
"""The sub-meter registers the ledger keeps, and the kind each is."""
SNAP: Final = timedelta(seconds=10)
MAX_SPAN: Final = timedelta(days=7)
"""Readings further apart than this are not spread over the days between: started over."""
_QUARTER: Final = timedelta(minutes=15)
_QUARTER_SECONDS: Final = 900.0


class _Quarter:
    """One open quarter: volume, seconds covered, whether a span reached beyond it (its hour)."""

    __slots__ = ("beyond_hour", "beyond_quarter", "covered", "volume")

    def __init__(self) -> None:
        self.volume = 0.0
        self.covered = 0.0
        self.beyond_quarter = False
        self.beyond_hour = False


class VolumeLedger:
    """Quarters and hours of one gas or water meter's volume, from its captured readings."""

    def __init__(self, meter: str, zone: tzinfo, kind: str) -> None:
        self.meter = meter
        self.zone = zone
        self.kind = kind
        self.point: tuple[datetime, float] | None = None
        """The last reading booked: (capture time, register)."""
        self.open: dict[datetime, _Quarter] = {}
        self.hours: dict[datetime, list[tuple[float, bool, bool]]] = {}
        """Closed quarters of hours not yet whole: (volume, estimated, beyond its hour)."""
        self.since: datetime | None = None
        """The start of the unbroken run of closed quarters (sums from it on are whole)."""
        self.expected: datetime | None = None
        """The end of the last closed quarter."""
        self.day: tuple[datetime, float] | None = None
        """(local day's start, volume of its closed quarters) of the last closed quarter."""
        self.month: tuple[datetime, float] | None = None

    def feed(self, capture: datetime, register: float) -> list[LedgerInterval]:
        """One reading (capture time aware, register in the meter's unit); the closed intervals."""
        capture = self._snap(capture.astimezone(UTC))
        point = self.point
        if point is not None and capture <= point[0]:
            return []  # the telegram repeats the last reading (or an older one)
        if point is None or capture - point[0] > MAX_SPAN or register < point[1]:
            self.point, self.open, self.hours = (capture, register), {}, {}
            self.since = None
            return []
        self._spread(point[0], capture, register - point[1])
        self.point = (capture, register)
        return self._close(capture)

    def _snap(self, moment: datetime) -> datetime:
        boundary = window_start(moment, self.zone, 15)
        return boundary if moment - boundary <= SNAP else moment

    def _spread(self, first: datetime, last: datetime, volume: float) -> None:
        span = (last - first).total_seconds()
        quarter = window_start(first, self.zone, 15)
        hour_first = window_start(first, self.zone, 60)
        hour_last = window_start(last - timedelta(microseconds=1), self.zone, 60)
        while quarter < last:
            end = quarter + _QUARTER
            seconds = (min(end, last) - max(quarter, first)).total_seconds()
            entry = self.open.setdefault(quarter, _Quarter())
            entry.volume += volume * seconds / span
            entry.covered += seconds
            entry.beyond_quarter |= first < quarter or last > end
            entry.beyond_hour |= hour_first != hour_last
            quarter = end

    def _close(self, now: datetime) -> list[LedgerInterval]:
        out: list[LedgerInterval] = []
        for start in sorted(self.open):
            if start + _QUARTER > now:
                break
            entry = self.open.pop(start)
            hour = window_start(start, self.zone, 60)
            if entry.covered < _QUARTER_SECONDS - 1e-6:
                self.hours.pop(hour, None)
                self.since = None
                continue  # seen in part (the first reading fell inside it): absent
            out.append(self._interval(start, entry.volume, entry.beyond_quarter, 15))
            self._count(start, entry.volume)
            parts = self.hours.setdefault(hour, [])
            parts.append((entry.volume, entry.beyond_quarter, entry.beyond_hour))
            if start + _QUARTER == hour + timedelta(hours=1):
                del self.hours[hour]
                if len(parts) == 4:
                    estimated = any(beyond for _, _, beyond in parts)
                    out.append(self._interval(hour, sum(v for v, _, _ in parts), estimated, 60))
        return out

    def _count(self, start: datetime, volume: float) -> None:
        """Add a closed quarter to the run and to its day's and month's sums."""
        if self.since is None or start != self.expected:
            self.since = start
        self.expected = start + _QUARTER
        day, month = day_start(start, self.zone), month_start(start, self.zone)
        self.day = (day, volume + (self.day[1] if self.day and self.day[0] == day else 0.0))
        self.month = (
            month,
            volume + (self.month[1] if self.month and self.month[0] == month else 0.0),
        )

    def totals(self, now: datetime) -> tuple[float | None, float | None]:
        """The volume of today's and this month's closed quarters at ``now`` (None: not whole).

        Known when the run of closed quarters reaches back to the period's start unbroken.
        """
        day, month = day_start(now, self.zone), month_start(now, self.zone)
        return _sum(self.since, self.day, day), _sum(self.since, self.month, month)

    def _interval(
        self, start: datetime, volume: float, estimated: bool, minutes: int
    ) -> LedgerInterval:
        return LedgerInterval(self.meter, start, volume, None, estimated, minutes, self.kind)

    def dump(self) -> dict[str, Any]:
        """The state as JSON-ready values (for the state file)."""
        return {
            "kind": self.kind,
            "point": None if self.point is None else [self.point[0].isoformat(), self.point[1]],
            "open": [
                [s.isoformat(), q.volume, q.covered, q.beyond_quarter, q.beyond_hour]
                for s, q in self.open.items()
            ],
            "hours": [
                [hour.isoformat(), [list(part) for part in parts]]
                for hour, parts in self.hours.items()
            ],
            "since": None if self.since is None else self.since.isoformat(),
            "expected": None if self.expected is None else self.expected.isoformat(),
            "day": _iso(self.day),
            "month": _iso(self.month),
        }

    def load(self, saved: Mapping[str, Any]) -> None:
        """Restore :meth:`dump`'s output (raises KeyError, TypeError or ValueError if damaged)."""
        point = saved["point"]
        self.point = None if point is None else (_time(point[0]), float(point[1]))
        self.open = {}
        for start, volume, covered, beyond_quarter, beyond_hour in saved["open"]:
            entry = self.open[_time(start)] = _Quarter()
            entry.volume, entry.covered = float(volume), float(covered)
            entry.beyond_quarter, entry.beyond_hour = bool(beyond_quarter), bool(beyond_hour)
        self.hours = {
            _time(hour): [(float(v), bool(q), bool(h)) for v, q, h in parts]
            for hour, parts in saved["hours"]
        }
        self.since = None if saved["since"] is None else _time(saved["since"])
        self.expected = None if saved["expected"] is None else _time(saved["expected"])
        self.day, self.month = _pair(saved["day"]), _pair(saved["month"])


def _sum(
    since: datetime | None, total: tuple[datetime, float] | None, start: datetime
) -> float | None:
    if since is None or since > start:
        return None
    return total[1] if total is not None and total[0] == start else 0.0


def month_start(moment: datetime, zone: tzinfo) -> datetime:
    """Local midnight on the first of ``moment``'s month, in UTC."""
    local = moment.astimezone(zone)
    return datetime(local.year, local.month, 1, tzinfo=zone).astimezone(UTC)


def _pair(value: object) -> tuple[datetime, float] | None:
    if value is None:
        return None
    moment, volume = list(value)  # type: ignore[call-overload]
    return _time(moment), float(volume)


def _iso(pair: tuple[datetime, float] | None) -> list[Any] | None:
    return None if pair is None else [pair[0].isoformat(), pair[1]]


def _time(text: object) -> datetime:
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"a time without its offset: {text}")
    return moment.astimezone(UTC)
