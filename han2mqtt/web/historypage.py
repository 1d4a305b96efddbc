"""The history views of the status page (``/history``): a day, a month or a year of the ledger.

Server-rendered HTML, no script: a day shows its hours (each hour's quarters in a ``<details>``
element, opened on demand), a month its days, a year its months, each with import, export, cost
and revenue (from the cached prices, :mod:`han2mqtt.history.costing`; ``—`` where a price is not
known), an electricity meter's gas and water meters in columns beside, estimated intervals
marked (``≈``, class ``est``), and links to the period before and after and into each row.
Bars are SVG attributes (the Content-Security-Policy forbids inline styles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from html import escape
from typing import Final
from urllib.parse import urlencode

from han2mqtt.energy.clock import window_start
from han2mqtt.history.costing import HistoryCosts
from han2mqtt.history.ledger import UNITS, LedgerRow, LedgerStore
from han2mqtt.history.query import Money

__all__ = ["HistoryView", "parse_view", "render_history"]

VIEWS: Final = ("day", "month", "year")
_BARS_W, _BARS_H = 600, 120


@dataclass(frozen=True, slots=True)
class HistoryView:
    """One period to show: ``view`` (day, month, year) starting on the local date ``first``."""

    view: str
    first: date
    meter: str | None = None

    @property
    def label(self) -> str:
        """The period as the ``date`` parameter gives it: 2026-10-25, 2026-10 or 2026."""
        if self.view == "day":
            return self.first.isoformat()
        if self.view == "month":
            return self.first.strftime("%Y-%m")
        return str(self.first.year)

    def after(self) -> date:
        """The first day of the next period."""
        if self.view == "day":
            return self.first + timedelta(days=1)
        if self.view == "month":
            return _next_month(self.first)
        return date(self.first.year + 1, 1, 1)

    def before(self) -> date:
        """The first day of the previous period."""
        if self.view == "day":
            return self.first - timedelta(days=1)
        if self.view == "month":
            return (self.first - timedelta(days=1)).replace(day=1)
        return date(self.first.year - 1, 1, 1)


def _next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def parse_view(view: str | None, when: str | None, meter: str | None, today: date) -> HistoryView:
    """The view asked for: ``view`` day|month|year, ``date`` 2026-10-25 | 2026-10 | 2026.

    Raises:
        ValueError: a bad parameter (one line).
    """
    view = view or "day"
    if view not in VIEWS:
        raise ValueError("view must be day, month or year")
    try:
        if when is None:
            first = today
        elif view == "day":
            first = date.fromisoformat(when)
        elif view == "month":
            first = date.fromisoformat(f"{when}-01")
        else:
            first = date(int(when), 1, 1) if when.isdigit() and len(when) == 4 else date.min
    except ValueError:
        raise ValueError(f"date does not fit a {view} view") from None
    if first == date.min or not 1900 < first.year < 9999:
        raise ValueError(f"date does not fit a {view} view")
    if view == "month":
        first = first.replace(day=1)
    elif view == "year":
        first = date(first.year, 1, 1)
    return HistoryView(view, first, meter)


def render_history(
    view: HistoryView,
    store: LedgerStore | None,
    meters: Sequence[str],
    zone: tzinfo,
    costs: HistoryCosts | None = None,
) -> str:
    """The whole page for ``view`` (``store`` None: no history yet; ``costs`` None: no prices).

    Raises:
        StateError: the database cannot be read.
    """
    if store is None or view.meter is None:
        body = '<section class="card"><p>No history yet: intervals appear as they close.</p>'
        body += _meter_links(view, meters) + "</section>"
    else:
        body = _period(view, store, zone, costs)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>han2mqtt history {_e(view.label)}</title>"
        '<link rel="icon" href="/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/app.css">'
        '</head><body><header><h1><a href="/">han2mqtt</a> · history</h1></header>'
        f'<main class="history">{body}</main>'
        '<footer><a href="/">live</a> · <a href="/api/history?resolution=hour">/api/history</a>'
        "</footer></body></html>\n"
    )


def _meter_links(view: HistoryView, meters: Sequence[str]) -> str:
    if len(meters) < 2:
        return ""
    links = " · ".join(
        f'<a href="{_href(HistoryView(view.view, view.first, meter))}">{_e(meter)}</a>'
        for meter in meters
    )
    return f'<p class="meters">Meters: {links}</p>'


def _period(view: HistoryView, store: LedgerStore, zone: tzinfo, costs: HistoryCosts | None) -> str:
    assert view.meter is not None
    start, end = _midnight(view.first, zone), _midnight(view.after(), zone)
    resolution = {"day": "hour", "month": "day", "year": "month"}[view.view]
    rows = store.read(view.meter, resolution, start, end)
    kinds = store.kinds()
    kind = kinds.get(view.meter, "electricity")
    money = _money(costs, store, view.meter, resolution, rows, kind)
    beside = [  # an electricity meter's gas and water meters, in columns of their own
        (f"{other.capitalize()} {UNITS[other]}", _by_start(store.read(m, resolution, start, end)))
        for m, other in sorted(kinds.items())
        if kind == "electricity" and other in ("gas", "water")
    ]
    quarters: dict[datetime, list[LedgerRow]] = {}
    if view.view == "day":
        for quarter in store.read(view.meter, "quarter", start, end):
            hour = window_start(quarter.start, zone, 60)
            quarters.setdefault(hour, []).append(quarter)
    layout = _Layout(
        _LABELS.get(kind, _LABELS["electricity"]),
        "" if costs is None else f" {costs.currency}",
        beside,
    )
    up = ""
    if view.view != "year":
        parent = HistoryView("year" if view.view == "month" else "month", view.first, view.meter)
        up = f' · <a rel="up" href="{_href(parent)}">{_e(parent.label)}</a>'
    return (
        f'<section class="card ledger" data-view="{view.view}" data-meter="{_e(view.meter)}">'
        f'<h2>{_e(view.label)} <span class="id">{_e(view.meter)}</span></h2>'
        '<nav class="periods">'
        f'<a rel="prev" href="{_href(HistoryView(view.view, view.before(), view.meter))}">← '
        "earlier</a> · "
        f'<a rel="next" href="{_href(HistoryView(view.view, view.after(), view.meter))}">later '
        f"→</a>{up}</nav>{_meter_links(view, list(kinds))}"
        f"{_bars(rows)}{_table(view, rows, money, quarters, zone, layout)}"
        '<p class="legend"><span class="est">≈</span> estimated: registers do not bracket it '
        "(or hours of it are missing)</p></section>"
    )


_LABELS: Final = {
    "electricity": ("Import kWh", "Export kWh"),
    "gas": ("Gas m³", "Export"),
    "water": ("Water m³", "Export"),
}


@dataclass(frozen=True, slots=True)
class _Layout:
    """The table's columns: the meter's own labels, the currency, and meters shown beside."""

    labels: tuple[str, str]
    currency: str
    beside: list[tuple[str, dict[datetime, LedgerRow]]]


def _by_start(rows: Sequence[LedgerRow]) -> dict[datetime, LedgerRow]:
    return {row.start: row for row in rows}


def _money(  # noqa: PLR0913, PLR0917 - the query's parts
    costs: HistoryCosts | None,
    store: LedgerStore,
    meter: str,
    resolution: str,
    rows: Sequence[LedgerRow],
    kind: str,
) -> list[Money]:
    if costs is None:
        return [(None, None)] * len(rows)
    return costs.money(store, meter, resolution, rows, kind)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _bars(rows: Sequence[LedgerRow]) -> str:
    if not rows:
        return ""
    top = max([row.import_kwh or 0.0 for row in rows] + [0.001])
    width = _BARS_W / len(rows)
    rects = []
    for index, row in enumerate(rows):
        height = (row.import_kwh or 0.0) / top * (_BARS_H - 2)
        css = "est" if row.estimated else "done"
        rects.append(
            f'<rect class="{css}" x="{index * width + 1:.1f}" y="{_BARS_H - height:.1f}" '
            f'width="{max(width - 2, 1):.1f}" height="{height:.1f}"></rect>'
        )
    return (
        f'<svg viewBox="0 0 {_BARS_W} {_BARS_H}" preserveAspectRatio="none" role="img" '
        f'aria-label="import per interval" data-ledger-bars>{"".join(rects)}</svg>'
    )


def _table(  # noqa: PLR0913, PLR0917 - the rows, their money and how to show them
    view: HistoryView,
    rows: Sequence[LedgerRow],
    money: Sequence[Money],
    quarters: dict[datetime, list[LedgerRow]],
    zone: tzinfo,
    layout: _Layout,
) -> str:
    if not rows:
        return '<p class="empty">No intervals in this period.</p>'
    heading = {"day": "Hour", "month": "Day", "year": "Month"}[view.view]
    body = "".join(
        _row(view, row, cost, quarters.get(row.start, []), zone, layout)
        for row, cost in zip(rows, money, strict=True)
    )
    imported = sum(row.import_kwh or 0.0 for row in rows)
    exported = sum(row.export_kwh or 0.0 for row in rows)
    total = _total([cost for cost, _ in money])
    revenue = _total([revenue for _, revenue in money])
    first, second = layout.labels
    beside_heads = "".join(f"<th>{_e(label)}</th>" for label, _ in layout.beside)
    beside_totals = "".join(f"<td>{_kwh(_sum_of(rows, other))}</td>" for _, other in layout.beside)
    return (
        '<table class="ledger"><thead><tr>'
        f"<th>{heading}</th><th>{_e(first)}</th><th>{_e(second)}</th>"
        f"<th>Cost{_e(layout.currency)}</th><th>Revenue{_e(layout.currency)}</th>{beside_heads}"
        f"<th></th></tr></thead><tbody>{body}</tbody><tfoot><tr><th>Total</th>"
        f"<td>{imported:.3f}</td><td>{exported:.3f}</td><td>{_cost(total)}</td>"
        f"<td>{_cost(revenue)}</td>{beside_totals}<td></td></tr></tfoot></table>"
    )


def _total(values: Sequence[float | None]) -> float | None:
    """The sum of the rows' money; None when one of them is not known."""
    return None if any(value is None for value in values) else sum(v or 0.0 for v in values)


def _sum_of(rows: Sequence[LedgerRow], other: dict[datetime, LedgerRow]) -> float | None:
    """The total of a meter shown beside, over the rows shown (None: an interval missing)."""
    values = [other[row.start].import_kwh if row.start in other else None for row in rows]
    return None if any(v is None for v in values) else sum(v or 0.0 for v in values)


def _cost(value: float | None) -> str:
    """A cost as shown (two decimals; the API has it unrounded), ``—`` when not known."""
    return "—" if value is None else f"{value:.2f}"


def _row(  # noqa: PLR0913, PLR0917 - one row and how to show it
    view: HistoryView,
    row: LedgerRow,
    money: Money,
    parts: list[LedgerRow],
    zone: tzinfo,
    layout: _Layout,
) -> str:
    local = row.start.astimezone(zone)
    if view.view == "day":
        label = local.strftime("%H:%M%z")
        label = f"{label[:5]} {label[5:8]}:{label[8:]}"  # 02:00 +02:00 and 02:00 +01:00
        if parts:
            label = f"<details><summary>{_e(label)}</summary>{_quarters(parts, zone)}</details>"
        else:
            label = _e(label)
    elif view.view == "month":
        child = HistoryView("day", local.date(), view.meter)
        label = f'<a href="{_href(child)}">{_e(local.date().isoformat())}</a>'
    else:
        child = HistoryView("month", local.date(), view.meter)
        label = f'<a href="{_href(child)}">{_e(local.strftime("%Y-%m"))}</a>'
    css = ' class="est"' if row.estimated else ""
    mark = '<span title="estimated">≈</span>' if row.estimated else ""
    beside = "".join(f"<td>{_beside(other.get(row.start))}</td>" for _, other in layout.beside)
    return (
        f"<tr{css}><td>{label}</td><td>{_kwh(row.import_kwh)}</td>"
        f"<td>{_kwh(row.export_kwh)}</td><td>{_cost(money[0])}</td><td>{_cost(money[1])}</td>"
        f"{beside}<td>{mark}</td></tr>"
    )


def _beside(row: LedgerRow | None) -> str:
    if row is None:
        return "—"
    mark = '<span title="estimated">≈</span>' if row.estimated else ""
    return f"{_kwh(row.import_kwh)}{mark}"


def _quarters(parts: list[LedgerRow], zone: tzinfo) -> str:
    rows = "".join(
        f"<tr{' class=est' if part.estimated else ''}>"
        f"<td>{part.start.astimezone(zone).strftime('%H:%M')}</td>"
        f"<td>{_kwh(part.import_kwh)}</td><td>{_kwh(part.export_kwh)}</td>"
        f"<td>{'≈' if part.estimated else ''}</td></tr>"
        for part in parts
    )
    return f'<table class="quarters">{rows}</table>'


def _kwh(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _href(view: HistoryView) -> str:
    query = {"view": view.view, "date": view.label}
    if view.meter is not None:
        query["meter"] = view.meter
    return _e("/history?" + urlencode(query))


def _e(text: object) -> str:
    return escape(str(text), quote=True)
