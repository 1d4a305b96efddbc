"""Public holidays by country, for grid rates and capacity-tariff windows (sans-IO).

Norwegian DSOs bill weekends and public holidays at the night rate, Swedish capacity tariffs leave
holidays out of the counting windows, and Danish tariffs follow their own calendar: each rule asks
"is this local date a public holiday in country X?".  The dates come from the ``holidays``
package (national holidays only, no regional ones: a grid tariff applies nationwide).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays

__all__ = ["PublicHolidays", "supported_country"]


def supported_country(code: str) -> bool:
    """Whether ``code`` (ISO 3166-1 alpha-2, e.g. ``"NO"``) has a public-holiday calendar."""
    return code.upper() in holidays.list_supported_countries()


class PublicHolidays:
    """The public holidays of one country, computed per year on first use.

    Args:
        country: ISO 3166-1 alpha-2 code.
        de_facto: also the days the ``holidays`` package files as de-facto holidays where the
            country has them (Sweden: Midsummer Eve, Christmas Eve, New Year's Eve, which
            Swedish grids leave out of "helgfri vardag" with the public holidays).

    Raises:
        ValueError: ``country`` has no calendar in the ``holidays`` package.
    """

    def __init__(self, country: str, *, de_facto: bool = False) -> None:
        code = country.upper()
        if not supported_country(code):
            raise ValueError(f"no public-holiday calendar for country {country!r}")
        self.country = code
        self.de_facto = de_facto

    def is_holiday(self, day: date) -> bool:
        """Whether the local date ``day`` is a public holiday."""
        return day in _year(self.country, day.year, self.de_facto)

    def name(self, day: date) -> str | None:
        """The holiday's name, or ``None`` on an ordinary day."""
        found = _year(self.country, day.year, self.de_facto).get(day)
        return None if found is None else str(found)


@lru_cache(maxsize=64)
def _year(country: str, year: int, de_facto: bool = False) -> holidays.HolidayBase:
    if not de_facto:
        return holidays.country_holidays(country, years=year, language="en_US")
    known = getattr(holidays.country_holidays(country), "supported_categories", ())
    categories = tuple(c for c in ("public", "de_facto") if c in known) or ("public",)
    return holidays.country_holidays(country, years=year, language="en_US", categories=categories)
