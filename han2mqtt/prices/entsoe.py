"""The ENTSO-E Transparency Platform's day-ahead price document (A44, "Publication_MarketDocument").

Facts from the platform's API guide and the IEC 62325-451-3 publication document it uses:

- the document holds one or more ``TimeSeries`` (one per contract period or sequence), each with
  ``currency_Unit.name`` (``EUR``), ``price_Measure_Unit.name`` (``MWH``), a ``curveType`` and one
  or more ``Period``s;
- a ``Period`` has a ``timeInterval`` (``start``/``end`` in UTC, ``2025-09-30T22:00Z``), a
  ``resolution`` (ISO 8601 duration: ``PT60M``, and ``PT15M`` since the market's 15-minute
  products of 1 October 2025) and ``Point``s numbered by ``position`` from 1;
- curve type ``A01`` (sequential fixed-size blocks) lists every position; ``A03`` (variable-sized
  blocks) leaves out a point whose price equals the previous one: the block runs on until the
  next listed position (or the period's end);
- a request that finds nothing is answered by an ``Acknowledgement_MarketDocument`` whose
  ``Reason`` says so (code 999, "No matching data found").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Final

from han2mqtt.errors import PriceError, PriceFormatError
from han2mqtt.prices.model import PricePoint

__all__ = ["parse_entsoe"]

RESOLUTIONS: Final = {"PT15M": 15, "PT60M": 60, "PT1H": 60}
"""ISO 8601 durations of a Period's resolution, in minutes."""
SEQUENTIAL: Final = "A01"
VARIABLE_BLOCKS: Final = "A03"
KWH_PER_MWH: Final = 1000


def parse_entsoe(document: bytes) -> tuple[PricePoint, ...]:
    """The spot prices of an A44 document, in EUR per kWh, sorted by start.

    Overlapping series are merged: the same interval twice must carry the same price, and where
    a 15-minute series and an hourly one cover the same hour the quarters win.

    Raises:
        PriceError: the document is an acknowledgement (no data for the request).
        PriceFormatError: malformed XML, an unknown unit, resolution or curve type, a position out
            of its period, or one interval with two prices.
    """
    root = _parse_xml(document)
    kind = _local(root.tag)
    if kind == "Acknowledgement_MarketDocument":
        reason = " ".join(t.strip() for t in _texts(root, "text")) or "no reason given"
        raise PriceError(f"ENTSO-E answered without prices: {reason}")
    if kind != "Publication_MarketDocument":
        raise PriceFormatError(f"ENTSO-E: unexpected document {kind!r}")
    by_minutes: dict[int, dict[datetime, float]] = {15: {}, 60: {}}
    for series in _children(root, "TimeSeries"):
        _check_units(series)
        curve = _text(series, "curveType", SEQUENTIAL)
        for period in _children(series, "Period"):
            minutes, points = _period(period, curve)
            _merge(by_minutes[minutes], points)
    return _combine(by_minutes)


def _parse_xml(document: bytes) -> ET.Element:
    # A DTD has no business in an A44 document; refusing it rules out entity expansion tricks
    # (expat >= 2.4 bounds them anyway and ElementTree never fetches external entities).
    if b"<!DOCTYPE" in document[:4096].upper():
        raise PriceFormatError("ENTSO-E: a document with a DTD is refused")
    try:
        return ET.fromstring(document)  # noqa: S314 - DTDs refused above
    except ET.ParseError as exc:
        raise PriceFormatError(f"ENTSO-E: malformed XML ({exc})") from exc


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _texts(element: ET.Element, name: str) -> list[str]:
    return [node.text or "" for node in element.iter() if _local(node.tag) == name]


def _text(element: ET.Element, name: str, default: str | None = None) -> str:
    for child in element:
        if _local(child.tag) == name and child.text is not None:
            return child.text.strip()
    if default is None:
        raise PriceFormatError(f"ENTSO-E: <{_local(element.tag)}> lacks <{name}>")
    return default


def _check_units(series: ET.Element) -> None:
    currency = _text(series, "currency_Unit.name", "EUR")
    unit = _text(series, "price_Measure_Unit.name", "MWH")
    if currency != "EUR" or unit != "MWH":
        raise PriceFormatError(f"ENTSO-E: prices in {currency}/{unit}, expected EUR/MWH")


def _period(period: ET.Element, curve: str) -> tuple[int, dict[datetime, float]]:
    interval = _children(period, "timeInterval")
    if not interval:
        raise PriceFormatError("ENTSO-E: a Period lacks its timeInterval")
    start = _instant(_text(interval[0], "start"))
    end = _instant(_text(interval[0], "end"))
    resolution = _text(period, "resolution")
    minutes = RESOLUTIONS.get(resolution)
    if minutes is None:
        raise PriceFormatError(f"ENTSO-E: unsupported resolution {resolution!r}")
    count, remainder = divmod(end - start, timedelta(minutes=minutes))
    if count <= 0 or remainder:
        raise PriceFormatError(f"ENTSO-E: period {start}..{end} is no whole number of steps")
    listed = _positions(period, count)
    prices = _fill(listed, count, curve)
    step = timedelta(minutes=minutes)
    return minutes, {start + step * index: price for index, price in enumerate(prices)}


def _positions(period: ET.Element, count: int) -> dict[int, float]:
    listed: dict[int, float] = {}
    for point in _children(period, "Point"):
        try:
            position = int(_text(point, "position"))
            price = float(_text(point, "price.amount"))
        except ValueError as exc:
            raise PriceFormatError(f"ENTSO-E: a Point is not a number ({exc})") from exc
        if not 1 <= position <= count or position in listed or price != price:  # noqa: PLR0124
            raise PriceFormatError(f"ENTSO-E: position {position} repeated or out of 1..{count}")
        listed[position] = price
    return listed


def _fill(listed: dict[int, float], count: int, curve: str) -> list[float]:
    """Every position's price; A03 carries a price forward over the positions it leaves out."""
    if curve not in (SEQUENTIAL, VARIABLE_BLOCKS):
        raise PriceFormatError(f"ENTSO-E: unsupported curve type {curve!r}")
    if 1 not in listed:
        raise PriceFormatError("ENTSO-E: a Period without its first position")
    if curve == SEQUENTIAL and len(listed) != count:
        raise PriceFormatError(f"ENTSO-E: curve A01 with {len(listed)} of {count} positions")
    prices: list[float] = []
    for position in range(1, count + 1):
        prices.append(listed.get(position, prices[-1] if prices else 0.0))
    return prices


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PriceFormatError(f"ENTSO-E: bad time {text!r}") from exc
    if moment.tzinfo is None:
        raise PriceFormatError(f"ENTSO-E: time {text!r} without its zone")
    return moment


def _merge(into: dict[datetime, float], points: dict[datetime, float]) -> None:
    for start, price in points.items():
        if into.setdefault(start, price) != price:
            raise PriceFormatError(f"ENTSO-E: two prices for {start.isoformat()}")


def _combine(by_minutes: dict[int, dict[datetime, float]]) -> tuple[PricePoint, ...]:
    quarters = by_minutes[15]
    hours_covered = {start.replace(minute=0) for start in quarters}
    points = [PricePoint(start, 15, price / KWH_PER_MWH) for start, price in quarters.items()]
    points += [
        PricePoint(start, 60, price / KWH_PER_MWH)
        for start, price in by_minutes[60].items()
        if start not in hours_covered
    ]
    return tuple(sorted(points, key=lambda point: point.start))
