"""The normalized reading: field names (the ``amshan`` names users already rely on) and its type.

A :class:`MeterReading` is what the decoding core hands to everything above it.  ``fields`` is the
normalized dictionary described in CONVENTIONS.md (power W, reactive power var, current A,
voltage V, energy kWh, reactive energy kvarh, power factor 0..1, ``meter_datetime`` ISO 8601);
``obis`` keeps every value the frame carried under its OBIS code, including codes we have no name
for, so that nothing a meter sends is lost on the way to MQTT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "FIELD_ACTIVE_POWER_EXPORT",
    "FIELD_ACTIVE_POWER_EXPORT_L1",
    "FIELD_ACTIVE_POWER_EXPORT_L2",
    "FIELD_ACTIVE_POWER_EXPORT_L3",
    "FIELD_ACTIVE_POWER_EXPORT_TOTAL",
    "FIELD_ACTIVE_POWER_IMPORT",
    "FIELD_ACTIVE_POWER_IMPORT_L1",
    "FIELD_ACTIVE_POWER_IMPORT_L2",
    "FIELD_ACTIVE_POWER_IMPORT_L3",
    "FIELD_ACTIVE_POWER_IMPORT_TOTAL",
    "FIELD_APPARENT_POWER_EXPORT",
    "FIELD_APPARENT_POWER_IMPORT",
    "FIELD_CURRENT_L1",
    "FIELD_CURRENT_L2",
    "FIELD_CURRENT_L3",
    "FIELD_METER_DATETIME",
    "FIELD_METER_ID",
    "FIELD_METER_MANUFACTURER",
    "FIELD_METER_TYPE",
    "FIELD_OBIS_LIST_VER_ID",
    "FIELD_POWER_FACTOR",
    "FIELD_POWER_FACTOR_L1",
    "FIELD_POWER_FACTOR_L2",
    "FIELD_POWER_FACTOR_L3",
    "FIELD_REACTIVE_POWER_EXPORT",
    "FIELD_REACTIVE_POWER_EXPORT_L1",
    "FIELD_REACTIVE_POWER_EXPORT_L2",
    "FIELD_REACTIVE_POWER_EXPORT_L3",
    "FIELD_REACTIVE_POWER_EXPORT_TOTAL",
    "FIELD_REACTIVE_POWER_IMPORT",
    "FIELD_REACTIVE_POWER_IMPORT_L1",
    "FIELD_REACTIVE_POWER_IMPORT_L2",
    "FIELD_REACTIVE_POWER_IMPORT_L3",
    "FIELD_REACTIVE_POWER_IMPORT_TOTAL",
    "FIELD_VOLTAGE_L1",
    "FIELD_VOLTAGE_L2",
    "FIELD_VOLTAGE_L3",
    "FieldValue",
    "MeterReading",
]

FieldValue = int | float | str

FIELD_OBIS_LIST_VER_ID: Final = "list_ver_id"
FIELD_METER_ID: Final = "meter_id"
FIELD_METER_TYPE: Final = "meter_type"
FIELD_METER_MANUFACTURER: Final = "meter_manufacturer"
FIELD_METER_DATETIME: Final = "meter_datetime"
FIELD_ACTIVE_POWER_IMPORT: Final = "active_power_import"
FIELD_ACTIVE_POWER_IMPORT_L1: Final = "active_power_import_l1"
FIELD_ACTIVE_POWER_IMPORT_L2: Final = "active_power_import_l2"
FIELD_ACTIVE_POWER_IMPORT_L3: Final = "active_power_import_l3"
FIELD_ACTIVE_POWER_EXPORT: Final = "active_power_export"
FIELD_ACTIVE_POWER_EXPORT_L1: Final = "active_power_export_l1"
FIELD_ACTIVE_POWER_EXPORT_L2: Final = "active_power_export_l2"
FIELD_ACTIVE_POWER_EXPORT_L3: Final = "active_power_export_l3"
FIELD_REACTIVE_POWER_IMPORT: Final = "reactive_power_import"
FIELD_REACTIVE_POWER_IMPORT_L1: Final = "reactive_power_import_l1"
FIELD_REACTIVE_POWER_IMPORT_L2: Final = "reactive_power_import_l2"
FIELD_REACTIVE_POWER_IMPORT_L3: Final = "reactive_power_import_l3"
FIELD_REACTIVE_POWER_EXPORT: Final = "reactive_power_export"
FIELD_REACTIVE_POWER_EXPORT_L1: Final = "reactive_power_export_l1"
FIELD_REACTIVE_POWER_EXPORT_L2: Final = "reactive_power_export_l2"
FIELD_REACTIVE_POWER_EXPORT_L3: Final = "reactive_power_export_l3"
FIELD_APPARENT_POWER_IMPORT: Final = "apparent_power_import"
"""VA: TIC's only power (PAPP, SINSTS); never an active power."""
FIELD_APPARENT_POWER_EXPORT: Final = "apparent_power_export"
FIELD_CURRENT_L1: Final = "current_l1"
FIELD_CURRENT_L2: Final = "current_l2"
FIELD_CURRENT_L3: Final = "current_l3"
FIELD_VOLTAGE_L1: Final = "voltage_l1"
FIELD_VOLTAGE_L2: Final = "voltage_l2"
FIELD_VOLTAGE_L3: Final = "voltage_l3"
FIELD_POWER_FACTOR: Final = "power_factor"
FIELD_POWER_FACTOR_L1: Final = "power_factor_l1"
FIELD_POWER_FACTOR_L2: Final = "power_factor_l2"
FIELD_POWER_FACTOR_L3: Final = "power_factor_l3"
FIELD_ACTIVE_POWER_IMPORT_TOTAL: Final = "active_power_import_total"
FIELD_ACTIVE_POWER_EXPORT_TOTAL: Final = "active_power_export_total"
FIELD_REACTIVE_POWER_IMPORT_TOTAL: Final = "reactive_power_import_total"
FIELD_REACTIVE_POWER_EXPORT_TOTAL: Final = "reactive_power_export_total"


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One decoded frame (or telegram): normalized fields plus every value by OBIS code.

    Attributes:
        fields: normalized field name -> value, in the units of CONVENTIONS.md.  A value the frame
            does not carry is absent, never 0.
        obis: OBIS code (``"1-0:1.7.0.255"``) -> value as sent, scaled by the meter's scaler but in
            the meter's unit (W, Wh, V, A ...); unknown vendor objects are kept too.
        units: OBIS code -> unit symbol of the value in ``obis`` (``"W"``, ``"Wh"``), where known.
        field_obis: normalized field name -> the OBIS code it came from.
        layout: name of the layout that decoded it (``"aidon"``, ``"kaifa"``, ``"kamstrup"``,
            ``"generic"``, ``"p1"``; ``"p1-mbus"`` for a sub-meter).
        sub_readings: readings of the M-Bus devices behind this meter's P1 port (gas, water,
            heat), each a meter of its own with its equipment id as ``meter_id``.
        parent: for a sub-reading, the id of the meter it was read through (set by the bridge).
        unscaled: OBIS codes in ``obis`` whose number is raw as sent because no source states
            its scaling (self-describing lists without scaler-units): they feed no field.
    """

    fields: dict[str, FieldValue]
    obis: dict[str, FieldValue] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    field_obis: dict[str, str] = field(default_factory=dict)
    layout: str = "generic"
    sub_readings: list[MeterReading] = field(default_factory=list)
    parent: str | None = None
    unscaled: tuple[str, ...] = ()

    @property
    def meter_id(self) -> str | None:
        """The meter's serial number, when this frame carries it (list 2/3)."""
        value = self.fields.get(FIELD_METER_ID)
        return None if value is None else str(value)

    def as_dict(self) -> dict[str, FieldValue]:
        """Return a copy of the normalized dictionary (the ``amshan``-compatible result)."""
        return dict(self.fields)
