"""Reading the ledger: the query's parameters, and its answer as JSON or CSV.

Shared by ``GET /api/history`` and ``han2mqtt export`` so that both say the same
(CONVENTIONS.md, "Interval ledger, history, prices and cost"):

* ``resolution``: ``quarter`` | ``hour`` | ``day`` | ``month``;
* ``from`` (inclusive) and ``to`` (exclusive): a date (``2026-11-01``: local midnight) or a time
  (``2026-11-01T06:00``, local, or with an offset); without them, the period that holds now
  (today for quarters and hours, this month for days, this year for months);
* ``meter``: may be omitted when the database holds one meter.

Every interval: ``start`` (local time with its offset), ``import`` and ``export`` (kWh,
unrounded, null where not known), ``cost`` and ``revenue`` (in ``currency``, from the cached
prices: :mod:`han2mqtt.history.costing`; null where a price is not known, or without
``prices.source``), ``estimated``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final

from han2mqtt.energy.clock import day_start, local_iso
from han2mqtt.history.ledger import RESOLUTIONS, LedgerRow, LedgerStore, month_start

Money = tuple[float | None, float | None]
"""``(cost, revenue)`` of one interval (``None``: not known)."""

__all__ = [
    "CSV_HEADER",
    "MAX_INTERVALS",
    "HistoryQuery",
    "Money",
    "csv_text",
    "document",
    "parse_query",
    "resolve_meter",
]

CSV_HEADER: Final = ("start", "import_kwh", "export_kwh", "cost", "revenue", "estimated")
MAX_INTERVALS: Final = 40_000
"""The most intervals one query may span (400 days of quarters)."""
_LENGTH: Final = {
    "quarter": timedelta(minutes=15),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "month": timedelta(days=28),
}


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """A checked query: the resolution and the period [start, end) in UTC."""

    resolution: str
    start: datetime
    end: datetime
    meter: str | None = None


def parse_query(  # noqa: PLR0913 - the four parameters, the zone and the clock
    *,
    resolution: str | None,
    start: str | None,
    end: str | None,
    meter: str | None,
    zone: tzinfo,
    now: datetime,
) -> HistoryQuery:
    """Check the parameters (each given once, as text).

    Raises:
        ValueError: a bad parameter, with a one-line reason.
    """
    resolution = resolution or "hour"
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)}")
    first = (
        _time("from", start, zone) if start is not None else _default_start(resolution, now, zone)
    )
    last = _time("to", end, zone) if end is not None else _default_end(resolution, first, zone)
    if last <= first:
        raise ValueError("to must be after from")
    if (last - first) / _LENGTH[resolution] > MAX_INTERVALS:
        raise ValueError(f"too long a period: at most {MAX_INTERVALS} intervals of a {resolution}")
    if meter is not None and not (0 < len(meter) <= 64 and meter.isprintable()):
        raise ValueError("meter must be a meter id")
    return HistoryQuery(resolution, first, last, meter)


def _time(name: str, text: str, zone: tzinfo) -> datetime:
    if len(text) > 40:
        raise ValueError(f"{name} must be an ISO 8601 date or time")
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=zone).astimezone(UTC)
        # A "+01:00" offset typed into a URL unencoded arrives as " 01:00".
        moment = datetime.fromisoformat(text.replace(" ", "+"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 date or time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _default_start(resolution: str, now: datetime, zone: tzinfo) -> datetime:
    if resolution in ("quarter", "hour"):
        return day_start(now, zone)
    if resolution == "day":
        return month_start(now, zone)
    local = now.astimezone(zone)
    return datetime(local.year, 1, 1, tzinfo=zone).astimezone(UTC)


def _default_end(resolution: str, start: datetime, zone: tzinfo) -> datetime:
    local = start.astimezone(zone)
    if resolution in ("quarter", "hour"):
        following = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=zone)
    elif resolution == "day":
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        following = datetime(year, month, 1, tzinfo=zone)
    else:
        following = datetime(local.year + 1, 1, 1, tzinfo=zone)
    return following.astimezone(UTC)


def resolve_meter(store: LedgerStore | None, meter: str | None) -> str | None:
    """The meter asked for, or the only one stored; None when nothing is stored.

    Gas and water meters do not count when there is one electricity meter: it is the default.

    Raises:
        ValueError: the meter is not in the database, or several are and none was named.
    """
    meters = [] if store is None else store.meters()
    if meter is not None:
        if meter not in meters:
            raise ValueError(f"no intervals for meter {meter!r}")
        return meter
    if len(meters) > 1 and store is not None:  # a P1 meter and its gas meter: the P1 meter
        electricity = [m for m, kind in store.kinds().items() if kind == "electricity"]
        if len(electricity) == 1:
            return electricity[0]
        raise ValueError(f"give meter: one of {', '.join(meters)}")
    return meters[0] if meters else None


def document(  # noqa: PLR0913 - the answer's parts
    meter: str | None,
    resolution: str,
    rows: Sequence[LedgerRow],
    zone: tzinfo,
    *,
    money: Sequence[Money] | None = None,
    currency: str | None = None,
    unit: str = "kWh",
) -> dict[str, Any]:
    """The ``/api/history`` answer (and ``export --format json``).

    ``money``: each row's ``(cost, revenue)`` (:class:`~han2mqtt.history.costing.HistoryCosts`),
    ``None`` without prices; ``unit``: the meter's (``m³`` for gas and water).
    """
    money = money if money is not None else [(None, None)] * len(rows)
    return {
        "meter": meter,
        "resolution": resolution,
        "unit": unit,
        "currency": currency,
        "intervals": [
            {
                "start": local_iso(row.start, zone),
                "import": row.import_kwh,
                "export": row.export_kwh,
                "cost": cost,
                "revenue": revenue,
                "estimated": row.estimated,
            }
            for row, (cost, revenue) in zip(rows, money, strict=True)
        ],
    }


def csv_text(rows: Sequence[LedgerRow], zone: tzinfo, money: Sequence[Money] | None = None) -> str:
    """``export --format csv``: the header, then one line an interval (empty: not known)."""
    money = money if money is not None else [(None, None)] * len(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row, (cost, revenue) in zip(rows, money, strict=True):
        writer.writerow(
            [
                local_iso(row.start, zone),
                _number(row.import_kwh),
                _number(row.export_kwh),
                _number(cost),
                _number(revenue),
                "true" if row.estimated else "false",
            ]
        )
    return out.getvalue()


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)
