"""Capacity (peak) tariffs: the month's top windows, the tier, and the headroom left.

One model covers the Norwegian capacity fee (the mean of the three highest hourly consumptions of
the month, each on a different day, in tiers), Swedish peak fees (highest hour, daytime or winter
only) and the Flemish one (the highest quarter hour of the month).  Windows start on the local
clock; a window counts when its start passes the ``hours``, ``months`` and ``weekdays`` filters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Final, NamedTuple

from han2mqtt.energy.clock import month_end, month_key

__all__ = ["PRESETS", "WEEKDAYS", "CapacityTariff", "Peak", "TariffModel"]

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class TariffModel:
    """How a grid operator bills the month's peaks.

    Attributes:
        window: minutes per window (60 or 15).
        peaks: how many of the month's highest windows are averaged.
        distinct_days: at most one window per local day counts (Norway).
        tiers: upper thresholds of the tiers in kW (mean power over a window), ascending.
        hours: local ``(from, to)`` hours in which windows count (``[(6, 22)]``); empty: all.
        months: months (1-12) in which windows count; empty: all.
        weekdays: weekdays (0 = Monday) on which windows count; empty: all.
    """

    window: int = 60
    peaks: int = 1
    distinct_days: bool = False
    tiers: tuple[float, ...] = ()
    hours: tuple[tuple[int, int], ...] = ()
    months: frozenset[int] = field(default_factory=frozenset)
    weekdays: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.window not in (15, 60) or self.peaks < 1:
            raise ValueError("a tariff window is 15 or 60 minutes, with at least one peak")
        if any(b <= a for a, b in zip(self.tiers, self.tiers[1:], strict=False)):
            raise ValueError("tariff tiers must be ascending")

    def counts(self, local_start: datetime) -> bool:
        """Whether a window starting at ``local_start`` (local time) counts towards the peaks."""
        hours_ok = not self.hours or any(a <= local_start.hour < b for a, b in self.hours)
        months_ok = not self.months or local_start.month in self.months
        return (
            hours_ok and months_ok and (not self.weekdays or local_start.weekday() in self.weekdays)
        )

    def tier(self, average: float) -> tuple[str, float | None] | None:
        """The tier's label (``5-10``, ``100+``) and upper threshold (kW) for a mean power."""
        if not self.tiers:
            return None
        lower = 0.0
        for upper in self.tiers:
            if average < upper:
                return f"{lower:g}-{upper:g}", upper
            lower = upper
        return f"{lower:g}+", None


PRESETS: Final = {
    # Norway (NVE's capacity fee): 3 hours, each on its own day; the tiers most operators use.
    "no": TariffModel(60, 3, distinct_days=True, tiers=(2, 5, 10, 15, 20, 25, 50, 75, 100)),
    # Flanders: the month's highest quarter hour (billed per kW, no tiers).
    "be": TariffModel(15, 1),
}


_Context = tuple[list[float], float | None, float]


class Peak(NamedTuple):
    """One closed window: its start (UTC) and its energy (kWh)."""

    start: datetime
    energy: float


class CapacityTariff:
    """The month's windows, per local day (the top ``peaks`` of each day are kept).

    Args:
        model: the tariff model.
        zone: the local time zone.
    """

    def __init__(self, model: TariffModel, zone: tzinfo) -> None:
        self.model = model
        self.zone = zone
        self.month: str | None = None
        self.days: dict[str, list[Peak]] = {}
        self._month_end: datetime | None = None
        # Derived from ``days``, cleared whenever they change (once a window, not every frame).
        self._peaks: list[Peak] | None = None
        self._contexts: dict[datetime, _Context | None] = {}

    def roll(self, moment: datetime) -> None:
        """Start a new month's record once ``moment`` lies in a later month."""
        if self._month_end is not None and moment < self._month_end:
            return
        key = month_key(moment, self.zone)
        if self.month is None or key > self.month:
            self.month, self.days = key, {}
            self._forget()
        self._month_end = month_end(moment, self.zone)

    def close(self, start: datetime, energy: float) -> None:
        """Record (or correct) the energy of the window starting at ``start``."""
        local = start.astimezone(self.zone)
        if self.month is None:
            self.roll(start)
        if not self.model.counts(local) or month_key(start, self.zone) != self.month:
            return  # filtered out, or a correction that arrives after the month's end
        day = local.date().isoformat()
        kept = [peak for peak in self.days.get(day, []) if peak.start != start]
        kept.append(Peak(start, energy))
        per_day = 1 if self.model.distinct_days else self.model.peaks
        self.days[day] = sorted(kept, key=_rank)[:per_day]
        self._forget()

    def _forget(self) -> None:
        self._peaks = None
        self._contexts.clear()

    def peaks(self) -> list[Peak]:
        """The month's top windows (one per day with ``distinct_days``), highest first."""
        if self._peaks is None:
            ranked = sorted(_candidates(self.days.values()), key=_rank)
            self._peaks = ranked[: self.model.peaks]
        return self._peaks

    def average(self) -> float | None:
        """Mean power (kW) of the month's top windows so far; None before the first."""
        top = self.peaks()
        if not top:
            return None
        return sum(peak.energy for peak in top) / len(top) * 60 / self.model.window

    def headroom(self, start: datetime, energy: float) -> float | None:
        """The energy (kWh) the window at ``start`` may still use within the current tier.

        That is, before the month's mean of its top windows crosses the current tier's upper
        threshold, honouring the distinct-day rule; 0 if already crossed.  The current tier is
        the one of the closed windows' mean.  None when the window does not
        count, or the tier has no upper threshold.
        """
        if start not in self._contexts:
            self._contexts[start] = self._context(start)
        context = self._contexts[start]
        if context is None:
            return None
        others, best, limit = context
        current = energy if best is None else max(energy, best)
        return _room(others, current, energy, self.model.peaks, limit)

    def _context(self, start: datetime) -> _Context | None:
        """What the headroom of the window at ``start`` depends on, other than its energy.

        The other candidates (highest first), the best window of its own day so far (with
        distinct days), and the threshold in kWh per window; None if there is no headroom.
        """
        local = start.astimezone(self.zone)
        tier = self.model.tier(self.average() or 0.0)
        if tier is None or tier[1] is None or not self.model.counts(local):
            return None
        limit = tier[1] * self.model.window / 60  # kWh per window at the threshold
        if not self.model.distinct_days:
            others = [peak.energy for peaks in self.days.values() for peak in peaks]
            return sorted(others, reverse=True), None, limit
        # This window competes with its own day's best; the other days' bests stand.
        day = local.date().isoformat()
        others = [best[0].energy for key, best in self.days.items() if key != day and best]
        today = self.days.get(day, [])
        return sorted(others, reverse=True), today[0].energy if today else None, limit


def _room(others: list[float], current: float, energy: float, peaks: int, limit: float) -> float:
    """Solve "mean of the top ``peaks`` of ``others`` + [y] = ``limit``" for y, minus ``energy``.

    ``others`` is sorted, highest first; ``current`` is this window's entry as it stands (its
    energy, or its day's best window if that is higher).
    """
    count = min(peaks, len(others) + 1)
    fixed = sum(others[: count - 1])
    floor = others[count - 1] if len(others) >= count else None
    entry = current if floor is None else max(current, floor)
    if (fixed + entry) / count >= limit:
        return 0.0
    return count * limit - fixed - energy


def _candidates(days: Iterable[list[Peak]]) -> list[Peak]:
    return [peak for peaks in days for peak in peaks]


def _rank(peak: Peak) -> tuple[float, datetime]:
    """Highest energy first; of equal ones, the earliest (ties do not change the mean)."""
    return (-peak.energy, peak.start)
