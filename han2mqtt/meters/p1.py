"""P1 telegrams (DSMR and the Nordic/Danish P1 ports) to the same normalized reading.

P1 sends power in kW and energy in kWh; :func:`~han2mqtt.meters.normalize.build_reading` converts
by unit.  DSMR tariff registers (1-0:1.8.1, 1-0:1.8.2) become ``active_power_import_total_t1``/
``_t2``; everything else with a meaning of its own (tariff indicator, gas through M-Bus channel
0-1:24.2.1, power failure log) stays under its OBIS code.

DSMR 2.2/3.0 meters send the gas reading as the channel's hourly profile ``0-n:24.3.0`` whose
value is on the next line (see :mod:`han2mqtt.protocol.p1`).  It is published under the profile's
code and under the captured object the header names (``0-n:24.2.1``), where DSMR 4+ meters send
it, in the unit the header states: the same topic for the same reading, whatever the DSMR version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from han2mqtt import model
from han2mqtt.meters.normalize import TEXT, ObisValue, Quantity, build_reading
from han2mqtt.meters.submeter import split_channels
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.obis import Obis, parse_obis
from han2mqtt.protocol.p1 import P1Object, P1Telegram, decimal_parts, p1_timestamp, parse_telegram

__all__ = [
    "CLOCK",
    "IDENTIFIERS",
    "MANUFACTURERS",
    "OVERRIDES",
    "PROFILE",
    "ChannelPart",
    "channel_part",
    "decode_telegram",
    "fresh_subs",
    "is_channel",
    "object_values",
    "text_value",
    "unit_symbol",
    "with_channels",
]

MANUFACTURERS: Final = {
    "ELL": "Elster",
    "ISK": "Iskraemeco",
    "KAM": "Kamstrup",
    "KMP": "Kamstrup",
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
OVERRIDES: Final[dict[tuple[int, int, int], tuple[str, Quantity] | None]] = {
    (96, 1, 1): (model.FIELD_METER_ID, TEXT),  # DSMR equipment identifier
}
CLOCK: Final = (1, 0, 0)
PROFILE: Final = (24, 3, 0)
"""DSMR 2.2/3.0 M-Bus channel profile: header line, then the value line(s)."""
_FULL_OBIS: Final = re.compile(r"^\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}(?:[.*]\d{1,3})?$")
_PROFILE_HEADER: Final = 6
"""(capture time)(status)(capture period, min)(number of values)(captured OBIS)(unit)."""
IDENTIFIERS: Final = 96
"""Value group C of identifiers and status objects (96.1.1 equipment id, 96.14.0 tariff ...)."""


def unit_symbol(unit: str | None) -> str | None:
    """The unit symbol of a value's unit as sent (``"kWh"``, ``"m3"`` → ``"m³"``), or None."""
    if not unit:
        return None
    unit = unit.strip()
    return _UNITS.get(unit.lower(), unit)


def text_value(value: str) -> str:
    """DSMR sends identifiers hex-encoded (``4B384547...``): decode them when they are."""
    if value and len(value) % 2 == 0 and all(c in "0123456789ABCDEFabcdef" for c in value):
        try:
            decoded = bytes.fromhex(value).decode("ascii")
        except UnicodeDecodeError:
            return value
        if decoded.isprintable():
            return decoded
    return value


def _profile_values(item: P1Object) -> list[ObisValue]:
    """The reading of a DSMR 2.2/3.0 profile, under its code and the captured object's.

    Only the exact layout is read: six header values, one value announced and one sent, a
    decimal number, a captured object of the same channel.  Anything else publishes nothing,
    never a number of the header.
    """
    header, sent = item.values, item.continuation
    if len(header) != _PROFILE_HEADER or header[3][0].strip().lstrip("0") != "1" or len(sent) != 1:
        return []
    captured = _captured(header[4][0], item.obis)
    parts = decimal_parts(sent[0][0].strip())
    if captured is None or parts is None:
        return []
    unit = (sent[0][1] or header[5][0]).strip()
    symbol = _UNITS.get(unit.lower(), unit) if unit else None
    mantissa, exponent = parts
    values = [ObisValue(item.obis, mantissa, exponent, symbol)]
    if captured != item.obis:
        values.append(ObisValue(captured, mantissa, exponent, symbol))
    return values


def _captured(text: str, profile: Obis) -> Obis | None:
    """The captured object a profile header names, if it is a full code of the same channel."""
    if not _FULL_OBIS.match(text.strip()):
        return None
    try:
        captured = parse_obis(text)
    except ValueError:  # a group above 255
        return None
    return captured if (captured.a, captured.b) == (profile.a, profile.b) else None


def object_values(item: P1Object) -> list[ObisValue]:
    """The values an object line publishes (none, one, or a profile's two), as decoded."""
    if item.obis.cde == PROFILE:
        return _profile_values(item)
    if item.continuation:
        return []  # value lines after an object we know no layout of: their meaning is unknown
    value = _value(item)
    return [] if value is None else [value]


def _value(item: P1Object) -> ObisValue | None:
    if not any(text.strip() for text, _ in item.values):
        return None  # "()" or "(   )": nothing sent
    if item.obis.c == IDENTIFIERS:
        return ObisValue(item.obis, text_value(item.values[0][0]))
    numbers = [(text, unit) for text, unit in item.values if decimal_parts(text) is not None]
    if item.obis.cde == CLOCK or (item.obis.a == 0 and not numbers):
        first = item.values[0][0] if item.values else ""
        stamp = p1_timestamp(first)
        if stamp is not None:
            return ObisValue(item.obis, stamp)
    if numbers:
        text, unit = numbers[-1]
        parts = decimal_parts(text)
        assert parts is not None
        mantissa, exponent = parts
        return ObisValue(item.obis, mantissa, exponent, unit_symbol(unit))
    if len(item.values) == 1:
        return ObisValue(item.obis, text_value(item.values[0][0]))
    return ObisValue(item.obis, "".join(f"({text})" for text, _ in item.values))


def is_channel(obis: Obis) -> bool:
    """True for an object of an M-Bus channel device (``0-1:...``: gas, water, heat meters)."""
    return obis.a == 0 and obis.b != 0


@dataclass(frozen=True, slots=True)
class ChannelPart:
    """What a telegram's M-Bus channel objects add to the electricity meter's reading."""

    obis: tuple[tuple[str, FieldValue], ...]
    units: tuple[tuple[str, str], ...]
    subs: tuple[MeterReading, ...] = ()
    """The devices known on exact evidence: meters of their own (:mod:`.submeter`)."""


def channel_part(items: list[P1Object]) -> ChannelPart:
    """The part of the channel objects ``items`` (``0-n:...``, in telegram order).

    Objects of M-Bus channel devices (gas, water, heat meters) are not the electricity meter's:
    a device known on exact evidence is a meter of its own; the others are kept under their OBIS
    codes, never mapped to the electricity meter's fields.  A pure function of the objects, so
    that a compiled plan may keep it while the channel lines do not change.
    """
    values = [value for item in items for value in object_values(item)]
    subs, taken = split_channels(items, values)
    rest = [value for value in values if value.obis.b not in taken]
    if not rest:
        return ChannelPart((), (), tuple(subs))
    others = build_reading(rest, layout="p1", map_fields=False)
    return ChannelPart(tuple(others.obis.items()), tuple(others.units.items()), tuple(subs))


def fresh_subs(part: ChannelPart) -> list[MeterReading]:
    """The part's sub-meter readings with dicts of their own (a plan reuses one part)."""
    return [
        MeterReading(dict(s.fields), dict(s.obis), dict(s.units), dict(s.field_obis), s.layout)
        for s in part.subs
    ]


def with_channels(reading: MeterReading, part: ChannelPart) -> MeterReading:
    """The reading of the meter's own objects completed with its channels' part."""
    reading.obis.update(part.obis)
    reading.units.update(part.units)
    return replace(reading, sub_readings=fresh_subs(part)) if part.subs else reading


def decode_telegram(telegram: P1Telegram) -> MeterReading:
    """Decode a P1 telegram into a reading.

    Raises:
        ChecksumError: the CRC does not match.
        FramingError: the telegram has no OBIS line.
    """
    items = parse_telegram(telegram)
    own = [value for item in items if not is_channel(item.obis) for value in object_values(item)]
    extra: dict[str, FieldValue] = {}
    flag = telegram.manufacturer_flag.upper()
    extra[model.FIELD_METER_MANUFACTURER] = MANUFACTURERS.get(flag, flag)
    reading = build_reading(own, layout="p1", extra=extra, overrides=OVERRIDES)
    return with_channels(reading, channel_part([i for i in items if is_channel(i.obis)]))
