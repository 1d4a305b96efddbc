"""P1 telegrams (DSMR and the Nordic/Danish P1 ports) to the same normalized reading.

P1 sends power in kW and energy in kWh; :func:`~han2mqtt.meters.normalize.build_reading` converts
by unit.  DSMR tariff registers (1-0:1.8.1, 1-0:1.8.2) become ``active_power_import_total_t1``/
``_t2``; everything else with a meaning of its own (tariff indicator, gas through M-Bus channel
0-1:24.2.1, power failure log) stays under its OBIS code.
"""

from __future__ import annotations

from typing import Final

from han2mqtt import model
from han2mqtt.meters.normalize import TEXT, ObisValue, Quantity, build_reading
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.p1 import P1Object, P1Telegram, decimal_parts, p1_timestamp, parse_telegram

__all__ = ["decode_telegram"]

MANUFACTURERS: Final = {
    "ELL": "Elster",
    "ISK": "Iskraemeco",
    "KAM": "Kamstrup",
    "KFM": "Kaifa",
    "LGF": "Landis+Gyr",
    "NES": "Networked Energy Services",
    "SAG": "Sagemcom",
    "XMX": "Xemex",
}
"""Manufacturer flags of the identification line (FLAG register), for the meters seen in use."""
_UNITS: Final = {
    "w": "W",
    "kw": "kW",
    "wh": "Wh",
    "kwh": "kWh",
    "var": "var",
    "kvar": "kvar",
    "varh": "varh",
    "kvarh": "kvarh",
    "v": "V",
    "a": "A",
    "m3": "m³",
    "gj": "GJ",
}
_OVERRIDES: Final[dict[tuple[int, int, int], tuple[str, Quantity] | None]] = {
    (96, 1, 1): (model.FIELD_METER_ID, TEXT),  # DSMR equipment identifier
}
_CLOCK: Final = (1, 0, 0)
_IDENTIFIERS: Final = 96
"""Value group C of identifiers and status objects (96.1.1 equipment id, 96.14.0 tariff ...)."""


def _text(value: str) -> str:
    """DSMR sends identifiers hex-encoded (``4B384547...``): decode them when they are."""
    if value and len(value) % 2 == 0 and all(c in "0123456789ABCDEFabcdef" for c in value):
        try:
            decoded = bytes.fromhex(value).decode("ascii")
        except UnicodeDecodeError:
            return value
        if decoded.isprintable():
            return decoded
    return value


def _value(item: P1Object) -> ObisValue | None:
    if not any(text.strip() for text, _ in item.values):
        return None  # "()" or "(   )": nothing sent
    if item.obis.c == _IDENTIFIERS:
        return ObisValue(item.obis, _text(item.values[0][0]))
    numbers = [(text, unit) for text, unit in item.values if decimal_parts(text) is not None]
    if item.obis.cde == _CLOCK or (item.obis.a == 0 and not numbers):
        first = item.values[0][0] if item.values else ""
        stamp = p1_timestamp(first)
        if stamp is not None:
            return ObisValue(item.obis, stamp)
    if numbers:
        text, unit = numbers[-1]
        parts = decimal_parts(text)
        assert parts is not None
        mantissa, exponent = parts
        symbol = _UNITS.get(unit.strip().lower(), unit.strip()) if unit else None
        return ObisValue(item.obis, mantissa, exponent, symbol)
    if len(item.values) == 1:
        return ObisValue(item.obis, _text(item.values[0][0]))
    return ObisValue(item.obis, "".join(f"({text})" for text, _ in item.values))


def decode_telegram(telegram: P1Telegram) -> MeterReading:
    """Decode a P1 telegram into a reading.

    Raises:
        ChecksumError: the CRC does not match.
        FramingError: the telegram has no OBIS line.
    """
    values = [value for item in parse_telegram(telegram) if (value := _value(item)) is not None]
    # Objects of M-Bus channel devices (0-1:..., 0-2:...: gas, water, heat meters) are not the
    # electricity meter's: they are kept under their OBIS codes, never mapped to its fields.
    own = [v for v in values if not (v.obis.a == 0 and v.obis.b != 0)]
    channels = [v for v in values if v.obis.a == 0 and v.obis.b != 0]
    extra: dict[str, FieldValue] = {}
    flag = telegram.manufacturer_flag.upper()
    extra[model.FIELD_METER_MANUFACTURER] = MANUFACTURERS.get(flag, flag)
    reading = build_reading(own, layout="p1", extra=extra, overrides=_OVERRIDES)
    if channels:
        others = build_reading(channels, layout="p1", map_fields=False)
        reading.obis.update(others.obis)
        reading.units.update(others.units)
    return reading
