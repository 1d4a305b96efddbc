"""The values every price source is turned into: points of spot price and whole delivery days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

__all__ = ["CURRENCIES", "DayPrices", "PricePoint"]

CURRENCIES: Final = ("NOK", "SEK", "DKK", "EUR")
"""Currencies prices can be shown in (the sources' own, and the ECB's rates for EUR)."""


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One interval's spot price: ``price`` (currency per kWh, excl. VAT) from ``start`` (UTC).

    ``minutes`` is the interval's length: 15 since the day-ahead market's 15-minute products
    (1 October 2025), 60 before and from sources that still publish hours.
    """

    start: datetime
    minutes: int
    price: float

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("a price point's start carries its UTC offset")
        if self.minutes not in (15, 60):
            raise ValueError(f"price intervals are 15 or 60 minutes, not {self.minutes}")
        object.__setattr__(self, "start", self.start.astimezone(UTC))

    @property
    def end(self) -> datetime:
        """The end of the interval (exclusive)."""
        return self.start + timedelta(minutes=self.minutes)


@dataclass(frozen=True, slots=True)
class DayPrices:
    """A whole delivery day (local date in the area's time zone) of spot prices, in order.

    Built by :func:`han2mqtt.prices.table.whole_day`, which checks that the points cover the day
    exactly once (92, 96 or 100 quarters; 23, 24 or 25 hours).
    """

    area: str
    day: date
    currency: str
    points: tuple[PricePoint, ...]

    @property
    def minutes(self) -> int:
        """The finest resolution in the day (15 when any point is a quarter)."""
        return min(point.minutes for point in self.points)
