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

from han2mqtt.energy.clock import window_start
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

    def feed(self, capture: datetime, register: float) -> list[LedgerInterval]:
        """One reading (capture time aware, register in the meter's unit); the closed intervals."""
        capture = self._snap(capture.astimezone(UTC))
        point = self.point
        if point is not None and capture <= point[0]:
            return []  # the telegram repeats the last reading (or an older one)
        if point is None or capture - point[0] > MAX_SPAN or register < point[1]:
            self.point, self.open, self.hours = (capture, register), {}, {}
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
                continue  # seen in part (the first reading fell inside it): absent
            out.append(self._interval(start, entry.volume, entry.beyond_quarter, 15))
            parts = self.hours.setdefault(hour, [])
            parts.append((entry.volume, entry.beyond_quarter, entry.beyond_hour))
            if start + _QUARTER == hour + timedelta(hours=1):
                del self.hours[hour]
                if len(parts) == 4:
                    estimated = any(beyond for _, _, beyond in parts)
                    out.append(self._interval(hour, sum(v for v, _, _ in parts), estimated, 60))
        return out

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
            "hours": [[h.isoformat(), [list(p) for p in parts]] for h, parts in self.hours.items()],
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


def _time(text: object) -> datetime:
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"a time without its offset: {text}")
    return moment.astimezone(UTC)
