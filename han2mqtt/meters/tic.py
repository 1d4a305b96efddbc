"""TIC frames (Linky and the electronic meters before it) to the normalized reading.

Labels whose meaning is exactly an OBIS quantity are carried under that code (so topics, Home
Assistant classes and unique ids work as for every other meter): energy registers in Wh become
kWh, ``PAPP``/``SINSTS``/``SINSTI`` are *apparent* power (1-0:9.7.0 / 1-0:10.7.0, VA) and never
fill ``active_power_*``.  Tariff registers are numbered in the order Enedis-NOI-CPT_54E lists them
(CONVENTIONS.md, "Linky TIC").  Labels with no exact meaning there (subscribed current, tariff
option, peak power of the day...) are not published.

A frame without its meter id (ADCO or ADSC, e.g. its group had a bad checksum) is not a reading.
"""

from __future__ import annotations

from typing import Final

from han2mqtt import model
from han2mqtt.errors import LayoutError
from han2mqtt.meters.normalize import TEXT, ObisValue, Quantity, build_reading, scale
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.obis import parse_obis
from han2mqtt.protocol.tic import TicFrame, TicGroup, TicMode, horodate_iso

__all__ = ["FIELD_CURRENT_TARIFF", "decode_tic_frame", "status_fields"]

FIELD_CURRENT_TARIFF: Final = "current_tariff"
"""The tariff period now (PTEC without its dots: ``HP``, ``HCJB``; LTARF: ``HEURE CREUSE``)."""
FIELD_TEMPO_TODAY: Final = "tempo_today"
FIELD_TEMPO_TOMORROW: Final = "tempo_tomorrow"
FIELD_BREAKER: Final = "breaker"
FIELD_DRY_CONTACT: Final = "dry_contact"
FIELD_TARIFF_INDEX: Final = "current_tariff_index"
FIELD_DISTRIBUTOR: Final = "active_power_import_total_distributor_t"
"""EASD01…04 become ``active_power_import_total_distributor_t1…t4`` (kWh)."""
METER_ID_LABELS: Final = ("ADCO", "ADSC")

_REGISTERS: Final[dict[str, str]] = {
    # Historique mode registers, in Wh: Enedis-NOI-CPT_54E and Enedis-NOI-CPT_02E.
    "BASE": "1-0:1.8.0.255",
    "HCHC": "1-0:1.8.1.255",
    "HCHP": "1-0:1.8.2.255",
    "EJPHN": "1-0:1.8.1.255",
    "EJPHPM": "1-0:1.8.2.255",
    **{
        label: f"1-0:1.8.{index}.255"
        for index, label in enumerate(
            ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"), start=1
        )
    },
    # Standard mode registers, in Wh: Enedis-NOI-CPT_54E.
    "EAST": "1-0:1.8.0.255",
    **{f"EASF{index:02d}": f"1-0:1.8.{index}.255" for index in range(1, 11)},
    "EAIT": "1-0:2.8.0.255",
}
"""Energy registers (Wh) → the OBIS register of the same meaning."""
_REACTIVE: Final[dict[str, str]] = {f"ERQ{q}": f"1-0:{4 + q}.8.0.255" for q in (1, 2, 3, 4)}
"""Reactive energy per quadrant (varh): OBIS 5.8.0 … 8.8.0, kept under their codes only."""
_INSTANT: Final[dict[str, tuple[str, str]]] = {
    "IINST": ("1-0:31.7.0.255", "A"),
    "IINST1": ("1-0:31.7.0.255", "A"),
    "IINST2": ("1-0:51.7.0.255", "A"),
    "IINST3": ("1-0:71.7.0.255", "A"),
    "IRMS1": ("1-0:31.7.0.255", "A"),
    "IRMS2": ("1-0:51.7.0.255", "A"),
    "IRMS3": ("1-0:71.7.0.255", "A"),
    "URMS1": ("1-0:32.7.0.255", "V"),
    "URMS2": ("1-0:52.7.0.255", "V"),
    "URMS3": ("1-0:72.7.0.255", "V"),
    "PAPP": ("1-0:9.7.0.255", "VA"),
    "SINSTS": ("1-0:9.7.0.255", "VA"),
    "SINSTI": ("1-0:10.7.0.255", "VA"),
    "SINSTS1": ("1-0:29.7.0.255", "VA"),
    "SINSTS2": ("1-0:49.7.0.255", "VA"),
    "SINSTS3": ("1-0:69.7.0.255", "VA"),
}
"""Instantaneous values → OBIS code and unit."""
_METER_ID: Final = parse_obis("0-0:96.1.0.255")
_COLOURS: Final = {1: "blue", 2: "white", 3: "red"}
"""STGE colour codes (bits 24-25 today, 26-27 tomorrow); 0 is "no announcement"."""
_DEMAIN: Final = {"BLEU": "blue", "BLAN": "white", "ROUG": "red"}
"""Historique DEMAIN; ``----`` (not known yet) gives nothing."""
_PTEC_COLOURS: Final = {"B": "blue", "W": "white", "R": "red"}
_BREAKER: Final = {
    0: "closed",
    1: "open_overpower",
    2: "open_overvoltage",
    3: "open_load_shedding",
    4: "open_command",
    5: "open_overheating_overcurrent",
    6: "open_overheating",
}
"""STGE bits 1-3, "organe de coupure" (Enedis-NOI-CPT_54E, registre de statuts)."""
_STGE_DIGITS: Final = 8


def _number(group: TicGroup) -> int | None:
    value = group.value.strip()
    return int(value) if value.isdigit() else None


_OBIS: Final = {
    label: parse_obis(code)
    for label, code in {**_REGISTERS, **_REACTIVE, **{k: v[0] for k, v in _INSTANT.items()}}.items()
}
"""Each label's OBIS code, parsed once."""


def _values(frame: TicFrame) -> list[ObisValue]:
    values: list[ObisValue] = []
    for group in frame.groups:
        if group.label in METER_ID_LABELS:
            values.append(ObisValue(_METER_ID, group.value.strip()))
            continue
        number = _number(group)
        if number is None:
            continue  # a register or measurement that is not a number is no value
        if group.label in _REGISTERS:
            values.append(ObisValue(_OBIS[group.label], number, 0, "Wh"))
        elif group.label in _REACTIVE:
            values.append(ObisValue(_OBIS[group.label], number, 0, "varh"))
        elif group.label in _INSTANT:
            values.append(ObisValue(_OBIS[group.label], number, 0, _INSTANT[group.label][1]))
    return values


def status_fields(stge: str) -> dict[str, FieldValue]:
    """The parts of the standard mode's status register (STGE, 8 hex digits) that are certain."""
    if len(stge) != _STGE_DIGITS or any(c not in "0123456789ABCDEFabcdef" for c in stge):
        return {}
    bits = int(stge, 16)
    fields: dict[str, FieldValue] = {FIELD_DRY_CONTACT: "open" if bits & 1 else "closed"}
    breaker = _BREAKER.get((bits >> 1) & 0b111)
    if breaker is not None:
        fields[FIELD_BREAKER] = breaker
    for name, shift in ((FIELD_TEMPO_TODAY, 24), (FIELD_TEMPO_TOMORROW, 26)):
        colour = _COLOURS.get((bits >> shift) & 0b11)
        if colour is not None:
            fields[name] = colour
    return fields


def _distributor_registers(frame: TicFrame) -> dict[str, FieldValue]:
    """EASD01…EASD04, the distributor's registers (Wh): no OBIS code has their meaning."""
    fields: dict[str, FieldValue] = {}
    for index in range(1, 5):
        value = (frame.value(f"EASD{index:02d}") or "").strip()
        if value.isdigit():
            fields[f"{FIELD_DISTRIBUTOR}{index}"] = scale(int(value), -3)
    return fields


def _text_fields(frame: TicFrame) -> dict[str, FieldValue]:
    fields: dict[str, FieldValue] = _distributor_registers(frame)
    ptec = frame.value("PTEC")
    if ptec is not None and ptec.strip("."):
        period = ptec.strip(".")
        fields[FIELD_CURRENT_TARIFF] = period
        if len(period) == 4 and period[:3] in ("HCJ", "HPJ") and period[3] in _PTEC_COLOURS:
            fields[FIELD_TEMPO_TODAY] = _PTEC_COLOURS[period[3]]
    demain = _DEMAIN.get((frame.value("DEMAIN") or "").strip())
    if demain is not None:
        fields[FIELD_TEMPO_TOMORROW] = demain
    ltarf = frame.value("LTARF")
    if ltarf is not None and ltarf.strip():
        fields[FIELD_CURRENT_TARIFF] = " ".join(ltarf.split())
    ntarf = frame.value("NTARF")
    if ntarf is not None and ntarf.strip().isdigit():
        fields[FIELD_TARIFF_INDEX] = int(ntarf)
    stge = frame.value("STGE")
    if stge is not None:
        fields.update(status_fields(stge.strip()))
    return fields


def _meter_datetime(frame: TicFrame) -> dict[str, FieldValue]:
    for group in frame.groups:
        if group.label == "DATE" and group.horodate is not None:
            stamp = horodate_iso(group.horodate)
            return {} if stamp is None else {model.FIELD_METER_DATETIME: stamp}
    return {}


def decode_tic_frame(frame: TicFrame) -> MeterReading:
    """Decode the good groups of a TIC frame into a reading.

    Raises:
        LayoutError: the frame has no meter id (ADCO/ADSC) among its good groups.
    """
    if not any(group.label in METER_ID_LABELS for group in frame.groups):
        raise LayoutError(
            f"TIC frame without a meter id (ADCO/ADSC): {len(frame.groups)} good groups, "
            f"{frame.bad_groups} with a bad checksum"
        )
    extra = {**_text_fields(frame), **_meter_datetime(frame)}
    layout = "tic-standard" if frame.mode is TicMode.STANDARD else "tic-historique"
    overrides: dict[tuple[int, int, int], tuple[str, Quantity] | None] = {
        _METER_ID.cde: (model.FIELD_METER_ID, TEXT)
    }
    return build_reading(_values(frame), layout=layout, extra=extra, overrides=overrides)
