"""Bounded memory of the recent past: the power series and the day's hourly energy, per meter.

Both are filled by the status page's reading listener, once per published reading, so adding to
them is a handful of array stores; they never grow past their capacity, whatever arrives.
"""

from __future__ import annotations

import math
from array import array
from datetime import datetime

__all__ = ["HourBars", "PowerRing"]

RESOLUTION = 1.0
"""Seconds: a sample closer than this to the previous one replaces it (a replay at full speed)."""


class PowerRing:
    """The newest ``capacity`` samples of (time, import W, export W); a missing power is NaN.

    Three ``array('d')`` of at most ``capacity`` items: 24 octets a sample, so an hour at one
    sample a second is 86 kB, and nothing else is allocated per sample.
    """

    __slots__ = ("_export", "_import", "_next", "_time", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._time = array("d")
        self._import = array("d")
        self._export = array("d")
        self._next = 0
        """Where the next sample goes once the arrays are full (the oldest sample)."""

    def __len__(self) -> int:
        return len(self._time)

    def add(self, when: float, power_import: float | None, power_export: float | None) -> None:
        """Record a sample (seconds since the epoch); within :data:`RESOLUTION` it replaces."""
        imp = math.nan if power_import is None else float(power_import)
        exp = math.nan if power_export is None else float(power_export)
        size = len(self._time)
        if size:
            last = (self._next - 1) % size if size == self.capacity else size - 1
            if 0 <= when - self._time[last] < RESOLUTION:
                self._import[last], self._export[last] = imp, exp
                return
        if size < self.capacity:
            self._time.append(when)
            self._import.append(imp)
            self._export.append(exp)
            return
        index = self._next
        self._time[index], self._import[index], self._export[index] = when, imp, exp
        self._next = (index + 1) % self.capacity

    def newest(self) -> tuple[float, float | None, float | None] | None:
        """The latest sample, None before the first."""
        size = len(self._time)
        if not size:
            return None
        last = (self._next - 1) % size if size == self.capacity else size - 1
        return self._time[last], _value(self._import[last]), _value(self._export[last])

    def since(self, start: float) -> list[tuple[float, float | None, float | None]]:
        """The samples at or after ``start``, oldest first; NaN (no value) as None."""
        size = len(self._time)
        first = self._next if size == self.capacity else 0
        found: list[tuple[float, float | None, float | None]] = []
        for offset in range(size):
            index = (first + offset) % size
            when = self._time[index]
            if when >= start:
                found.append((when, _value(self._import[index]), _value(self._export[index])))
        return found


def _value(number: float) -> float | None:
    return None if math.isnan(number) else number


class HourBars:
    """The closed hours' energy (``energy_import_last_hour`` by its start), the newest ``keep``."""

    __slots__ = ("_hours", "keep")

    def __init__(self, keep: int = 48) -> None:
        self.keep = keep
        self._hours: dict[str, float] = {}

    def add(self, start: str, kwh: float) -> bool:
        """Record (or correct) the hour starting at ``start`` (ISO 8601); False if it is not one."""
        try:
            datetime.fromisoformat(start)
        except ValueError:
            return False
        if len(start) < 13 or not math.isfinite(kwh):
            return False
        self._hours.pop(start, None)
        self._hours[start] = kwh
        while len(self._hours) > self.keep:
            del self._hours[next(iter(self._hours))]
        return True

    def day(self, date: str | None = None) -> tuple[str | None, list[tuple[int, float]]]:
        """The hours of ``date`` (``YYYY-MM-DD``; default: the newest hour's) as (hour, kWh).

        Dates and hours are read from the ISO text, so they are the meter's local ones.
        """
        if not self._hours:
            return date, []
        date = date or next(reversed(self._hours))[:10]
        by_hour: dict[int, float] = {}
        for start, kwh in self._hours.items():
            if start[:10] == date:
                # The autumn DST day has two hours that start at 02:00: one bar, their sum.
                by_hour[int(start[11:13])] = by_hour.get(int(start[11:13]), 0.0) + kwh
        return date, sorted(by_hour.items())
