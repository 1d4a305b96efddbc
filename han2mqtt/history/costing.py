"""Cost and revenue of the ledger's intervals, from the cached prices and the grid rules.

Shared by ``GET /api/history``, ``han2mqtt export`` and the ``/history`` page, so that all three
say the same, with or without the daemon running: the prices come from the price cache in the
same database (:mod:`han2mqtt.history.prices`, read-only), converted into ``prices.currency``
with ``prices.exchange_rate`` or the cached ECB rates, and priced with the configuration's grid
rules, markups and VAT (:func:`han2mqtt.money.price_rules`).

An interval is costed from its *billing parts*: the ledger's quarters with ``prices.resolution:
15`` (each at its own price), its hours with 60 (each at the hour's mean price, as billed); a
query of quarters with hourly prices prices each quarter at its hour's price.  An interval's
``cost`` is the sum of its parts' import kWh × ``price_import``, its ``revenue`` the sum of
export kWh × ``price_export``.  Either is ``None`` when any part's price is not known, when the
interval's energy is not known, or when its stored parts do not add up to it (a part missing,
e.g. quarters purged before their hours): a cost is never a partial sum, and never 0 for
"unknown".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Final

from han2mqtt.config import Settings
from han2mqtt.energy.clock import day_start, month_end, next_day_start, window_start
from han2mqtt.history.ledger import LedgerRow, LedgerStore, month_start
from han2mqtt.history.prices import PriceCache
from han2mqtt.history.query import Money
from han2mqtt.money import currency_of, price_rules
from han2mqtt.prices.areas import area
from han2mqtt.prices.cost import Pricing
from han2mqtt.prices.ecb import RATE_MAX_AGE, rate_on
from han2mqtt.prices.grid import Norgespris
from han2mqtt.prices.table import PriceTable, convert, fixed_day

__all__ = ["HistoryCosts", "Money"]


_TOLERANCE: Final = 1e-6
"""kWh by which an interval's stored parts may differ from it (float sums in another order)."""
_STEP: Final = {"quarter": timedelta(minutes=15), "hour": timedelta(hours=1)}


class HistoryCosts:
    """Prices the ledger's intervals of one query.

    One instance per request: days are loaded from the cache as the intervals need them.

    Args:
        settings: the configuration (``prices``, ``grid``).
        cache: the price cache (read-only); ``None``: no prices kept, every cost unknown.
    """

    def __init__(self, settings: Settings, cache: PriceCache | None) -> None:
        prices = settings.prices
        self.currency = currency_of(settings)
        self.gas = prices.gas
        """``prices.gas``: a gas meter's price per m³ (all included)."""
        self._prices = prices
        self._cache = cache
        self._tried: set[date] = set()
        self.pricing: Pricing | None = None
        """Electricity's prices (None without ``prices.source``)."""
        if prices.source != "none" and prices.area is not None:
            self._area = area(prices.area)
            table = PriceTable(self._area, self.currency, prices.resolution)
            self.pricing = Pricing(table, price_rules(settings))

    @classmethod
    def of(cls, settings: Settings, store: LedgerStore | None) -> HistoryCosts | None:
        """The costs of ``store``'s intervals; ``None`` when no price is configured.

        Raises:
            StateError: the database cannot be read.
        """
        if settings.prices.source == "none" and settings.prices.gas is None:
            return None
        cache = None if store is None else PriceCache.reader(store.connection)
        return cls(settings, cache)

    def money(
        self,
        store: LedgerStore,
        meter: str,
        resolution: str,
        rows: Sequence[LedgerRow],
        kind: str = "electricity",
    ) -> list[Money]:
        """``(cost, revenue)`` of each of ``rows`` (``meter``'s intervals of ``resolution``).

        ``kind``: the meter's (:meth:`LedgerStore.kinds`): a gas meter's intervals cost their
        m³ × ``prices.gas``; a water meter's are not costed.

        Raises:
            StateError: the database cannot be read.
        """
        if kind == "gas":
            gas = self.gas
            return [
                (None if gas is None or row.import_kwh is None else row.import_kwh * gas, None)
                for row in rows
            ]
        if kind != "electricity" or self.pricing is None:
            return [(None, None)] * len(rows)
        if not rows:
            return []
        billing = "quarter" if self._prices.resolution == 15 or resolution == "quarter" else "hour"
        key = _bucket(resolution, store.zone)
        first, end = rows[0].start, _end(resolution, rows[-1].start, store.zone)
        assert self.pricing is not None
        scheme = self.pricing.rules.subsidy
        volume = None
        if isinstance(scheme, Norgespris):  # the month's volume counts from its first interval
            first = month_start(first, store.zone)
            volume = _Volume(store.zone, _STEP[billing], scheme.monthly_kwh)
        parts = store.read(meter, billing, first, end)
        sums: dict[datetime, list[float | None]] = {}
        for part in parts:
            cost, revenue = self._part(part, volume)
            entry = sums.setdefault(key(part.start), [0.0, 0.0, 0.0, 0.0])
            for index, term in enumerate((cost, revenue, part.import_kwh, part.export_kwh)):
                entry[index] = _add(entry[index], term)
        return [_checked(row, sums.get(row.start)) for row in rows]

    def _part(self, part: LedgerRow, volume: _Volume | None) -> Money:
        assert self.pricing is not None
        within = None if volume is None else volume.left(part)
        self._load(part.start, self.pricing)
        price = self.pricing.at(part.start)
        if price is None:
            return None, None
        revenue = None if part.export_kwh is None else part.export_kwh * price.export
        imported = part.import_kwh
        if imported is None or price.import_ is None or price.import_beyond is None:
            return None, revenue
        if volume is None:
            return imported * price.import_, revenue
        if within is None:
            return None, revenue
        inside = min(imported, within)
        return inside * price.import_ + (imported - inside) * price.import_beyond, revenue

    def _load(self, moment: datetime, pricing: Pricing) -> None:
        """Bring the local day holding ``moment`` into the table, once (from the cache)."""
        day = moment.astimezone(self._area.zone).date()
        if day in self._tried:
            return
        self._tried.add(day)
        found = None if self._cache is None else self._cache.load_day(self._area.name, day)
        prices = found[0] if found is not None else None
        if prices is None and self._prices.source == "fixed" and self._prices.fixed is not None:
            prices = fixed_day(self._area, day, self.currency, self._prices.fixed)
        if prices is None:
            return
        if prices.currency != self.currency:
            rate = self._rate(prices.currency, day)
            if rate is None:
                return  # not known in this currency: the day's costs stay unknown
            prices = convert(prices, self.currency, rate)
        pricing.table.add(prices)

    def _rate(self, source: str, day: date) -> float | None:
        """Units of the table's currency per unit of ``source`` (as the fetcher converts)."""
        if source == "EUR" and self._prices.exchange_rate is not None:
            return self._prices.exchange_rate
        per_eur: dict[str, float | None] = {"EUR": 1.0}
        for currency in {source, self.currency} - {"EUR"}:
            known = {} if self._cache is None else self._cache.rates(currency)
            per_eur[currency] = rate_on(known, currency, day, RATE_MAX_AGE)
        low, high = per_eur[source], per_eur[self.currency]
        return None if low is None or high is None else high / low


class _Volume:
    """A Norgespris month's volume used before each part.

    Known only while the month's parts are all stored, one after the other from its first.
    """

    def __init__(self, zone: tzinfo, step: timedelta, monthly_kwh: float) -> None:
        self.zone = zone
        self.step = step
        self.monthly_kwh = monthly_kwh
        self.month: datetime | None = None
        self.used: float | None = 0.0
        self.expected: datetime | None = None

    def left(self, part: LedgerRow) -> float | None:
        """The volume (kWh) left before ``part`` (``None``: not known); counts ``part``."""
        month = month_start(part.start, self.zone)
        if month != self.month:
            self.month, self.used, self.expected = month, 0.0, month
        self.expected, expected = part.start + self.step, self.expected
        if part.start != expected or part.import_kwh is None or self.used is None:
            self.used = None
            return None
        left = max(0.0, self.monthly_kwh - self.used)
        self.used += part.import_kwh
        return left


def _add(total: float | None, term: float | None) -> float | None:
    return None if total is None or term is None else total + term


def _checked(row: LedgerRow, sums: list[float | None] | None) -> Money:
    """The row's money when its parts add up to its energy; ``None`` where not."""
    if sums is None:
        return None, None
    cost, revenue, imported, exported = sums
    if not _same(row.import_kwh, imported):
        cost = None
    if not _same(row.export_kwh, exported):
        revenue = None
    return cost, revenue


def _same(value: float | None, parts: float | None) -> bool:
    if value is None or parts is None:
        return False
    return abs(value - parts) <= _TOLERANCE + 1e-9 * abs(value)


def _bucket(resolution: str, zone: tzinfo) -> Callable[[datetime], datetime]:
    """The start of the ``resolution`` interval that holds a moment."""
    if resolution == "quarter":
        return lambda moment: window_start(moment, zone, 15)
    if resolution == "hour":
        return lambda moment: window_start(moment, zone, 60)
    if resolution == "day":
        return lambda moment: day_start(moment, zone)
    return lambda moment: month_start(moment, zone)


def _end(resolution: str, start: datetime, zone: tzinfo) -> datetime:
    """The end of the ``resolution`` interval starting at ``start``."""
    if resolution in _STEP:
        return start + _STEP[resolution]
    if resolution == "day":
        return next_day_start(start, zone)
    return month_end(start, zone)
