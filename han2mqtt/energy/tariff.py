"""Capacity (peak) tariffs: the month's top windows, billed value, tier, fee and headroom.

One model covers the grids' rules as they write them:

* Norway (NVE's capacity fee): the mean of the month's three highest hours, each on a different
  day, in tiers with a monthly price each; some DSOs take a rolling twelve months.
* Sweden (effektavgift): the highest hour, or the mean of the three highest on different days,
  often only on winter weekdays in the daytime, without public holidays, or with night hours
  counting half; billed per kW, often at a winter and a summer price.
* Flanders (Fluvius): the month's highest quarter hour, at least 2.5 kW, billed on the mean of the
  last twelve monthly values.

Windows start on the local clock; a window counts when its start passes the ``hours``, ``months``
and ``weekdays`` filters and is no excluded public holiday, and its energy counts times the factor
of the first weight that matches its start.  The month's *value* (kW) is the mean of its top
windows; the *billed value* (``tariff_average``) is that value raised to the floor, or with
``rolling-12`` the mean of the last twelve monthly values that exist, each raised to the floor,
this month so far included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Final, Literal, NamedTuple

from han2mqtt.energy.calendar import PublicHolidays
from han2mqtt.energy.clock import month_end, month_key

__all__ = [
    "PERIODS",
    "PRESETS",
    "WEEKDAYS",
    "CapacityTariff",
    "Peak",
    "SeasonPrice",
    "TariffModel",
    "Weight",
    "previous_months",
]

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PERIODS: Final = ("month", "rolling-12")
ROLLING_MONTHS: Final = 12
"""Fluvius bills the mean of the last twelve monthly peaks (this month included)."""
TOLERANCE: Final = 1e-9
"""kWh (or kW) below which two values count as equal: the rolling mean solved back for one
month, or a mean against the level it was computed from, differ by rounding alone."""

Period = Literal["month", "rolling-12"]
Hours = tuple[tuple[int, int], ...]


def _in_hours(hours: Hours, hour: int) -> bool:
    return not hours or any(a <= hour < b for a, b in hours)


@dataclass(frozen=True, slots=True)
class Weight:
    """A window whose start matches counts ``factor`` times its energy (0.5: night hours).

    Empty ``hours``, ``weekdays`` (0 = Monday) or ``months`` match every start.
    """

    factor: float
    hours: Hours = ()
    weekdays: frozenset[int] = field(default_factory=frozenset)
    months: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError("a weight's factor is above 0 (leave windows out with hours/months)")

    def matches(self, local_start: datetime) -> bool:
        """Whether the window starting at ``local_start`` (local time) takes this factor."""
        return (
            _in_hours(self.hours, local_start.hour)
            and (not self.weekdays or local_start.weekday() in self.weekdays)
            and (not self.months or local_start.month in self.months)
        )


@dataclass(frozen=True, slots=True)
class SeasonPrice:
    """The capacity prices of the months in ``months`` (empty: every month).

    ``values`` holds one price per tier (currency per month), or a single price per kW per month.
    """

    values: tuple[float, ...]
    months: frozenset[int] = field(default_factory=frozenset)


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
        period: ``month``, or ``rolling-12`` (the mean of the last 12 monthly values).
        floor: kW each month's value is at least, before any averaging.
        weights: factors for the energy of windows by their start; the first match wins, else 1.
        holidays: public holidays on which windows do not count; None: every day counts.
        prices: per season, the price of each tier or (``per_kw``) the price per kW.
        per_kw: ``prices`` are per kW of the billed value, not per tier.
        past: ``(YYYY-MM, kW)`` monthly values from the bill, before han2mqtt ran (rolling-12).
    """

    window: int = 60
    peaks: int = 1
    distinct_days: bool = False
    tiers: tuple[float, ...] = ()
    hours: Hours = ()
    months: frozenset[int] = field(default_factory=frozenset)
    weekdays: frozenset[int] = field(default_factory=frozenset)
    period: Period = "month"
    floor: float = 0.0
    weights: tuple[Weight, ...] = ()
    holidays: PublicHolidays | None = None
    prices: tuple[SeasonPrice, ...] = ()
    per_kw: bool = False
    past: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.window not in (15, 60) or self.peaks < 1:
            raise ValueError("a tariff window is 15 or 60 minutes, with at least one peak")
        if any(b <= a for a, b in zip(self.tiers, self.tiers[1:], strict=False)):
            raise ValueError("tariff tiers must be ascending")
        if self.period not in PERIODS or self.floor < 0:
            raise ValueError("a tariff period is month or rolling-12, its floor at least 0 kW")
        wanted = 1 if self.per_kw else len(self.tiers) + 1
        if any(len(season.values) != wanted for season in self.prices):
            raise ValueError(f"each season needs {wanted} price(s): one per tier, or one per kW")

    def counts(self, local_start: datetime) -> bool:
        """Whether a window starting at ``local_start`` (local time) counts towards the peaks."""
        return (
            _in_hours(self.hours, local_start.hour)
            and (not self.months or local_start.month in self.months)
            and (not self.weekdays or local_start.weekday() in self.weekdays)
            and (self.holidays is None or not self.holidays.is_holiday(local_start.date()))
        )

    def factor(self, local_start: datetime) -> float:
        """How many times its energy a window starting at ``local_start`` counts."""
        return next((w.factor for w in self.weights if w.matches(local_start)), 1.0)

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

    def cost(self, month: int, average: float) -> float | None:
        """The month's capacity fee at billed value ``average`` (kW); None without a price."""
        season = next((s for s in self.prices if not s.months or month in s.months), None)
        if season is None:
            return None
        if self.per_kw:
            return average * season.values[0]
        return season.values[sum(1 for upper in self.tiers if average >= upper)]


PRESETS: Final = {
    # Norway (NVE's capacity fee): 3 hours, each on its own day; the tiers most operators use.
    "no": TariffModel(60, 3, distinct_days=True, tiers=(2, 5, 10, 15, 20, 25, 50, 75, 100)),
    # Flanders (Fluvius): the month's highest quarter hour, at least 2.5 kW, billed on the mean
    # of the last 12 monthly values.
    "be": TariffModel(15, 1, period="rolling-12", floor=2.5),
}


class Peak(NamedTuple):
    """One closed window: its start (UTC) and its counted energy (kWh, weight applied)."""

    start: datetime
    energy: float


class _Context(NamedTuple):
    """What a window's headroom depends on, other than its own energy."""

    others: list[float]  # the other candidates' counted energy, highest first
    best: float | None  # its day's best so far (distinct days)
    limit: float  # counted kWh per window at which the month reaches the boundary
    factor: float


def previous_months(month: str, count: int) -> list[str]:
    """The ``count`` months before ``month`` (``YYYY-MM``), the latest first."""
    year, number = (int(part) for part in month.split("-"))
    found = []
    for _ in range(count):
        year, number = (year - 1, 12) if number == 1 else (year, number - 1)
        found.append(f"{year:04d}-{number:02d}")
    return found


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
        self.history: dict[str, float] = {}
        """Closed months' values (kW, before the floor), kept for ``rolling-12``."""
        self._month_end: datetime | None = None
        self._previous: tuple[str, dict[str, list[Peak]]] | None = None
        """The last month's windows, for corrections that arrive after its end."""
        # Derived from ``days``, cleared whenever they change (once a window, not every frame).
        self._peaks: list[Peak] | None = None
        self._average: tuple[float | None] | None = None
        self._contexts: dict[datetime, _Context | None] = {}

    def roll(self, moment: datetime) -> None:
        """Start a new month's record once ``moment`` lies in a later month."""
        if self._month_end is not None and moment < self._month_end:
            return
        key = month_key(moment, self.zone)
        if self.month is None or key > self.month:
            if self.month is not None:
                self._previous = (self.month, self.days)
                self._keep(self.month, self.days)
            wanted = previous_months(key, ROLLING_MONTHS - 1)
            self.history = {month: v for month, v in self.history.items() if month in wanted}
            self.month, self.days = key, {}
            self._forget()
        self._month_end = month_end(moment, self.zone)

    def close(self, start: datetime, energy: float) -> None:
        """Record (or correct) the energy of the window starting at ``start``.

        A correction of the last month's final windows (an exact register a few seconds after
        the month's end) still corrects the value kept for it.
        """
        local = start.astimezone(self.zone)
        key = month_key(start, self.zone)
        if self.month is None or key > self.month:
            self.roll(start)
        if not self.model.counts(local):
            return
        if key == self.month:
            self._record(self.days, local, start, energy)
            self._forget()
        elif self._previous is not None and key == self._previous[0]:
            self._record(self._previous[1], local, start, energy)
            self._keep(*self._previous)

    def _record(
        self, days: dict[str, list[Peak]], local: datetime, start: datetime, energy: float
    ) -> None:
        day = local.date().isoformat()
        kept = [peak for peak in days.get(day, []) if peak.start != start]
        kept.append(Peak(start, energy * self.model.factor(local)))
        per_day = 1 if self.model.distinct_days else self.model.peaks
        days[day] = sorted(kept, key=_rank)[:per_day]

    def _keep(self, month: str, days: dict[str, list[Peak]]) -> None:
        """Keep a closed month's value for the rolling mean."""
        value = self._value(sorted(_candidates(days.values()), key=_rank)[: self.model.peaks])
        if value is not None:
            self.history[month] = value
            self._forget()

    def _forget(self) -> None:
        self._peaks = None
        self._average = None
        self._contexts.clear()

    def peaks(self) -> list[Peak]:
        """The month's top windows (one per day with ``distinct_days``), highest first."""
        if self._peaks is None:
            ranked = sorted(_candidates(self.days.values()), key=_rank)
            self._peaks = ranked[: self.model.peaks]
        return self._peaks

    def month_value(self) -> float | None:
        """Mean power (kW) of this month's top windows so far; None before the first."""
        return self._value(self.peaks())

    def _value(self, top: list[Peak]) -> float | None:
        if not top:
            return None
        return sum(peak.energy for peak in top) / len(top) * 60 / self.model.window

    def past(self) -> dict[str, float]:
        """The values (kW, before the floor) of the 11 months before this one that exist.

        A value from the bill (``past``) wins over the one han2mqtt recorded.
        """
        if self.month is None or self.model.period == "month":
            return {}
        wanted = previous_months(self.month, ROLLING_MONTHS - 1)
        known = {**self.history, **dict(self.model.past)}
        return {month: known[month] for month in wanted if month in known}

    def average(self) -> float | None:
        """The billed value (kW): this month's value at least the floor, or the rolling mean.

        None while nothing is known (no window, no floor and no past month).
        """
        if self._average is None:
            self._average = (self._billed(),)
        return self._average[0]

    def _billed(self) -> float | None:
        current, past = self.month_value(), self.past()
        if current is None and not self.model.floor and not past:
            return None
        floor = self.model.floor
        values = [max(floor, value) for value in (*past.values(), current or 0.0)]
        return sum(values) / len(values)

    def cost(self) -> float | None:
        """This month's capacity fee at the billed value so far; None without a price."""
        if self.month is None:
            return None
        return self.model.cost(int(self.month[5:]), self.average() or 0.0)

    def boundary(self) -> float | None:
        """The billed value (kW) the headroom keeps to; None in the top tier.

        That is the tier's upper threshold, or without tiers the billed value so far (what is
        paid for already).
        """
        average = self.average() or 0.0
        tier = self.model.tier(average)
        if tier is None:
            return average
        return tier[1]

    def headroom(self, start: datetime, energy: float) -> float | None:
        """The energy (kWh) the window at ``start`` may still use within the boundary.

        That is, before the billed value crosses :meth:`boundary`, honouring the distinct-day
        rule, the window's weight, the floor and the rolling mean; 0 if already crossed.  None
        when the window does not count, or there is no boundary (the top tier): then nothing
        this window uses raises the fee.
        """
        if start not in self._contexts:
            self._contexts[start] = self._context(start)
        context = self._contexts[start]
        if context is None:
            return None
        counted = energy * context.factor
        current = counted if context.best is None else max(counted, context.best)
        room = _room(context.others, current, counted, self.model.peaks, context.limit)
        return room / context.factor

    def _limit(self) -> float | None:
        """The counted kWh per window that brings the billed value to the boundary.

        The rolling mean solved for this month's value; None: no boundary.
        """
        boundary = self.boundary()
        if boundary is None:
            return None
        past = [max(self.model.floor, value) for value in self.past().values()]
        allowed = boundary * (len(past) + 1) - sum(past)
        if allowed < self.model.floor - TOLERANCE:
            return 0.0  # the floor alone already reaches it
        return max(allowed, self.model.floor) * self.model.window / 60

    def _context(self, start: datetime) -> _Context | None:
        local = start.astimezone(self.zone)
        limit = self._limit()
        if limit is None or not self.model.counts(local):
            return None
        factor = self.model.factor(local)
        if not self.model.distinct_days:
            others = [p.energy for peaks in self.days.values() for p in peaks if p.start != start]
            return _Context(sorted(others, reverse=True), None, limit, factor)
        # This window competes with its own day's best; the other days' bests stand.
        day = local.date().isoformat()
        others = [best[0].energy for key, best in self.days.items() if key != day and best]
        today = [peak for peak in self.days.get(day, []) if peak.start != start]
        best = today[0].energy if today else None
        return _Context(sorted(others, reverse=True), best, limit, factor)


def _room(others: list[float], current: float, energy: float, peaks: int, limit: float) -> float:
    """Solve "mean of the top ``peaks`` of ``others`` + [y] = ``limit``" for y, minus ``energy``.

    ``others`` is sorted, highest first; ``current`` is this window's entry as it stands (its
    energy, or its day's best window if that is higher).
    """
    count = min(peaks, len(others) + 1)
    fixed = sum(others[: count - 1])
    floor = others[count - 1] if len(others) >= count else None
    entry = current if floor is None else max(current, floor)
    if (fixed + entry) / count > limit + TOLERANCE:
        return 0.0
    return max(count * limit - fixed - energy, 0.0)


def _candidates(days: Iterable[list[Peak]]) -> list[Peak]:
    return [peak for peaks in days for peak in peaks]


def _rank(peak: Peak) -> tuple[float, datetime]:
    """Highest energy first; of equal ones, the earliest (ties do not change the mean)."""
    return (-peak.energy, peak.start)
