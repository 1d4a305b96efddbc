"""The money stage's wiring decisions (pure): settings → price rules, energy → money fields.

:class:`Money` sits beside the energy engines in the bridge: for each reading it takes the
engine's values (``energy_import_hour``, ``energy_import_last_hour`` …) and the meter's clock,
feeds each meter's :class:`~han2mqtt.prices.cost.CostAccumulator` and returns the published
money values (CONVENTIONS.md "Published money values").  It never waits: a day of prices it
lacks is asked for through ``want`` and priced when it arrives (the accumulator keeps the
energy).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from han2mqtt.config import EnergyRuleSettings, Settings
from han2mqtt.energy.calendar import PublicHolidays
from han2mqtt.energy.ledger import LedgerInterval
from han2mqtt.energy.tariff import WEEKDAYS
from han2mqtt.energy.volume import VolumeLedger
from han2mqtt.model import FieldValue
from han2mqtt.mqtt.topics import Message
from han2mqtt.prices.areas import Area, area
from han2mqtt.prices.cost import CostAccumulator, PriceRules, Pricing
from han2mqtt.prices.grid import EnergyRule, GridRates, Norgespris, Stromstotte, parse_hours
from han2mqtt.prices.table import PriceTable

__all__ = [
    "GAS_MONEY_FIELDS",
    "MONEY_FIELDS",
    "Money",
    "area_prices",
    "area_prices_message",
    "currency_of",
    "gas_costs",
    "price_rules",
    "prices_topic",
]

MONEY_FIELDS: Final = (
    "price_spot",
    "price_import",
    "price_export",
    "cost_hour",
    "cost_last_hour",
    "cost_last_hour_start",
    "cost_today",
    "cost_month",
    "revenue_today",
    "revenue_month",
)
GAS_MONEY_FIELDS: Final = ("cost_gas_today", "cost_gas_month")
TOMORROW_DUE: Final = 13
"""Local hour from which tomorrow's prices are looked for (the day-ahead auction's results are
published at about 12:45 CET)."""
HOUR: Final = timedelta(hours=1)
MAX_METERS: Final = 256
"""Meters whose costs are kept (as many as the energy stage keeps)."""

Restore = Callable[[str], tuple[datetime, dict[datetime, tuple[float, float]]] | None]
Persist = Callable[[str, datetime, dict[datetime, tuple[float, float]]], None]


def currency_of(settings: Settings) -> str:
    """The currency prices and costs are shown in (``prices.currency``, else the area's)."""
    prices = settings.prices
    if prices.currency is not None:
        return prices.currency
    return "EUR" if prices.area is None else area(prices.area).currency


def price_rules(settings: Settings) -> PriceRules:
    """The markups, VAT, grid rules and subsidy of the configuration."""
    grid = settings.grid
    calendar = PublicHolidays(grid.holidays) if grid.holidays else None
    subsidy: Stromstotte | Norgespris | None = None
    if grid.subsidy.scheme == "stromstotte":
        subsidy = Stromstotte(grid.subsidy.threshold, grid.subsidy.share)
    elif grid.subsidy.scheme == "norgespris":
        subsidy = Norgespris(grid.subsidy.norgespris, grid.subsidy.monthly_kwh)
    return PriceRules(
        markup=settings.prices.markup,
        export_markup=settings.prices.export_markup,
        vat=settings.prices.vat,
        grid=GridRates(tuple(_rule(r) for r in grid.energy), grid.taxes, calendar),
        subsidy=subsidy,
    )


def _rule(settings: EnergyRuleSettings) -> EnergyRule:
    hours = [settings.hours] if isinstance(settings.hours, str) else settings.hours or []
    return EnergyRule(
        price=settings.price,
        hours=tuple(parse_hours(text) for text in hours),
        weekdays=frozenset(WEEKDAYS.index(day) for day in settings.weekdays or ()),
        months=frozenset(settings.months or ()),
        holidays=settings.holidays,
    )


def gas_costs(volume: VolumeLedger, price: float, now: datetime) -> dict[str, FieldValue]:
    """``cost_gas_today`` and ``cost_gas_month`` of a gas meter (``prices.gas`` per m³).

    The volume of the day's (month's) closed quarters × the price; absent while the quarters
    since the period's start are not all known (the first day after the meter was first seen).
    """
    if volume.kind != "gas":
        return {}
    today, month = volume.totals(now)
    values: dict[str, FieldValue] = {}
    if today is not None:
        values["cost_gas_today"] = today * price
    if month is not None:
        values["cost_gas_month"] = month * price
    return values


def prices_topic(base: str, area_name: str) -> str:
    """The retained topic of an area's prices."""
    return f"{base}/prices/{area_name}"


def area_prices_message(base: str, pricing: Pricing, days: tuple[date, ...]) -> Message | None:
    """``<base>/prices/<area>``: the known intervals of ``days`` (today, tomorrow); retained.

    ``import`` is the price within a Norgespris volume where one is set; ``None`` when no day
    is known.
    """
    payload = area_prices(pricing, days)
    if payload is None:
        return None
    topic = prices_topic(base, pricing.table.area.name)
    return Message(topic, json.dumps(payload, separators=(",", ":")), 1, retain=True)


def area_prices(pricing: Pricing, days: tuple[date, ...]) -> dict[str, Any] | None:
    """``{"currency", "resolution", "intervals": [{"start", "spot", "import", "export"}]}``."""
    table = pricing.table
    intervals = []
    for day in days:
        for start, _ in table.intervals(day):
            price = pricing.at(start)
            if price is None:
                continue
            intervals.append(
                {
                    "start": start.astimezone(pricing.zone).isoformat(),
                    "spot": price.spot,
                    "import": price.import_,
                    "export": price.export,
                }
            )
    if not intervals:
        return None
    return {"currency": table.currency, "resolution": table.resolution, "intervals": intervals}


@dataclass(slots=True)
class _Meter:
    costs: CostAccumulator
    hour: datetime | None = None
    hour_import: float = 0.0
    hour_export: float = 0.0
    exports: bool = False
    settled: datetime | None = None
    """The last hour settled with its exact energy: the ledger's quarters leave it alone."""


class Money:
    """Prices and costs of every meter, from the energy engines' values."""

    def __init__(
        self,
        settings: Settings,
        table: PriceTable,
        want: Callable[[date, bool], None] = lambda _day, _ahead: None,
        restore: Restore | None = None,
        persist: Persist | None = None,
    ) -> None:
        self.currency = currency_of(settings)
        self.area: Area = table.area
        self.pricing = Pricing(table, price_rules(settings))
        self._want = want
        self._restore = restore
        self._persist = persist
        self._meters: dict[str, _Meter] = {}
        self._offsets: dict[str, timedelta] = {}
        self._wanted: date | None = None
        self._ahead = False
        self.latest: datetime | None = None
        """The meter clock of the latest reading."""

    def values(
        self,
        meter: str,
        energy: Mapping[str, FieldValue],
        stamp: datetime,
        intervals: Sequence[LedgerInterval] = (),
    ) -> dict[str, FieldValue]:
        """The money fields of one reading (absent: not known).

        ``intervals``: the ledger's intervals this reading closed; with ``prices.resolution: 15``
        its quarters replace the live counter's split of their hour (see :meth:`_book`).
        """
        moment = _moment(energy, stamp)
        offset = self._offsets.get(meter)
        if moment is None:
            # A frame without the meter's time: its receive time shifted by the meter clock's
            # offset, as the energy engine reckons it.
            moment = stamp if offset is None else stamp + offset
        else:
            self._offsets[meter] = moment - stamp
        self.latest = moment
        self._ask(moment)
        state = self._meter(meter, energy, moment)
        self._count(meter, state, energy, moment, intervals)
        return self._fields(state, moment)

    @property
    def today(self) -> date | None:
        """The local day of the latest reading (the meter's clock)."""
        return self._wanted

    def _ask(self, moment: datetime) -> None:
        local = moment.astimezone(self.pricing.zone)
        day = local.date()
        if day != self._wanted:
            self._wanted = day
            self._ahead = False
            self._want(day, False)  # noqa: FBT003 - want(day, ahead)
        if not self._ahead and local.hour >= TOMORROW_DUE:
            self._ahead = True
            self._want(day + timedelta(days=1), True)  # noqa: FBT003

    def _meter(self, meter: str, energy: Mapping[str, FieldValue], moment: datetime) -> _Meter:
        state = self._meters.get(meter)
        if state is not None:
            return state
        hour = _hour(moment)
        since = hour if _number(energy.get("energy_import_hour")) else moment
        costs = CostAccumulator(self.pricing, since)
        saved = self._restore(meter) if self._restore is not None else None
        # Saved up to the last settled hour: whole only if no hour has passed unseen since (the
        # engine's restored hour counter brings back the current hour's energy).
        if saved is not None and saved[1] and _hour(max(saved[1])) + HOUR == hour:
            costs.complete_since = min(saved[0], since)
            for start, (imported, exported) in saved[1].items():
                costs.add(start, imported, exported)
        state = self._meters[meter] = _Meter(costs)
        if saved is not None and saved[1]:
            state.settled = _hour(max(saved[1]))
        if len(self._meters) > MAX_METERS:  # a fleet: the meter seen first goes
            oldest = next(iter(self._meters))
            del self._meters[oldest]
            self._offsets.pop(oldest, None)
        return state

    def _count(
        self,
        meter: str,
        state: _Meter,
        energy: Mapping[str, FieldValue],
        moment: datetime,
        intervals: Sequence[LedgerInterval],
    ) -> None:
        hour = _hour(moment)
        imported, exported = energy.get("energy_import_hour"), energy.get("energy_export_hour")
        if state.hour is not None and hour < state.hour:
            return  # the meter's clock went back across an hour: its energy is counted already
        if state.hour != hour:
            state.hour, state.hour_import, state.hour_export = hour, 0.0, 0.0
        increment = [0.0, 0.0]
        if _number(imported):
            increment[0] = max(0.0, float(imported) - state.hour_import)  # type: ignore[arg-type]
            state.hour_import = max(state.hour_import, float(imported))  # type: ignore[arg-type]
        if _number(exported):
            state.exports = True
            increment[1] = max(0.0, float(exported) - state.hour_export)  # type: ignore[arg-type]
            state.hour_export = max(state.hour_export, float(exported))  # type: ignore[arg-type]
        if increment[0] or increment[1]:
            state.costs.add(moment, increment[0], increment[1])
        self._book(state, intervals)
        self._settle(meter, state, energy)

    def _book(self, state: _Meter, intervals: Sequence[LedgerInterval]) -> None:
        """Quarter prices: cost each closed quarter on the ledger's energy of it.

        The ledger's quarters are exact where registers bracket them (a P1 meter's register in
        every frame), else its power-integral estimate scaled to the hour's registers: closer
        to each quarter's real share than the live counter's frame-by-frame split.  Quarters of
        an hour already settled are left alone: a closed hour's published cost never changes.
        """
        if self.pricing.table.resolution != 15:
            return
        for interval in intervals:
            if interval.minutes != 15 or interval.import_kwh is None:
                continue
            if state.settled is not None and _hour(interval.start) <= state.settled:
                continue
            state.costs.replace(interval.start, interval.import_kwh, interval.export_kwh)

    def _settle(self, meter: str, state: _Meter, energy: Mapping[str, FieldValue]) -> None:
        start = energy.get("energy_import_last_hour_start")
        imported = energy.get("energy_import_last_hour")
        if not isinstance(start, str) or not _number(imported):
            return
        exported = energy.get("energy_export_last_hour")
        hour = datetime.fromisoformat(start)
        state.settled = _hour(hour)
        state.costs.settle(
            hour,
            float(imported),  # type: ignore[arg-type]
            float(exported) if _number(exported) else None,  # type: ignore[arg-type]
        )
        if self._persist is not None:
            end = hour + HOUR
            kept = {s: e for s, e in state.costs.energy().items() if s < end}
            self._persist(meter, state.costs.complete_since, kept)

    def _fields(self, state: _Meter, moment: datetime) -> dict[str, FieldValue]:
        values: dict[str, FieldValue] = {}
        totals = state.costs.totals(moment)
        price = self.pricing.at(moment)
        if price is not None:
            values["price_spot"] = price.spot
            within = self._norgespris_left(totals.month_import)
            chosen = price.import_ if within else price.import_beyond
            if chosen is not None:
                values["price_import"] = chosen
            values["price_export"] = price.export
        costs = {
            "cost_hour": totals.cost_hour,
            "cost_last_hour": totals.cost_last_hour,
            "cost_today": totals.cost_today,
            "cost_month": totals.cost_month,
        }
        if state.exports:
            costs["revenue_today"] = totals.revenue_today
            costs["revenue_month"] = totals.revenue_month
        values.update({name: value for name, value in costs.items() if value is not None})
        if totals.cost_last_hour is not None:
            start = totals.cost_last_hour_start.astimezone(self.pricing.zone)
            values["cost_last_hour_start"] = start.isoformat()
        return values

    def _norgespris_left(self, month_import: float) -> bool:
        scheme = self.pricing.rules.subsidy
        return not isinstance(scheme, Norgespris) or month_import < scheme.monthly_kwh


def _moment(energy: Mapping[str, FieldValue], stamp: datetime) -> datetime | None:
    """The meter's clock (``meter_time``) when the frame had one."""
    text = energy.get("meter_time")
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=stamp.tzinfo)
    return None


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
