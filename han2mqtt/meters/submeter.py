"""M-Bus devices behind a P1 port (gas, water, heat, cooling) as meters of their own.

A DSMR 4/5 telegram carries, per M-Bus channel *n* (value group B of ``0-n:…``), the device type
(``0-n:24.1.0``), the equipment identifier (``0-n:96.1.0``; Fluvius e-MUCS: ``0-n:96.1.1``) and
the last reading with the moment it was captured (``0-n:24.2.1(capture time)(value*unit)``;
Fluvius sends gas as ``0-n:24.2.3``).  DSMR 2.2/3.0 sends the reading as the channel's profile
``0-n:24.3.0`` (see :mod:`han2mqtt.meters.p1`).

A channel becomes a sub-meter only on exact evidence: a device type this module knows, a
non-empty equipment identifier, and a reading in a unit that fits the type.  Anything else (an
unknown or missing type, an empty identifier such as ``0-1:96.1.0()`` beside a placeholder reading,
a unit that does not fit) stays on the electricity meter under its OBIS codes, as before.

Device types are M-Bus medium codes (EN 13757-3, table "Device type"; DSMR 5.0.2 §7.3.9 lists
gas 003, thermal 004, water 007), sent in decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from han2mqtt import model
from han2mqtt.meters.normalize import ObisValue, build_reading, scale
from han2mqtt.model import MeterReading
from han2mqtt.protocol.obis import Obis
from han2mqtt.protocol.p1 import P1Object, decimal_parts, p1_timestamp

__all__ = ["SUB_METER_FIELDS", "SubMeterKind", "kind_of", "split_channels"]


@dataclass(frozen=True, slots=True)
class SubMeterKind:
    """What an M-Bus device type means here: its name, its field and the units it may have."""

    name: str
    field: str
    units: frozenset[str]


_GAS: Final = SubMeterKind("gas", "gas_total", frozenset({"m³"}))
_WATER: Final = SubMeterKind("water", "water_total", frozenset({"m³"}))
_HEAT: Final = SubMeterKind("heat", "heat_total", frozenset({"GJ", "kWh", "MWh"}))
_COOLING: Final = SubMeterKind("cooling", "cooling_total", frozenset({"GJ", "kWh", "MWh"}))
KINDS: Final = {
    0x03: _GAS,
    0x04: _HEAT,  # heat, volume measured at the return (outlet)
    0x0C: _HEAT,  # heat, volume measured at the flow (inlet)
    0x06: _WATER,  # warm water (30-90 °C)
    0x07: _WATER,
    0x15: _WATER,  # hot water (>= 90 °C)
    0x16: _WATER,  # cold water
    0x0A: _COOLING,  # cooling, volume at the outlet
    0x0B: _COOLING,  # cooling, volume at the inlet
}
"""M-Bus device types (EN 13757-3) with one meaning here; 0x0D (heat *or* cooling) is not one."""
SUB_METER_FIELDS: Final = frozenset(kind.field for kind in KINDS.values())

_DEVICE_TYPE: Final = (24, 1, 0)
_EQUIPMENT_IDS: Final = ((96, 1, 0), (96, 1, 1))
_READINGS: Final = ((24, 2, 1), (24, 2, 3))
"""DSMR 4/5's reading (24.2.1) and Fluvius's not temperature-corrected gas reading (24.2.3)."""
_PROFILE: Final = (24, 3, 0)
_UNITS: Final = {"m3": "m³", "gj": "GJ", "kwh": "kWh", "mwh": "MWh"}


def kind_of(device_type: str) -> SubMeterKind | None:
    """The kind an M-Bus device type (``"003"``) names, or None when it names none we know."""
    text = device_type.strip()
    if not text.isdigit() or len(text) > 3:
        return None
    return KINDS.get(int(text))


def split_channels(
    items: list[P1Object], values: list[ObisValue]
) -> tuple[list[MeterReading], set[int]]:
    """The sub-meters among a telegram's objects, and the channels (B) they took.

    Args:
        items: the telegram's objects, in order.
        values: the values the telegram's objects became (:mod:`han2mqtt.meters.p1`), with
            identifiers hex-decoded: a sub-meter keeps its channel's values under their codes.
    """
    channels: dict[int, list[P1Object]] = {}
    for item in items:
        if item.obis.a == 0 and item.obis.b != 0:
            channels.setdefault(item.obis.b, []).append(item)
    readings = []
    taken = set()
    for channel, objects in channels.items():
        own = [value for value in values if value.obis.a == 0 and value.obis.b == channel]
        reading = _sub_meter(objects, own)
        if reading is not None:
            readings.append(reading)
            taken.add(channel)
    return readings, taken


def _sub_meter(objects: list[P1Object], values: list[ObisValue]) -> MeterReading | None:
    by_cde = {item.obis.cde: item for item in objects}
    device = by_cde.get(_DEVICE_TYPE)
    kind = kind_of(device.values[0][0]) if device is not None and device.values else None
    texts = {value.obis.cde: value.value for value in values if isinstance(value.value, str)}
    ids = [str(texts.get(cde, "")).strip() for cde in _EQUIPMENT_IDS]
    identifier = next((text for text in ids if text), "")
    found = _reading(by_cde)
    if kind is None or not identifier or found is None:
        return None
    stamp, value = found
    if value.unit not in kind.units:
        return None
    reading = build_reading(values, layout="p1-mbus", map_fields=False)
    code = str(value.obis)
    sent = reading.obis.get(code)
    number = value.value
    if isinstance(number, str) or sent != scale(number, value.exponent):
        return None  # the telegram's value of that object is not the reading read here
    if reading.units.get(code) != value.unit:
        return None  # the telegram's value of that object is not the reading read here
    reading.fields.update(
        {model.FIELD_METER_ID: identifier, model.FIELD_METER_TYPE: kind.name, kind.field: sent}
    )
    if stamp is not None:
        reading.fields[model.FIELD_METER_DATETIME] = stamp
    reading.field_obis[kind.field] = code
    return reading


def _reading(by_cde: dict[tuple[int, int, int], P1Object]) -> tuple[str | None, ObisValue] | None:
    """(capture time, value) of the channel's reading, if it is sent in the exact layout."""
    for cde in _READINGS:
        item = by_cde.get(cde)
        if item is not None and len(item.values) == 2 and not item.continuation:
            (stamp_text, _), (number, unit) = item.values
            value = _value(item.obis, number, unit)
            return None if value is None else (p1_timestamp(stamp_text.strip()), value)
    profile = by_cde.get(_PROFILE)
    if profile is not None and len(profile.values) == 6 and len(profile.continuation) == 1:
        header = profile.values
        if header[3][0].strip().lstrip("0") != "1":
            return None
        number, unit = profile.continuation[0]
        captured = Obis(profile.obis.a, profile.obis.b, 24, 2, 1, 255)
        value = _value(captured, number, unit or header[5][0])
        return None if value is None else (p1_timestamp(header[0][0].strip()), value)
    return None


def _value(obis: Obis, number: str, unit: str | None) -> ObisValue | None:
    parts = decimal_parts(number.strip())
    if parts is None or not unit:
        return None
    symbol = _UNITS.get(unit.strip().lower())
    if symbol is None:
        return None
    mantissa, exponent = parts
    return ObisValue(obis, mantissa, exponent, symbol)
