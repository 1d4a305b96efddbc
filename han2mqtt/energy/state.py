"""The state file's format: what must survive a restart, as versioned JSON.

Per meter: the last accepted register of every guarded field, each direction's live counter
(register, published value, open hour/day/window with their bases, the registers stamped on
boundaries, and the integration point: the latest power sample's moment, the integral since the
register and the power) and the tariff's month of windows with its closed months' values.  A
restart continues the estimate from the integration point, holding the saved power over the
outage up to the power hold; a longer outage is left to the next register.  Reading and writing
the file is the daemon's business (:mod:`han2mqtt.statefile`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from han2mqtt.energy.counter import Interval, LiveCounter
from han2mqtt.energy.engine import EnergyEngine, EnergyParameters
from han2mqtt.energy.guard import CounterGuard, Register
from han2mqtt.energy.tariff import CapacityTariff, Peak
from han2mqtt.energy.volume import VolumeLedger
from han2mqtt.errors import StateError

__all__ = ["TARIFF_VERSION", "VERSION", "decode_state", "encode_state"]

VERSION: Final = 1
TARIFF_VERSION: Final = 2
"""The tariff part's own format: 2 adds ``months`` (closed months' values, kW, for
``rolling-12``); a part without ``version`` is format 1 and loads with no past months."""


def encode_state(engines: Mapping[str, EnergyEngine]) -> bytes:
    """The state of every meter's engine as JSON."""
    meters = {meter: _engine(engine) for meter, engine in engines.items()}
    return json.dumps({"version": VERSION, "meters": meters}, indent=1).encode()


def decode_state(data: bytes, parameters: EnergyParameters) -> dict[str, EnergyEngine]:
    """Engines restored from :func:`encode_state`'s output.

    Raises:
        StateError: the data is not a state file of this version, or is damaged.
    """
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("version") != VERSION:
            raise StateError("not a han2mqtt state file (version 1)")
        return {
            str(meter): _restore(str(meter), saved, parameters)
            for meter, saved in _mapping(document["meters"]).items()
        }
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise StateError(f"damaged state file: {exc!r}") from exc


# -- encoding ---------------------------------------------------------------------------------


def _engine(engine: EnergyEngine) -> dict[str, Any]:
    tariff = engine.tariff
    return {
        "guards": {
            name: _register(guard.last)
            for name, guard in engine.guards.items()
            if guard.last is not None
        },
        "counters": {name: _counter(counter) for name, counter in engine.counters.items()},
        "ledger": None if engine.ledger is None else engine.ledger.dump(),
        "volume": None if engine.volume is None else engine.volume.dump(),
        "clock": [
            None if engine.latest is None else engine.latest.isoformat(),
            None if engine.clock_offset is None else engine.clock_offset.total_seconds(),
        ],
        "tariff": None
        if tariff is None
        else {
            "version": TARIFF_VERSION,
            "window": tariff.model.window,
            "month": tariff.month,
            "days": {
                day: [[peak.start.isoformat(), peak.energy] for peak in peaks]
                for day, peaks in tariff.days.items()
            },
            "months": dict(tariff.history),
        },
    }


def _register(register: Register | None) -> list[Any] | None:
    return None if register is None else [register.value, register.time.isoformat()]


def _counter(counter: LiveCounter) -> dict[str, Any]:
    return {
        "register": _register(counter.register),
        "live": counter.live,
        "hour": _interval(counter.hour),
        "day": _interval(counter.day),
        "window": _interval(counter.window),
        "marks": [[moment.isoformat(), value] for moment, value in counter.marks.items()],
        "point": _point(counter.point()),
    }


def _point(point: tuple[datetime, float, float | None] | None) -> list[Any] | None:
    if point is None:
        return None
    moment, since_register, power = point
    return [moment.isoformat(), since_register, power]


def _interval(interval: Interval | None) -> list[Any] | None:
    if interval is None:
        return None
    return [interval.start.isoformat(), interval.end.isoformat(), interval.base, interval.value]


# -- decoding ---------------------------------------------------------------------------------


def _restore(meter: str, saved: object, parameters: EnergyParameters) -> EnergyEngine:
    saved = _mapping(saved)
    engine = EnergyEngine(parameters, meter)
    clock = saved.get("clock")  # absent in files written before it was kept
    if clock is not None:
        latest, offset = _list(clock)
        engine.latest = None if latest is None else _time(latest)
        engine.clock_offset = None if offset is None else timedelta(seconds=_float(offset))
    ledger = saved.get("ledger")  # absent in files written before the ledger
    if engine.ledger is not None and ledger is not None:
        engine.ledger.load(_mapping(ledger))
    volume = saved.get("volume")  # a gas or water meter's ledger; absent in older files
    if volume is not None:
        engine.volume = VolumeLedger(meter, parameters.zone, str(_mapping(volume)["kind"]))
        engine.volume.load(_mapping(volume))
    for name, register in _mapping(saved["guards"]).items():
        engine.guards[str(name)] = CounterGuard(
            parameters.max_rate(str(name)), _read_register(register)
        )
    for name, counter in _mapping(saved["counters"]).items():
        if name in engine.counters:
            _restore_counter(engine.counters[name], _mapping(counter))
    tariff = saved.get("tariff")
    if engine.tariff is not None and tariff is not None:
        _restore_tariff(engine.tariff, _mapping(tariff))
    return engine


def _restore_counter(counter: LiveCounter, saved: Mapping[str, Any]) -> None:
    register = saved["register"]
    if register is not None:
        counter.register = _read_register(register)
    live = saved["live"]
    counter.live = None if live is None else _float(live)
    counter.hour = _read_interval(saved["hour"])
    counter.day = _read_interval(saved["day"])
    window = _read_interval(saved["window"])
    minutes = counter.window_minutes
    if window is not None and minutes and window.end - window.start == timedelta(minutes=minutes):
        counter.window = window
    counter.marks = {_time(moment): _float(value) for moment, value in _list(saved["marks"])}
    point = saved.get("point")  # absent in files written before it was kept
    if point is not None:
        moment, since_register, power = _list(point)
        held = None if power is None else _float(power)
        counter.resume(_time(moment), _float(since_register), held)


def _restore_tariff(tariff: CapacityTariff, saved: Mapping[str, Any]) -> None:
    if saved["window"] != tariff.model.window:
        return  # another tariff model: its windows do not compare
    month = saved["month"]
    tariff.month = None if month is None else str(month)
    tariff.days = {
        str(day): [Peak(_time(start), _float(energy)) for start, energy in _list(peaks)]
        for day, peaks in _mapping(saved["days"]).items()
    }
    if saved.get("version", 1) >= TARIFF_VERSION:
        months = _mapping(saved["months"]).items()
        tariff.history = {_month(month): _float(value) for month, value in months}


def _read_register(saved: object) -> Register:
    value, moment = _list(saved)
    return Register(_float(value), _time(moment))


def _read_interval(saved: object) -> Interval | None:
    if saved is None:
        return None
    start, end, base, value = _list(saved)
    return Interval(_time(start), _time(end), None if base is None else _float(base), _float(value))


def _mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, found {type(value).__name__}")
    return value


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, found {type(value).__name__}")
    return value


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, found {type(value).__name__}")
    return float(value)


def _month(value: object) -> str:
    text = str(value)
    if len(text) != len("2026-01") or not 1 <= int(text[5:]) <= 12 or text[4] != "-":
        raise ValueError(f"not a month: {value!r}")
    int(text[:4])
    return text


def _time(value: object) -> datetime:
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"time without offset: {value!r}")
    return moment
