"""The JSON price sources: Energi Data Service, hvakosterstrommen.no, elprisetjustnu.se, MQTT.

Formats (facts from the services' public documentation and responses):

- Energi Data Service, dataset ``DayAheadPrices`` (Energinet; it replaced ``Elspotprices`` with
  the 15-minute day-ahead market of 1 October 2025,
  https://www.energidataservice.dk/tso-electricity/DayAheadPrices): ``{"total", "dataset",
  "records": [{"TimeUTC": "2025-10-01T21:45:00", "TimeDK", "PriceArea": "DK1",
  "DayAheadPriceEUR", "DayAheadPriceDKK"}]}``, prices per MWh, ``TimeUTC`` without an offset.
- hvakosterstrommen.no (``/api/v1/prices/YYYY/MM-DD_NO1.json``) and elprisetjustnu.se (the same
  API for Sweden, ``…_SE3.json``): a list of ``{"NOK_per_kWh" | "SEK_per_kWh", "EUR_per_kWh",
  "EXR", "time_start": "2025-10-01T00:00:00+02:00", "time_end"}``, one per interval (quarters
  since 1 October 2025), prices per kWh excl. VAT.
- MQTT (han2mqtt's own): a JSON list of ``{"start": ISO-with-offset, "price": currency/kWh}``
  (optionally ``"end"``), or one number: the price of the interval now.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, Final

from han2mqtt.errors import PriceFormatError
from han2mqtt.prices.model import PricePoint

__all__ = [
    "parse_elprisetjustnu",
    "parse_energidataservice",
    "parse_hvakosterstrommen",
    "parse_mqtt_prices",
]

KWH_PER_MWH: Final = 1000


def parse_energidataservice(body: bytes, area: str) -> tuple[str, tuple[PricePoint, ...]]:
    """``(currency, points)`` of a ``DayAheadPrices`` answer for ``area`` (``DK1``/``DK2``).

    DKK when every record carries ``DayAheadPriceDKK``, else EUR; per kWh.

    Raises:
        PriceFormatError: not the dataset's JSON, or a record without a time or price.
    """
    data = _json(body, "Energi Data Service")
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise PriceFormatError("Energi Data Service: no 'records' list in the answer")
    mine = [r for r in records if isinstance(r, dict) and r.get("PriceArea") == area]
    currency = "DKK" if all(_is_number(r.get("DayAheadPriceDKK")) for r in mine) else "EUR"
    key = f"DayAheadPrice{currency}"
    starts: list[tuple[datetime, float]] = []
    for record in mine:
        start = _instant(record.get("TimeUTC"), "Energi Data Service", assume_utc=True)
        starts.append((start, _price(record.get(key), "Energi Data Service") / KWH_PER_MWH))
    return currency, _spaced(starts, "Energi Data Service")


def parse_hvakosterstrommen(body: bytes) -> tuple[PricePoint, ...]:
    """The points of a hvakosterstrommen.no day, NOK per kWh.

    Raises:
        PriceFormatError: not the API's list, or an entry without its times or price.
    """
    return _per_kwh_list(body, "NOK_per_kWh", "hvakosterstrommen")


def parse_elprisetjustnu(body: bytes) -> tuple[PricePoint, ...]:
    """The points of an elprisetjustnu.se day, SEK per kWh.

    Raises:
        PriceFormatError: not the API's list, or an entry without its times or price.
    """
    return _per_kwh_list(body, "SEK_per_kWh", "elprisetjustnu")


def parse_mqtt_prices(body: bytes, now: datetime, minutes: int) -> tuple[PricePoint, ...]:
    """The points of an MQTT price message, in the configured currency per kWh.

    One number is the price of the ``minutes``-long interval that holds ``now``; a list gives
    each point's ``start`` and ``price`` (and optionally ``end``; else it runs to the next start,
    the last one as long as the one before it, a single one ``minutes``).

    Raises:
        PriceFormatError: neither a number nor such a list.
    """
    data = _json(body, "MQTT prices")
    if _is_number(data):
        step = timedelta(minutes=minutes)
        moment = now.astimezone(UTC)
        start = moment - (moment - datetime(2000, 1, 1, tzinfo=UTC)) % step
        return (PricePoint(start, minutes, float(data)),)
    if not isinstance(data, list) or not data:
        raise PriceFormatError("MQTT prices: expected a number or a list of {start, price}")
    entries = [_mqtt_entry(item) for item in data]
    entries.sort(key=lambda entry: entry[0])
    points: list[PricePoint] = []
    for index, (start, end, price) in enumerate(entries):
        length = _mqtt_length(entries, index, end, minutes)
        points.append(_point(start, length, price, "MQTT prices"))
    return tuple(points)


def _mqtt_entry(item: object) -> tuple[datetime, datetime | None, float]:
    if not isinstance(item, dict):
        raise PriceFormatError("MQTT prices: each entry is an object {start, price}")
    start = _instant(item.get("start"), "MQTT prices")
    end = None if item.get("end") is None else _instant(item.get("end"), "MQTT prices")
    return start, end, _price(item.get("price"), "MQTT prices")


def _mqtt_length(
    entries: Sequence[tuple[datetime, datetime | None, float]],
    index: int,
    end: datetime | None,
    minutes: int,
) -> float:
    if end is not None:
        return (end - entries[index][0]) / timedelta(minutes=1)
    if index + 1 < len(entries):
        return (entries[index + 1][0] - entries[index][0]) / timedelta(minutes=1)
    if index > 0:
        return (entries[index][0] - entries[index - 1][0]) / timedelta(minutes=1)
    return minutes


def _per_kwh_list(body: bytes, key: str, source: str) -> tuple[PricePoint, ...]:
    data = _json(body, source)
    if not isinstance(data, list):
        raise PriceFormatError(f"{source}: expected a list of intervals")
    points: list[PricePoint] = []
    for entry in data:
        if not isinstance(entry, Mapping):
            raise PriceFormatError(f"{source}: an interval is not an object")
        start = _instant(entry.get("time_start"), source)
        end = _instant(entry.get("time_end"), source)
        length = (end - start) / timedelta(minutes=1)
        points.append(_point(start, length, _price(entry.get(key), source), source))
    return tuple(sorted(points, key=lambda point: point.start))


def _spaced(starts: list[tuple[datetime, float]], source: str) -> tuple[PricePoint, ...]:
    """Points from starts alone: every interval as long as the smallest gap between starts."""
    starts.sort(key=lambda item: item[0])
    gaps = {(b[0] - a[0]) / timedelta(minutes=1) for a, b in pairwise(starts)}
    gaps.discard(0)  # a duplicate start is the day check's to report
    length = min(gaps, default=60.0)
    return tuple(_point(start, length, price, source) for start, price in starts)


def _point(start: datetime, minutes: float, price: float, source: str) -> PricePoint:
    if minutes not in (15, 60):
        raise PriceFormatError(f"{source}: an interval of {minutes:g} minutes at {start}")
    return PricePoint(start, int(minutes), price)


def _json(body: bytes, source: str) -> Any:  # noqa: ANN401 - JSON is any shape until checked
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PriceFormatError(f"{source}: malformed JSON ({exc})") from None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _price(value: object, source: str) -> float:
    if not _is_number(value):
        raise PriceFormatError(f"{source}: a price that is not a number ({value!r})")
    assert isinstance(value, int | float)
    return float(value)


def _instant(value: object, source: str, assume_utc: bool = False) -> datetime:
    if not isinstance(value, str):
        raise PriceFormatError(f"{source}: a time that is not text ({value!r})")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PriceFormatError(f"{source}: bad time {value!r}") from exc
    if moment.tzinfo is None:
        if not assume_utc:
            raise PriceFormatError(f"{source}: time {value!r} without its UTC offset")
        moment = moment.replace(tzinfo=UTC)
    return moment
