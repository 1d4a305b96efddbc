"""The European Central Bank's euro foreign exchange reference rates (XML).

Facts (https://www.ecb.europa.eu/stats/policy_and_exchange_rates/euro_reference_exchange_rates/):
``eurofxref-daily.xml`` (the latest working day) and ``eurofxref-hist-90d.xml`` (the last 90)
are a ``gesmes:Envelope`` whose ``Cube`` holds one ``<Cube time='YYYY-MM-DD'>`` per day, each with
``<Cube currency='NOK' rate='11.3965'/>`` children: units of the currency per 1 EUR, published
around 16:00 CET on TARGET working days (none on weekends and holidays).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import date, timedelta

from han2mqtt.errors import PriceFormatError

__all__ = ["RATE_MAX_AGE", "parse_ecb_rates", "rate_on"]

RATE_MAX_AGE = timedelta(days=6)
"""The oldest ECB rate used for a day: Easter (Good Friday to Easter Monday, no rates) and
tomorrow's prices before the day's rate is out fit in it; an older one is fetched anew."""


def parse_ecb_rates(document: bytes) -> dict[date, dict[str, float]]:
    """Each day's rates: ``{day: {"NOK": 11.39, …}}`` (currency per EUR).

    Raises:
        PriceFormatError: malformed XML, or a day or rate that is not one.
    """
    if b"<!DOCTYPE" in document[:4096].upper():
        raise PriceFormatError("ECB: a document with a DTD is refused")
    try:
        root = ET.fromstring(document)  # noqa: S314 - DTDs refused above
    except ET.ParseError as exc:
        raise PriceFormatError(f"ECB: malformed XML ({exc})") from exc
    days: dict[date, dict[str, float]] = {}
    for cube in root.iter():
        if cube.tag.rpartition("}")[2] == "Cube" and "time" in cube.attrib:
            days[_day(cube.attrib["time"])] = _rates(cube)
    if not days:
        raise PriceFormatError("ECB: no day of rates in the document")
    return days


def rate_on(
    days: dict[date, dict[str, float]],
    currency: str,
    day: date,
    max_age: timedelta | None = None,
) -> float | None:
    """The rate for ``day``: that day's, else the last one published before it.

    The ECB publishes none on weekends and TARGET holidays; ``None`` when none is known, or
    (``max_age``) the last one known is older than that before ``day``: a stale rate would
    give a wrong price.
    """
    known = [d for d in days if d <= day and currency in days[d]]
    if not known or (max_age is not None and max(known) < day - max_age):
        return None
    return days[max(known)][currency]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise PriceFormatError(f"ECB: bad day {text!r}") from exc


def _rates(cube: ET.Element) -> dict[str, float]:
    rates: dict[str, float] = {}
    for child in cube:
        currency, text = child.attrib.get("currency"), child.attrib.get("rate")
        if currency is None or text is None:
            continue
        try:
            rate = float(text)
        except ValueError as exc:
            raise PriceFormatError(f"ECB: bad rate {text!r} for {currency}") from exc
        if not math.isfinite(rate) or rate <= 0:
            raise PriceFormatError(f"ECB: bad rate {text!r} for {currency}")
        rates[currency] = rate
    return rates
