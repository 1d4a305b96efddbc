"""The status page's HTML, rendered on the server from the same JSON the API returns.

The page is complete without JavaScript: every value is in the markup, blocks whose values are
absent carry ``hidden``.  ``app.js`` then keeps the same elements current from the event stream,
finding them by ``data-v`` (a meter value), ``data-b`` (a bridge value, dotted path) and
``data-need`` (the values that unhide a block).  No inline script or style (the
Content-Security-Policy forbids both): bars are SVG attributes and ``<meter>`` elements.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from typing import Any, Final

__all__ = ["CHART_SECONDS", "render_page"]

CHART_SECONDS: Final = 600
_CHART_W, _CHART_H = 600, 150
_BARS_W, _BARS_H = 240, 100
_PRICES_W, _PRICES_H = 480, 100
_TARIFF = (
    "tariff_tier",
    "tariff_average",
    "tariff_window_energy",
    "tariff_window_projection",
    "tariff_headroom",
    "tariff_headroom_power",
    "tariff_capacity_cost",
    "tariff_peaks",
)
_HOURS = ("energy_import_last_hour", "energy_import_hour", "energy_import_today")


def render_page(state: dict[str, Any], history: dict[str, Any]) -> str:
    """The page for ``state`` and ``history`` shaped as ``/api/state`` and ``/api/history``."""
    meters = state["meters"]
    prices = state.get("prices")
    currency = prices["currency"] if prices else ""
    sections = [
        _meter(meter, history["meters"].get(meter_id), currency)
        for meter_id, meter in meters.items()
    ] or ['<section class="card waiting"><p>Waiting for the first frame of a meter…</p></section>']
    sections.append(_prices(prices))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<title>han2mqtt</title>"
        '<link rel="icon" href="/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/app.css"><script src="/app.js" defer></script>'
        "</head><body>"
        '<header><h1>han2mqtt</h1><p class="status">'
        f'source <b data-b="source.state">{_e(state["bridge"]["source"]["state"])}</b> · '
        f"MQTT {_mqtt_state(state['bridge'])} · "
        '<span id="live" class="live">snapshot</span></p></header>'
        f"<main>{''.join(sections)}{_diagnostics(state)}</main>"
        '<footer><a href="/history">history</a> · <a href="/api/state">/api/state</a> · '
        '<a href="/api/history?minutes=10">/api/history</a> · <a href="/metrics">/metrics</a>'
        "</footer></body></html>\n"
    )


def _meter(meter: dict[str, Any], history: dict[str, Any] | None, currency: str = "") -> str:
    values = {**meter["fields"], **meter["derived"]}
    title = " ".join(str(part) for part in (meter["manufacturer"], meter["type"]) if part)
    online = "online" if meter["online"] else "offline"
    return (
        f'<section class="card meter" data-meter="{_e(meter["id"])}">'
        f'<h2>{_e(title or "Meter")} <span class="id">{_e(meter["id"])}</span> '
        f'<span class="pill {online}" data-m="online">{online}</span></h2>'
        f'<div class="now">{_power(values)}</div>'
        f"{_phases(values)}{_chart(history)}{_hours(meter, values)}{_costs(values, currency)}"
        f"{_tariff(values)}</section>"
    )


def _power(values: dict[str, Any]) -> str:
    """Import, export and net power (W), or the apparent power (VA) of a meter that sends only that.

    A Linky's TIC sends apparent power: it is shown as such, and no net is made of it.
    """
    if (
        values.get("active_power_import") is None
        and values.get("apparent_power_import") is not None
    ):
        return (
            f"{_big('Import', 'apparent_power_import', values, 'imp', 'VA')}"
            f"{_big('Export', 'apparent_power_export', values, 'exp', 'VA')}"
        )
    return (
        f"{_big('Import', 'active_power_import', values, 'imp')}"
        f"{_big('Export', 'active_power_export', values, 'exp')}"
        f"{_big('Net', 'net', {**values, 'net': _net(values)}, 'net')}"
    )


def _big(label: str, key: str, values: dict[str, Any], css: str, unit: str = "W") -> str:
    need = "" if key == "net" else f' data-need="{key}"'
    hidden = "" if values.get(key) is not None else " hidden"
    return (
        f'<div class="big {css}"{need}{hidden}><span>{label}</span>'
        f'<b data-v="{key}" data-dp="0">{_fmt(values.get(key), 0)}</b><i>{unit}</i></div>'
    )


def _net(values: dict[str, Any]) -> float | None:
    if isinstance(values.get("power_net"), int | float):
        return float(values["power_net"])
    imp, exp = values.get("active_power_import"), values.get("active_power_export")
    if isinstance(imp, int | float):
        return float(imp) - (float(exp) if isinstance(exp, int | float) else 0.0)
    return None


def _phases(values: dict[str, Any]) -> str:
    rows = []
    for phase in "123":
        current, voltage, load = f"current_l{phase}", f"voltage_l{phase}", f"phase_load_l{phase}"
        number = values.get(load)
        level = f"{float(number):.0f}" if isinstance(number, int | float) else "0"
        rows.append(
            f'<tr data-need="{current} {voltage}"{_hidden(values, current, voltage)}>'
            f"<th>L{phase}</th>"
            f'<td><b data-v="{current}" data-dp="2">{_fmt(values.get(current), 2)}</b> A</td>'
            f'<td><b data-v="{voltage}" data-dp="1">{_fmt(values.get(voltage), 1)}</b> V</td>'
            f'<td class="load" data-need="{load}"{_hidden(values, load)}>'
            f'<meter min="0" max="100" low="70" high="90" optimum="0" value="{level}" '
            f'data-bar="{load}"></meter> <b data-v="{load}" data-dp="0">{_fmt(number, 0)}</b> %'
            "</td></tr>"
        )
    keys = [f"{kind}_l{p}" for kind in ("current", "voltage") for p in "123"]
    return (
        f'<table class="phases" data-need="{" ".join(keys)}"{_hidden(values, *keys)}>'
        "<caption>Phases</caption>"
        f"{''.join(rows)}</table>"
    )


def _chart(history: dict[str, Any] | None) -> str:
    lines, top = _chart_lines(history)
    return (
        '<figure class="chart"><figcaption>Power, last 10 minutes '
        f'<span class="scale" data-scale>{_fmt(top, 0)} W</span></figcaption>'
        f'<svg viewBox="0 0 {_CHART_W} {_CHART_H}" preserveAspectRatio="none" role="img" '
        'aria-label="power chart">'
        f'<polyline class="imp" data-line="import" points="{lines["import"]}"/>'
        f'<polyline class="exp" data-line="export" points="{lines["export"]}"/>'
        "</svg></figure>"
    )


def _chart_lines(history: dict[str, Any] | None) -> tuple[dict[str, str], float]:
    """SVG points of the import and export series (right edge: the newest sample)."""
    if not history or not history["t"]:
        return {"import": "", "export": ""}, 0.0
    times = history["t"]
    end = times[-1]
    top = _nice(max([v for key in ("import", "export") for v in history[key] if v] or [0]))
    lines = {}
    for key in ("import", "export"):
        points = [
            f"{_CHART_W - (end - when) * _CHART_W / CHART_SECONDS:.1f},"
            f"{_CHART_H - value * _CHART_H / top:.1f}"
            for when, value in zip(times, history[key], strict=True)
            if value is not None and end - when <= CHART_SECONDS
        ]
        lines[key] = " ".join(points)
    return lines, top


def _nice(value: float) -> float:
    """The chart's top: 1, 2 or 5 × a power of ten, at or above ``value`` (at least 100 W)."""
    magnitude = 100.0
    while True:
        for step in (1, 2, 5):
            if magnitude * step >= value:
                return magnitude * step
        magnitude *= 10


def _hours(meter: dict[str, Any], values: dict[str, Any]) -> str:
    hours = meter["hours"]
    bars = _bars(hours["kwh"], values)
    date = hours["date"] or ""
    return (
        f'<figure class="hours" data-need="{" ".join(_HOURS)}"{_hidden(values, *_HOURS)}>'
        f"<figcaption>Energy per hour <span data-hours-date>{_e(date)}</span> · today "
        f'<b data-v="energy_import_today" data-dp="2">{_fmt(values.get("energy_import_today"), 2)}'
        "</b> kWh · this hour "
        f'<b data-v="energy_import_hour" data-dp="2">{_fmt(values.get("energy_import_hour"), 2)}'
        "</b> kWh</figcaption>"
        f'<svg viewBox="0 0 {_BARS_W} {_BARS_H}" preserveAspectRatio="none" role="img" '
        f'aria-label="energy per hour" data-bars>{bars}</svg>'
        '<div class="ticks"><span>0</span><span>6</span><span>12</span><span>18</span>'
        "<span>24</span></div></figure>"
    )


def _bars(kwh: list[list[float]], values: dict[str, Any]) -> str:
    current = values.get("energy_import_hour")
    meter_time = values.get("meter_time")
    entries = [(int(hour), float(energy), "") for hour, energy in kwh]
    if isinstance(current, int | float) and isinstance(meter_time, str) and len(meter_time) > 13:
        entries.append((int(meter_time[11:13]), float(current), "now"))
    top = max([energy for _, energy, _ in entries] + [0.5])
    rects = []
    for hour, energy, css in entries:
        height = energy / top * (_BARS_H - 2)
        rects.append(
            f'<rect class="{css or "done"}" x="{hour * 10 + 1}" y="{_BARS_H - height:.1f}" '
            f'width="8" height="{height:.1f}"><title>{hour:02d}:00 {energy:.3f} kWh</title></rect>'
        )
    return "".join(rects)


def _tariff(values: dict[str, Any]) -> str:
    peaks = _peaks(values.get("tariff_peaks"))
    rows = [
        ("Tier", "tariff_tier", None, ""),
        ("Billed value", "tariff_average", 2, "kW"),
        ("Capacity fee so far", "tariff_capacity_cost", 2, ""),
        ("This window", "tariff_window_energy", 2, "kWh"),
        ("Projected", "tariff_window_projection", 2, "kWh"),
        ("Headroom", "tariff_headroom", 2, "kWh"),
        ("Headroom power", "tariff_headroom_power", 0, "W"),
    ]
    items = "".join(
        f'<div data-need="{key}"{_hidden(values, key)}><dt>{label}</dt><dd>'
        f"<b {_value_attributes(key, dp)}>{_fmt(values.get(key), dp)}</b> {unit}</dd></div>"
        for label, key, dp, unit in rows
    )
    listed = "".join(f"<li>{_e(start)}: {energy:.2f} kWh</li>" for start, energy in peaks)
    return (
        f'<div class="tariff" data-need="{" ".join(_TARIFF)}"{_hidden(values, *_TARIFF)}>'
        f"<h3>Capacity tariff</h3><dl>{items}</dl>"
        f'<ol class="peaks" data-peaks>{listed}</ol></div>'
    )


def _costs(values: dict[str, Any], currency: str) -> str:
    """The money fields: the price now and the cost of the hour, today and the month."""
    rows = [
        ("Price now", "price_import", 4, f"{currency}/kWh"),
        ("This hour", "cost_hour", 2, currency),
        ("Last hour", "cost_last_hour", 2, currency),
        ("Today", "cost_today", 2, currency),
        ("This month", "cost_month", 2, currency),
        ("Earned today", "revenue_today", 2, currency),
    ]
    items = "".join(
        f'<div data-need="{key}"{_hidden(values, key)}><dt>{label}</dt><dd>'
        f"<b {_value_attributes(key, dp)}>{_fmt(values.get(key), dp)}</b> {_e(unit)}</dd></div>"
        for label, key, dp, unit in rows
    )
    keys = " ".join(key for _, key, _, _ in rows)
    return (
        f'<div class="costs" data-need="{keys}"{_hidden(values, *keys.split())}>'
        f"<h3>Cost</h3><dl>{items}</dl></div>"
    )


def _prices(prices: dict[str, Any] | None) -> str:
    """Today's and tomorrow's spot prices as bars, the interval now marked; hidden when none."""
    if not prices:
        return ""
    intervals = prices["intervals"]
    spots = [float(i["spot"]) for i in intervals]
    top = max([*spots, 0.01])
    low = min([*spots, 0.0])
    span = top - low
    width = _PRICES_W / max(len(intervals), 1)
    rects = []
    for index, interval in enumerate(intervals):
        spot = float(interval["spot"])
        height = (spot - low) / span * (_PRICES_H - 2)
        css = "now" if interval["start"] == prices["now"] else "done"
        rects.append(
            f'<rect class="{css}" x="{index * width:.2f}" y="{_PRICES_H - height:.1f}" '
            f'width="{max(width - 0.5, 0.2):.2f}" height="{height:.1f}">'
            f"<title>{_e(interval['start'][:16])} {spot:.4f}</title></rect>"
        )
    first, last = intervals[0]["start"][:10], intervals[-1]["start"][:10]
    days = first if first == last else f"{first} – {last}"
    return (
        f'<section class="card prices"><h2>Spot prices {_e(prices["area"])} '
        f'<span class="id">{_e(prices["currency"])}/kWh excl. VAT · {_e(days)}</span></h2>'
        f'<svg viewBox="0 0 {_PRICES_W} {_PRICES_H}" preserveAspectRatio="none" role="img" '
        f'aria-label="spot prices">{"".join(rects)}</svg></section>'
    )


def _value_attributes(key: str, dp: int | None) -> str:
    """``data-v`` (and ``data-dp``, the decimals, for numbers) for app.js to keep it current."""
    return f'data-v="{key}"' if dp is None else f'data-v="{key}" data-dp="{dp}"'


def _peaks(raw: object) -> list[tuple[str, float]]:
    """``tariff_peaks`` (a JSON list of [start, kWh] or {start, kwh}) as pairs; junk is skipped."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    found = []
    for item in raw if isinstance(raw, list) else []:
        start, energy = _peak(item)
        if isinstance(start, str) and isinstance(energy, int | float):
            found.append((start, float(energy)))
    return found


def _peak(item: object) -> tuple[object, object]:
    if isinstance(item, list | tuple) and len(item) >= 2:
        return item[0], item[1]
    if isinstance(item, dict):
        return item.get("start"), item.get("kwh", item.get("energy"))
    return None, None


def _diagnostics(state: dict[str, Any]) -> str:
    bridge = state["bridge"]
    rows = [
        ("Source", "source.address", bridge["source"]["address"]),
        ("Source state", "source.state", bridge["source"]["state"]),
        ("Source error", "source.last_error", bridge["source"].get("last_error")),
        ("MQTT broker", "mqtt.broker", bridge["mqtt"]["broker"]),
        ("MQTT error", "mqtt.last_error", bridge["mqtt"]["last_error"]),
        ("Frames", "frames", bridge["frames"]),
        ("Decoded", "decoded", bridge["decoded"]),
        ("Decode errors", "decode_errors", bridge["decode_errors"]),
        ("Held back (no meter id yet)", "held_back", bridge["held_back"]),
        ("MQTT published", "mqtt.published", bridge["mqtt"]["published"]),
        ("MQTT dropped", "mqtt.dropped", bridge["mqtt"]["dropped"]),
        ("MQTT reconnects", "mqtt.reconnects", bridge["mqtt"]["reconnects"]),
        ("Last frame (s ago)", "last_frame_age", bridge["last_frame_age"]),
        ("Uptime (s)", "uptime", bridge["uptime"]),
    ]
    items = "".join(
        f'<dt>{label}</dt><dd data-b="{path}">{_fmt(value, None)}</dd>'
        for label, path, value in rows
    )
    versions = " · ".join(f"{name} {version}" for name, version in bridge["versions"].items())
    return (
        '<section class="card diag"><h2>Diagnostics</h2>'
        f"<dl>{items}<dt>Versions</dt><dd>{_e(versions)}</dd></dl>"
        '<h3>Rejected frames <button type="button" id="copy" hidden>Copy</button></h3>'
        f'<pre id="rejects">{_e(rejects_text(state["rejects"]))}</pre></section>'
    )


def rejects_text(rejects: Iterable[dict[str, Any]]) -> str:
    """The rejected frames as text for a bug report (the page's JS builds the same)."""
    lines = [
        f"{reject['time']} {reject['kind']} ({reject['length']} octets): {reject['reason']}\n"
        f"{reject['hex']}\n"
        for reject in rejects
    ]
    return "\n".join(lines) or "none"


def _hidden(values: dict[str, Any], *keys: str) -> str:
    return "" if any(values.get(key) is not None for key in keys) else " hidden"


def _mqtt_state(bridge: dict[str, Any]) -> str:
    connected = "connected" if bridge["mqtt"]["connected"] else "disconnected"
    return f'<b data-b="mqtt.connected" data-map="connected,disconnected">{connected}</b>'


def _fmt(value: object, dp: int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float | int) and not isinstance(value, bool) and dp is not None:
        return f"{value:.{dp}f}"
    return _e(str(value))


def _e(text: object) -> str:
    return escape(str(text), quote=True)
