"""The grid's energy rate (time of use), taxes per kWh and Norway's two support schemes.

Time-of-use rules are data: a list of :class:`EnergyRule`, the first that matches an interval's
local start wins.  The shapes they must express, from the operators' and regulators' own pages:

- Norwegian DSOs (NVE's tariff rules, forskrift om kontroll av nettvirksomhet § 14-2; e.g.
  Elvia's "Nettleiepriser"): a day rate 06-22 on working days and a lower rate at night, on
  weekends and on public holidays: ``[{price: d, hours: "06-22", weekdays: [mon..fri],
  holidays: false}, {price: n}]``.
- Danish grid companies under Green Power Denmark's tarifmodel 3.0 (from 1 April 2023): four
  periods (lavlast 00-06, spidslast 17-21, højlast the rest of the day; night rates) with a
  winter season October-March and a summer season April-September: one rule per period and
  season, ``months`` telling the seasons apart.

Support schemes (both per kWh excluding VAT, both settings, since the state changes them):

- strømstøtte (Norway; lov om midlertidig strømstønad til husholdninger, regjeringen.no
  "Strømstøtte"): 90 % of the hour's average spot price above a threshold (0.75 NOK/kWh excl.
  VAT in 2025), computed hour by hour;
- Norgespris (Norway from 1 October 2025; regjeringen.no "Norgespris"): the household pays a
  fixed 0.40 NOK/kWh excl. VAT instead of the spot price, for at most 5,000 kWh a month at a
  home (1,000 at a holiday home); the grid company settles the difference, so the subsidy is
  spot − 0.40 (negative when the spot is below).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Protocol

__all__ = [
    "DEFAULT_STROMSTOTTE_SHARE",
    "DEFAULT_STROMSTOTTE_THRESHOLD",
    "NORGESPRIS_HOME_KWH",
    "NORGESPRIS_PRICE",
    "EnergyRule",
    "GridRates",
    "HolidayCalendar",
    "Norgespris",
    "Stromstotte",
    "parse_hours",
]

DEFAULT_STROMSTOTTE_THRESHOLD: Final = 0.75
"""NOK/kWh excl. VAT above which strømstøtte pays (2025)."""
DEFAULT_STROMSTOTTE_SHARE: Final = 0.9
"""The share of the spot above the threshold that strømstøtte pays."""
NORGESPRIS_PRICE: Final = 0.40
"""NOK/kWh excl. VAT (0.50 with 25 % VAT)."""
NORGESPRIS_HOME_KWH: Final = 5000.0
"""A home's monthly volume at Norgespris (a holiday home has 1,000)."""


class HolidayCalendar(Protocol):
    """Public holidays, as :class:`han2mqtt.energy.calendar.PublicHolidays` knows them."""

    def is_holiday(self, day: date) -> bool:
        """Whether ``day`` is a public holiday."""
        ...


def parse_hours(text: str) -> tuple[int, int]:
    """``"06-22"`` → ``(6, 22)``; ``"22-06"`` wraps past midnight.

    Raises:
        ValueError: not two hours 0-24 apart from each other.
    """
    first, dash, second = text.partition("-")
    if not dash or not first.strip().isdigit() or not second.strip().isdigit():
        raise ValueError(f'hours are ranges like "06-22", not {text!r}')
    start, end = int(first), int(second)
    if not (0 <= start <= 24 and 0 <= end <= 24) or start == end:
        raise ValueError(f'hours are ranges like "06-22" (0-24, from ≠ to), not {text!r}')
    return start, end


@dataclass(frozen=True, slots=True)
class EnergyRule:
    """One time-of-use rate: ``price`` per kWh excl. VAT where every given filter matches.

    ``hours``: local ``(from, to)`` ranges, ``to`` exclusive, wrapping midnight when from > to;
    ``weekdays``: 0 = Monday; ``months``: 1-12; ``holidays``: ``False`` not on public holidays,
    ``True`` only on them, ``None`` both.  An empty filter matches everything.
    """

    price: float
    hours: tuple[tuple[int, int], ...] = ()
    weekdays: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    holidays: bool | None = None

    def matches(self, local: datetime, holiday: bool) -> bool:
        """Whether the rule applies to an interval starting at ``local`` (local time)."""
        if self.holidays is not None and self.holidays != holiday:
            return False
        if self.weekdays and local.weekday() not in self.weekdays:
            return False
        if self.months and local.month not in self.months:
            return False
        return not self.hours or any(_in_range(local.hour, r) for r in self.hours)


def _in_range(hour: int, hours: tuple[int, int]) -> bool:
    start, end = hours
    return start <= hour < end if start < end else hour >= start or hour < end


@dataclass(frozen=True, slots=True)
class GridRates:
    """The grid's energy rate rules and the taxes per kWh (both excl. VAT)."""

    rules: Sequence[EnergyRule] = ()
    taxes: float = 0.0
    calendar: HolidayCalendar | None = None

    def energy(self, local: datetime) -> float | None:
        """The grid energy rate at ``local``: the first matching rule's price.

        0 when there are no rules; ``None`` when there are rules and none matches (a price not
        known is not published, so the rules should end with one that always matches).
        """
        if not self.rules:
            return 0.0
        holiday = self.calendar is not None and self.calendar.is_holiday(local.date())
        for rule in self.rules:
            if rule.matches(local, holiday):
                return rule.price
        return None


@dataclass(frozen=True, slots=True)
class Stromstotte:
    """Norway's strømstøtte: ``share`` of the hour's mean spot above ``threshold``."""

    threshold: float = DEFAULT_STROMSTOTTE_THRESHOLD
    share: float = DEFAULT_STROMSTOTTE_SHARE

    def subsidy(self, hour_mean_spot: float) -> float:
        """The support per kWh excl. VAT for an hour whose mean spot is ``hour_mean_spot``."""
        return self.share * max(0.0, hour_mean_spot - self.threshold)


@dataclass(frozen=True, slots=True)
class Norgespris:
    """Norway's Norgespris: a fixed ``price`` for up to ``monthly_kwh`` a month."""

    price: float = NORGESPRIS_PRICE
    monthly_kwh: float = NORGESPRIS_HOME_KWH

    def subsidy(self, spot: float) -> float:
        """What the grid company settles per kWh within the volume: spot − the fixed price."""
        return spot - self.price
