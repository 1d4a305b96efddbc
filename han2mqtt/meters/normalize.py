"""From OBIS-coded values to the normalized reading (field names and units of CONVENTIONS.md).

Every layout (Aidon, Kaifa, Kamstrup, generic OBIS lists, P1 telegrams) ends here with a list of
:class:`ObisValue`.  Values travel as an integer mantissa and a decimal exponent until the one
final conversion, so ``2076 × 10⁻³ A`` becomes ``2.076`` and ``163777250 Wh`` becomes
``163777.25 kWh`` without binary rounding noise (``9.3``, never ``9.300000000000001``).
"""

from __future__ import annotations

from typing import Final, NamedTuple

from han2mqtt import model
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.obis import Obis

__all__ = ["TEXT", "ObisValue", "Quantity", "build_reading", "describe", "field_for", "scale"]


class Quantity(NamedTuple):
    """What a field measures: its kind, normalized unit and the meter units that convert to it."""

    kind: str
    unit: str | None
    exponents: dict[str | None, int]
    """Meter unit → power of ten that turns a value in that unit into the normalized unit."""


_POWER: Final = Quantity("power", "W", {"W": 0, "kW": 3, None: 0})
_REACTIVE_POWER: Final = Quantity("reactive_power", "var", {"var": 0, "kvar": 3, None: 0})
_ENERGY: Final = Quantity("energy", "kWh", {"Wh": -3, "kWh": 0, None: -3})
_REACTIVE_ENERGY: Final = Quantity("reactive_energy", "kvarh", {"varh": -3, "kvarh": 0, None: -3})
_APPARENT_POWER: Final = Quantity("apparent_power", "VA", {"VA": 0, "kVA": 3, None: 0})
_CURRENT: Final = Quantity("current", "A", {"A": 0, None: 0})
_VOLTAGE: Final = Quantity("voltage", "V", {"V": 0, None: 0})
_POWER_FACTOR: Final = Quantity("power_factor", None, {None: 0, "%": -2})
_TEXT: Final = Quantity("text", None, {None: 0})


_TARIFFS: Final = range(1, 11)
"""Tariff registers (value group E): DSMR sends 1 and 2, TIC up to 10 (EASF01…EASF10)."""


def _phase_fields() -> dict[tuple[int, int, int], tuple[str, Quantity]]:
    """Power and energy registers: C = 1..4 total, 21..24 L1, 41..44 L2, 61..64 L3.

    IEC 62056-6-1 value group C: 1/2 active import/export, 3/4 reactive import/export,
    plus 20 per phase.
    """
    names = (
        "active_power_import",
        "active_power_export",
        "reactive_power_import",
        "reactive_power_export",
    )
    table: dict[tuple[int, int, int], tuple[str, Quantity]] = {}
    for offset, suffix in ((0, ""), (20, "_l1"), (40, "_l2"), (60, "_l3")):
        for index, name in enumerate(names):
            reactive = index >= 2
            power = _REACTIVE_POWER if reactive else _POWER
            energy = _REACTIVE_ENERGY if reactive else _ENERGY
            table[(offset + index + 1, 7, 0)] = (name + suffix, power)
            table[(offset + index + 1, 8, 0)] = (f"{name}_total{suffix}", energy)
            if not suffix:
                for tariff in _TARIFFS:
                    table[(index + 1, 8, tariff)] = (f"{name}_total_t{tariff}", energy)
    return table


_FIELDS: Final[dict[tuple[int, int, int], tuple[str, Quantity]]] = {
    (0, 2, 129): (model.FIELD_OBIS_LIST_VER_ID, _TEXT),
    (96, 1, 0): (model.FIELD_METER_ID, _TEXT),
    (0, 0, 5): (model.FIELD_METER_ID, _TEXT),
    (96, 1, 1): (model.FIELD_METER_TYPE, _TEXT),
    (96, 1, 7): (model.FIELD_METER_TYPE, _TEXT),
    (1, 0, 0): (model.FIELD_METER_DATETIME, _TEXT),
    (31, 7, 0): (model.FIELD_CURRENT_L1, _CURRENT),
    (51, 7, 0): (model.FIELD_CURRENT_L2, _CURRENT),
    (71, 7, 0): (model.FIELD_CURRENT_L3, _CURRENT),
    (32, 7, 0): (model.FIELD_VOLTAGE_L1, _VOLTAGE),
    (52, 7, 0): (model.FIELD_VOLTAGE_L2, _VOLTAGE),
    (72, 7, 0): (model.FIELD_VOLTAGE_L3, _VOLTAGE),
    (13, 7, 0): (model.FIELD_POWER_FACTOR, _POWER_FACTOR),
    # Apparent power +S / -S (IEC 62056-6-1 value group C 9 and 10): what TIC sends.
    (9, 7, 0): (model.FIELD_APPARENT_POWER_IMPORT, _APPARENT_POWER),
    (10, 7, 0): (model.FIELD_APPARENT_POWER_EXPORT, _APPARENT_POWER),
    (33, 7, 0): (model.FIELD_POWER_FACTOR_L1, _POWER_FACTOR),
    (53, 7, 0): (model.FIELD_POWER_FACTOR_L2, _POWER_FACTOR),
    (73, 7, 0): (model.FIELD_POWER_FACTOR_L3, _POWER_FACTOR),
    **_phase_fields(),
}
"""OBIS groups C.D.E → normalized field.  A and B are ignored: Kamstrup sends B = 1, others 0."""


def field_for(obis: Obis) -> tuple[str, Quantity] | None:
    """Return the normalized field an OBIS code feeds, with its quantity, or None."""
    return describe(obis)[1]


_DESCRIPTIONS: dict[Obis, tuple[str, tuple[str, Quantity] | None]] = {}
_MAX_DESCRIPTIONS: Final = 4096


def describe(obis: Obis) -> tuple[str, tuple[str, Quantity] | None]:
    """Return the text of an OBIS code and the field it feeds (cached: lists repeat codes)."""
    found = _DESCRIPTIONS.get(obis)
    if found is None:
        if len(_DESCRIPTIONS) >= _MAX_DESCRIPTIONS:
            _DESCRIPTIONS.clear()  # bounded: codes come from checksummed frames, but still
        found = _DESCRIPTIONS[obis] = (str(obis), _FIELDS.get((obis.c, obis.d, obis.e)))
    return found


class ObisValue(NamedTuple):
    """One value of a frame, before normalization.

    Attributes:
        obis: the object's OBIS code.
        value: an integer mantissa (scaled by ``exponent``), a float, or text.
        exponent: power of ten to apply to an integer or float value (the COSEM scaler).
        unit: the unit symbol of the scaled value as the meter means it (``"W"``, ``"Wh"``,
            ``"kWh"``), or None when the meter does not say.
    """

    obis: Obis
    value: int | float | str
    exponent: int = 0
    unit: str | None = None


def scale(value: float, exponent: int) -> FieldValue:
    """Return ``value × 10^exponent``, exactly where the result is a whole number.

    Division by a power of ten (rather than multiplication by ``0.1``) gives the double nearest to
    the decimal result, which prints as the decimal (``93 / 10`` is ``9.3``).
    """
    if exponent >= 0:
        return value * int(10**exponent)
    return value / int(10**-exponent)


TEXT: Final = _TEXT
"""The quantity of text fields (meter id, type, list id, date-time)."""


def build_reading(
    values: list[ObisValue],
    *,
    layout: str,
    extra: dict[str, FieldValue] | None = None,
    overrides: dict[tuple[int, int, int], tuple[str, Quantity] | None] | None = None,
    map_fields: bool = True,
) -> MeterReading:
    """Normalize OBIS-coded values into a :class:`MeterReading`.

    Args:
        values: the frame's values in frame order.
        layout: name of the layout that produced them.
        extra: normalized fields known from outside the OBIS list (manufacturer, a date-time from
            the APDU header); fields from the list win over them.
        overrides: field meanings that differ from the NEK lists' for this layout (C.D.E → field;
            DSMR's 0-0:96.1.1 is the equipment identifier, not the meter type).
        map_fields: False to keep every value under its OBIS code only (sub-devices).
    """
    fields: dict[str, FieldValue] = dict(extra) if extra else {}
    by_obis: dict[str, FieldValue] = {}
    units: dict[str, str] = {}
    field_obis: dict[str, str] = {}
    for item in values:
        code, known = describe(item.obis)
        if overrides is not None:
            known = overrides.get(item.obis.cde, known)
        if not map_fields:
            known = None
        raw = item.value
        if isinstance(raw, str) and known is not None and known[1] is not _TEXT:
            # Text where the object is a number ("(   *kWh)", "N/A"): it cannot be that
            # quantity's value, and a blank or a 0 would corrupt a total_increasing sensor.
            continue
        as_sent = raw if isinstance(raw, str) else scale(raw, item.exponent)
        by_obis[code] = as_sent
        if item.unit:
            units[code] = item.unit
        if known is None:
            continue
        name, quantity = known
        if isinstance(raw, str):
            fields[name] = raw
        else:
            shift = quantity.exponents.get(item.unit)
            if shift is None:
                continue  # a unit we cannot convert: keep it under its OBIS code only
            fields[name] = scale(raw, item.exponent + shift)
        field_obis[name] = code
    return MeterReading(fields, by_obis, units, field_obis, layout)
