"""From spot prices to what each kWh costs, and the running sums of cost and revenue.

``price_import`` = (spot + markup + grid energy + taxes − subsidy) × (1 + VAT) and
``price_export`` = spot + export markup, per billing interval (CONVENTIONS.md, "Published money
values").  An interval's cost is its import kWh × its ``price_import``; a sum is known only when
every interval in it with energy has a known price *and* the energy of the whole span was seen
(``complete_since``): a cost that is not known is absent, never a partial sum passed off as the
whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from han2mqtt.prices.grid import GridRates, Norgespris, Stromstotte
from han2mqtt.prices.table import PriceTable

__all__ = ["CostAccumulator", "CostTotals", "IntervalPrice", "PriceRules", "Pricing"]

_CACHED_INTERVALS = 4096
"""Interval prices kept (a month of quarters); computed once per table version."""


@dataclass(frozen=True, slots=True)
class PriceRules:
    """What is added to the spot price: supplier, grid, state (all per kWh excl. VAT)."""

    markup: float = 0.0
    export_markup: float = 0.0
    vat: float = 0.0
    grid: GridRates = field(default_factory=GridRates)
    subsidy: Stromstotte | Norgespris | None = None


@dataclass(frozen=True, slots=True)
class IntervalPrice:
    """The prices of one billing interval (``start`` in UTC).

    ``import_`` is ``None`` when the grid rules or strømstøtte's hour mean are not known;
    ``import_beyond`` is the import price once a Norgespris volume is used up (the same as
    ``import_`` without Norgespris).
    """

    start: datetime
    spot: float
    import_: float | None
    export: float
    import_beyond: float | None


class Pricing:
    """Prices of billing intervals from a :class:`PriceTable` and the :class:`PriceRules`."""

    def __init__(self, table: PriceTable, rules: PriceRules) -> None:
        self.table = table
        self.rules = rules
        self.zone: ZoneInfo = table.area.zone
        self._cache: dict[datetime, IntervalPrice | None] = {}
        self._version = table.version

    def at(self, moment: datetime) -> IntervalPrice | None:
        """The prices of the interval holding ``moment``; ``None`` when its spot is not known."""
        start = self.table.interval_start(moment)
        if self._version != self.table.version or len(self._cache) > _CACHED_INTERVALS:
            self._cache.clear()
            self._version = self.table.version
        if start in self._cache:
            return self._cache[start]
        price = self._cache[start] = self._price(start)
        return price

    def _price(self, moment: datetime) -> IntervalPrice | None:
        spot = self.table.spot(moment)
        if spot is None:
            return None
        start = self.table.interval_start(moment)
        rules = self.rules
        export = spot + rules.export_markup
        grid = rules.grid.energy(start.astimezone(self.zone))
        if grid is None:
            return IntervalPrice(start, spot, None, export, None)
        before = spot + rules.markup + grid + rules.grid.taxes
        beyond = before * (1 + rules.vat)
        subsidy = self._subsidy(moment, spot)
        within = None if subsidy is None else (before - subsidy) * (1 + rules.vat)
        if isinstance(rules.subsidy, Norgespris):
            return IntervalPrice(start, spot, within, export, beyond)
        return IntervalPrice(start, spot, within, export, within)

    def _subsidy(self, moment: datetime, spot: float) -> float | None:
        scheme = self.rules.subsidy
        if scheme is None:
            return 0.0
        if isinstance(scheme, Norgespris):
            return scheme.subsidy(spot)
        hour_mean = self.table.hour_mean(moment)
        return None if hour_mean is None else scheme.subsidy(hour_mean)


@dataclass(frozen=True, slots=True)
class CostTotals:
    """The published money sums (``None``: not known)."""

    cost_hour: float | None
    cost_last_hour: float | None
    cost_last_hour_start: datetime
    cost_today: float | None
    cost_month: float | None
    revenue_today: float | None
    revenue_month: float | None
    month_import: float
    """kWh imported this month so far (as far as seen): a Norgespris volume's use."""


class _Sum:
    """A sum that turns unknown for good once one of its terms is."""

    __slots__ = ("value",)

    def __init__(self, known: bool = True) -> None:
        self.value: float | None = 0.0 if known else None

    def add(self, term: float | None) -> None:
        self.value = None if self.value is None or term is None else self.value + term


@dataclass(slots=True)
class _Closed:
    """The sums over the month's intervals before the current hour (recomputed per hour)."""

    key: tuple[datetime, int, int]
    month_cost: _Sum
    month_revenue: _Sum
    today_cost: _Sum
    today_revenue: _Sum
    last_hour: _Sum
    last_hour_seen: bool
    volume: float


class CostAccumulator:
    """Cost and revenue sums, fed ``(interval start, import kWh, export kWh)`` increments.

    The increments may be the live counters' deltas frame by frame or the ledger's closed
    quarters; several for one interval add up.  Energy is kept per billing interval for the
    current month, so prices that arrive late still cost the energy used before them.
    ``complete_since`` is the moment from which every kWh was fed: a sum over a span that
    starts earlier is unknown.
    """

    def __init__(self, pricing: Pricing, complete_since: datetime) -> None:
        self.pricing = pricing
        self.complete_since = complete_since.astimezone(UTC)
        self._energy: dict[datetime, list[float]] = {}
        self._revision = 0
        self._closed: _Closed | None = None

    def add(self, start: datetime, import_kwh: float, export_kwh: float) -> None:
        """Count energy used (and fed in) in the interval holding ``start``."""
        key = self.pricing.table.interval_start(start)
        entry = self._energy.get(key)
        if entry is None:
            self._energy[key] = [import_kwh, export_kwh]
        else:
            entry[0] += import_kwh
            entry[1] += export_kwh
        if self._closed is not None and key < self._closed.key[0]:
            self._revision += 1

    def replace(self, start: datetime, import_kwh: float, export_kwh: float | None) -> None:
        """Set the energy of the interval holding ``start`` (the ledger's closed quarter).

        ``export_kwh`` None keeps the export counted so far.
        """
        key = self.pricing.table.interval_start(start)
        entry = self._energy.setdefault(key, [0.0, 0.0])
        entry[0] = import_kwh
        if export_kwh is not None:
            entry[1] = export_kwh
        if self._closed is not None and key < self._closed.key[0]:
            self._revision += 1

    def settle(
        self, hour: datetime, import_kwh: float | None, export_kwh: float | None = None
    ) -> None:
        """Replace an hour's energy by its exact value (registers bracket it).

        Quarters keep their shares of the hour (the power integral's estimate), scaled to sum to
        the exact value; an hour with no estimate is spread evenly over its intervals.
        """
        start = hour.astimezone(UTC)
        step = timedelta(minutes=self.pricing.table.resolution)
        keys = [start + step * index for index in range(60 // self.pricing.table.resolution)]
        for column, exact in ((0, import_kwh), (1, export_kwh)):
            if exact is not None:
                self._scale(keys, column, exact)
        if start < self.complete_since and import_kwh is not None:
            self.complete_since = start  # the hour is whole, from its start
        self._revision += 1

    def _scale(self, keys: list[datetime], column: int, exact: float) -> None:
        entries = [self._energy.setdefault(key, [0.0, 0.0]) for key in keys]
        estimate = sum(entry[column] for entry in entries)
        for entry in entries:
            share = entry[column] / estimate if estimate > 0 else 1 / len(entries)
            entry[column] = exact * share if len(entries) > 1 else exact

    def energy(self) -> dict[datetime, tuple[float, float]]:
        """The energy per interval start (UTC) kept: for saving and restoring."""
        return {start: (imp, exp) for start, (imp, exp) in self._energy.items()}

    def totals(self, now: datetime) -> CostTotals:
        """The sums at ``now`` (the meter's clock); forgets intervals before the last month."""
        hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        closed = self._closed
        if closed is None or closed.key != (hour, self.pricing.table.version, self._revision):
            local = now.astimezone(self.pricing.zone)
            day = _local_midnight(local, local.day)
            month = _local_midnight(local, 1)
            closed = self._closed_sums(hour, day, month)
        current = _Sum(self.complete_since <= hour)
        today_cost, today_revenue = _copy(closed.today_cost), _copy(closed.today_revenue)
        month_cost, month_revenue = _copy(closed.month_cost), _copy(closed.month_revenue)
        volume = closed.volume
        step = timedelta(minutes=self.pricing.table.resolution)
        for index in range(60 // self.pricing.table.resolution):
            start = hour + step * index
            if start not in self._energy:
                continue
            cost, revenue, volume = self._money(start, volume)
            for total in (current, today_cost, month_cost):
                total.add(cost)
            for total in (today_revenue, month_revenue):
                total.add(revenue)
        return CostTotals(
            cost_hour=current.value,
            cost_last_hour=closed.last_hour.value if closed.last_hour_seen else None,
            cost_last_hour_start=hour - timedelta(hours=1),
            cost_today=today_cost.value,
            cost_month=month_cost.value,
            revenue_today=today_revenue.value,
            revenue_month=month_revenue.value,
            month_import=volume,
        )

    def _closed_sums(self, hour: datetime, day: datetime, month: datetime) -> _Closed:
        key = (hour, self.pricing.table.version, self._revision)
        if self._closed is not None and self._closed.key == key:
            return self._closed
        self._forget_before(min(month, hour - timedelta(hours=1)))
        last = hour - timedelta(hours=1)
        closed = _Closed(
            key=key,
            month_cost=_Sum(self.complete_since <= month),
            month_revenue=_Sum(self.complete_since <= month),
            today_cost=_Sum(self.complete_since <= day),
            today_revenue=_Sum(self.complete_since <= day),
            last_hour=_Sum(self.complete_since <= last),
            last_hour_seen=False,
            volume=0.0,
        )
        for start in sorted(s for s in self._energy if s < hour):
            cost, revenue, volume = self._money(start, closed.volume)
            if start >= month:
                closed.volume = volume
                closed.month_cost.add(cost)
                closed.month_revenue.add(revenue)
            if start >= day:
                closed.today_cost.add(cost)
                closed.today_revenue.add(revenue)
            if start >= last:
                closed.last_hour.add(cost)
                closed.last_hour_seen = True
        self._closed = closed
        return closed

    def _money(self, start: datetime, volume: float) -> tuple[float | None, float | None, float]:
        """``(cost, revenue, month volume after)`` of one interval's energy."""
        imported, exported = self._energy[start]
        after = volume + imported
        if imported == 0 and exported == 0:
            return 0.0, 0.0, after
        price = self.pricing.at(start)
        if price is None:
            return None, None, after
        revenue = exported * price.export
        if price.import_ is None or price.import_beyond is None:
            return None, revenue, after
        scheme = self.pricing.rules.subsidy
        limit = scheme.monthly_kwh if isinstance(scheme, Norgespris) else float("inf")
        within = min(imported, max(0.0, limit - volume))
        cost = within * price.import_ + (imported - within) * price.import_beyond
        return cost, revenue, after

    def _forget_before(self, moment: datetime) -> None:
        for start in [s for s in self._energy if s < moment]:
            del self._energy[start]


def _local_midnight(local: datetime, day: int) -> datetime:
    """The UTC instant of local midnight on ``day`` of ``local``'s month."""
    midnight = datetime.combine(local.date().replace(day=day), time(), local.tzinfo)
    return midnight.astimezone(UTC)


def _copy(total: _Sum) -> _Sum:
    copy = _Sum()
    copy.value = total.value
    return copy
