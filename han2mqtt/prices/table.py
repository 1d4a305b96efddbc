"""Whole delivery days of prices, and the table that answers "what is the spot price now?".

Since 1 October 2025 the European day-ahead market clears 15-minute products (SDAC's
"15-minute MTU"), so a day has 96 quarters, 92 on the spring DST day and 100 on the autumn one.
Nordic households are still billed per hour at the mean of the hour's four quarter prices
(Elhub settles hourly until the retail side follows; ``resolution: 60``); ``resolution: 15``
prices each quarter at its own price.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from han2mqtt.errors import PriceFormatError
from han2mqtt.prices.areas import Area
from han2mqtt.prices.model import DayPrices, PricePoint

__all__ = ["PriceTable", "convert", "day_bounds", "fixed_day", "whole_day"]

RESOLUTIONS: Final = (15, 60)


def day_bounds(area: Area, day: date) -> tuple[datetime, datetime]:
    """The UTC start and end of the local delivery ``day`` in ``area`` (23, 24 or 25 hours)."""
    zone = area.zone
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def whole_day(area: Area, day: date, currency: str, points: Iterable[PricePoint]) -> DayPrices:
    """The points of ``day`` (others dropped), checked to cover it exactly once.

    Raises:
        PriceFormatError: an interval missing, repeated or overlapping another: a day with a hole
            or a double is refused whole rather than priced partly.
    """
    start, end = day_bounds(area, day)
    mine = sorted((p for p in points if start <= p.start < end), key=lambda p: p.start)
    expected = start
    for point in mine:
        if point.start != expected:
            what = "repeated or overlapping" if point.start < expected else "missing"
            raise PriceFormatError(
                f"{area.name} {day}: an interval is {what} at {min(point.start, expected)}"
            )
        expected = point.end
    if expected != end:
        raise PriceFormatError(f"{area.name} {day}: prices end at {expected}, the day at {end}")
    return DayPrices(area.name, day, currency, tuple(mine))


def fixed_day(area: Area, day: date, currency: str, price: float) -> DayPrices:
    """``prices.fixed``: every hour of the local ``day`` at ``price``."""
    start, end = day_bounds(area, day)
    hours = int((end - start) / timedelta(hours=1))
    points = tuple(PricePoint(start + timedelta(hours=h), 60, price) for h in range(hours))
    return DayPrices(area.name, day, currency, points)


def convert(prices: DayPrices, currency: str, rate: float) -> DayPrices:
    """``prices`` in ``currency``, each multiplied by ``rate`` (``currency`` per unit of theirs)."""
    points = tuple(PricePoint(p.start, p.minutes, p.price * rate) for p in prices.points)
    return DayPrices(prices.area, prices.day, currency, points)


class PriceTable:
    """The spot prices of the days known, at the billing resolution, by interval start (UTC).

    ``resolution`` 60 prices an hour at the mean of its quarters (an hourly point as it is);
    15 prices each quarter (an hourly point gives its four quarters its price).  A day is
    added whole and replaces the day's previous prices; :attr:`version` counts the changes, so
    sums computed from the table know when to recompute.
    """

    def __init__(self, area: Area, currency: str, resolution: int) -> None:
        if resolution not in RESOLUTIONS:
            raise ValueError("the price resolution is 15 or 60 minutes")
        self.area = area
        self.currency = currency
        self.resolution = resolution
        self.version = 0
        self._days: dict[date, DayPrices] = {}
        self._prices: dict[datetime, float] = {}
        self._hours: dict[datetime, float] = {}

    def add(self, prices: DayPrices) -> None:
        """Add (or replace) one day, which must be in the table's currency.

        Raises:
            ValueError: another currency or area.
        """
        if prices.currency != self.currency or prices.area != self.area.name:
            raise ValueError(f"{prices.area} prices in {prices.currency}, expected {self.currency}")
        self._days[prices.day] = prices
        hours = _hour_means(prices.points)
        self._hours.update(hours)
        self._prices.update(hours if self.resolution == 60 else _quarters(prices.points))
        self.version += 1

    def has(self, day: date) -> bool:
        """Whether the whole local ``day`` is known."""
        return day in self._days

    def day(self, day: date) -> DayPrices | None:
        """The day's prices as the source gave them, or ``None``."""
        return self._days.get(day)

    def interval_start(self, moment: datetime) -> datetime:
        """The start (UTC) of the billing interval that holds ``moment``."""
        utc = moment.astimezone(UTC)
        return utc.replace(
            minute=utc.minute - utc.minute % self.resolution, second=0, microsecond=0
        )

    def spot(self, moment: datetime) -> float | None:
        """The spot price of the billing interval holding ``moment`` (``None``: not known)."""
        return self._prices.get(self.interval_start(moment))

    def hour_mean(self, moment: datetime) -> float | None:
        """The mean spot price of the hour holding ``moment`` (``None``: not known)."""
        utc = moment.astimezone(UTC)
        return self._hours.get(utc.replace(minute=0, second=0, microsecond=0))

    def intervals(self, day: date) -> list[tuple[datetime, float]]:
        """``(start, spot)`` of each billing interval of the local ``day`` that is known."""
        start, end = day_bounds(self.area, day)
        step = timedelta(minutes=self.resolution)
        found: list[tuple[datetime, float]] = []
        moment = start
        while moment < end:
            price = self._prices.get(moment)
            if price is not None:
                found.append((moment, price))
            moment += step
        return found

    def forget_before(self, day: date) -> None:
        """Drop the days before ``day`` (the daemon keeps two months; the cache keeps them all)."""
        old = [d for d in self._days if d < day]
        if not old:
            return
        for stale in old:
            start, end = day_bounds(self.area, stale)
            for table in (self._prices, self._hours):
                for moment in [m for m in table if start <= m < end]:
                    del table[moment]
            del self._days[stale]
        self.version += 1


def _hour_means(points: Iterable[PricePoint]) -> dict[datetime, float]:
    sums: dict[datetime, list[float]] = {}
    for point in points:
        hour = point.start.replace(minute=0)
        weight = point.minutes / 60
        total = sums.setdefault(hour, [0.0, 0.0])
        total[0] += point.price * weight
        total[1] += weight
    return {hour: price for hour, (price, weight) in sums.items() if abs(weight - 1) < 1e-9}


def _quarters(points: Iterable[PricePoint]) -> dict[datetime, float]:
    found: dict[datetime, float] = {}
    for point in points:
        for index in range(point.minutes // 15):
            found[point.start + timedelta(minutes=15 * index)] = point.price
    return found
