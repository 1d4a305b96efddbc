"""Turn a data-notification body into a reading: find the OBIS values, recognise the vendor.

Three shapes cover every plaintext push list we know of:

1. OBIS/value(/scaler-unit) structures in an array (Aidon, Landis+Gyr, Iskra, Sagemcom ...).
2. A flat structure of alternating OBIS code and value, with loose values in between (Kamstrup,
   Swedish Kaifa, Austrian Sagemcom), possibly with null-data padding.
3. A structure of bare values in a fixed order (Norwegian Kaifa lists 1-3).

:func:`extract` walks the value tree once and yields shapes 1 and 2 uniformly; shape 3 is read with
the vendor's positional table.  The vendor is recognised from the list version identifier or the
meter number in the frame itself, every frame anew: a frame never inherits the layout of the frame
before it.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from han2mqtt import model
from han2mqtt.errors import LayoutError
from han2mqtt.meters import aidon, kaifa, kamstrup
from han2mqtt.meters.normalize import ObisValue, build_reading, field_for
from han2mqtt.meters.profile import VendorProfile
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.apdu import DataNotification, decode_data_notification, strip_llc
from han2mqtt.protocol.axdr import AxdrValue
from han2mqtt.protocol.cosem import CosemDate, CosemDateTime, CosemTime, unit_symbol
from han2mqtt.protocol.obis import OBIS_LENGTH, Obis

__all__ = [
    "GENERIC",
    "PROFILES",
    "Extracted",
    "decode_content",
    "decode_notification",
    "extract",
    "profile_named",
]

LANDIS_GYR = VendorProfile(name="landisgyr", manufacturer="Landis+Gyr", list_ids=("EMBRIQ_",))
GENERIC = VendorProfile(name="generic", manufacturer="")
PROFILES: Final = (aidon.PROFILE, kaifa.PROFILE, kamstrup.PROFILE, LANDIS_GYR)
"""Known vendors, in the order they are tried."""
LIST_ID_OBIS: Final = Obis(1, 1, 0, 2, 129, 255)
"""OBIS code NEK lists give the list version identifier (Kamstrup sends it without the code)."""
_DATE_TIME_OCTETS: Final = 12
_SCALER_UNIT_SIZE: Final = 2


class _Item(NamedTuple):
    obis: Obis
    value: AxdrValue
    scaler_unit: tuple[int, int] | None


class Extracted(NamedTuple):
    """OBIS-coded items of a body, and the values that came without an OBIS code."""

    items: list[_Item]
    loose: list[AxdrValue]


def _obis(value: AxdrValue) -> Obis | None:
    if isinstance(value, bytes) and len(value) == OBIS_LENGTH:
        return Obis(*value)
    return None


def _scaler_unit(value: AxdrValue) -> tuple[int, int] | None:
    if (
        isinstance(value, tuple)
        and len(value) == _SCALER_UNIT_SIZE
        and isinstance(value[0], int)
        and isinstance(value[1], int)
    ):
        return value[0], value[1]
    return None


def extract(body: AxdrValue) -> Extracted:
    """Collect (OBIS, value, scaler-unit) items and loose values from a notification body."""
    result = Extracted([], [])
    _walk(body, result, 0)
    return result


def _walk(node: AxdrValue, out: Extracted, depth: int) -> None:
    if not isinstance(node, list | tuple):
        if node is not None:
            out.loose.append(node)
        return
    index, count = 0, len(node)
    while index < count:
        element = node[index]
        obis = _obis(element)
        value = node[index + 1] if index + 1 < count else None
        if obis is not None and index + 1 < count and not isinstance(value, list | tuple):
            scaler_unit = _scaler_unit(node[index + 2]) if index + 2 < count else None
            out.items.append(_Item(obis, value, scaler_unit))
            index += 3 if scaler_unit is not None else 2
            continue
        _walk(element, out, depth + 1)
        index += 1


def _text(value: AxdrValue) -> str | None:
    """Octet/visible strings that hold text (meter ids pad with NULs or spaces)."""
    if isinstance(value, str):
        return value.rstrip("\x00 ")
    if isinstance(value, bytes):
        stripped = value.rstrip(b"\x00 ")
        if stripped and all(0x20 <= byte < 0x7F for byte in stripped):
            return stripped.decode("ascii")
    return None


def _identify(extracted: Extracted) -> VendorProfile | None:
    texts = [_text(value) for value in extracted.loose[:1]]
    texts += [_text(item.value) for item in extracted.items if item.obis.cde == (0, 2, 129)]
    for text in texts:
        if text:
            for profile in PROFILES:
                if profile.matches_list_id(text):
                    return profile
    for item in extracted.items:
        known = field_for(item.obis)
        text = _text(item.value)
        if known and known[0] == model.FIELD_METER_ID and text:
            for profile in PROFILES:
                if profile.matches_meter_id(text):
                    return profile
    return None


def _choose_profile(
    body: AxdrValue, extracted: Extracted, forced: VendorProfile | None
) -> VendorProfile:
    found = _identify(extracted)
    if found is None and not extracted.items and _is_kaifa_list1(extracted):
        found = kaifa.PROFILE
    if found is None and _is_array_of_structures(body):
        found = aidon.PROFILE
    if forced is not None and forced is not GENERIC:
        if found is not None and found is not forced:
            raise LayoutError(
                f"frame is a {found.manufacturer} list but the meter type is set to {forced.name}"
            )
        return forced
    return found or GENERIC


def _is_array_of_structures(body: AxdrValue) -> bool:
    """The NEK Aidon shape: an array of (OBIS, value, scaler-unit) structures.

    Aidon list 1 carries nothing else to recognise it by.  (The Landis+Gyr E350 list copies the
    shape but names itself "EMBRIQ_..." in list 2.)
    """
    return isinstance(body, list) and bool(body) and all(isinstance(x, tuple) for x in body)


def _is_kaifa_list1(extracted: Extracted) -> bool:
    """Kaifa's list 1 is a structure of one bare integer: nobody else sends that."""
    return len(extracted.loose) == 1 and isinstance(extracted.loose[0], int)


def _positional(extracted: Extracted, profile: VendorProfile) -> list[_Item]:
    codes = profile.positional.get(len(extracted.loose))
    if codes is None:
        raise LayoutError(
            f"{len(extracted.loose)} values without OBIS codes match no "
            f"{profile.manufacturer or 'known'} list layout"
        )
    return [_Item(code, value, None) for code, value in zip(codes, extracted.loose, strict=True)]


def _convert(item: _Item, profile: VendorProfile) -> ObisValue | None:
    """Make an ObisValue of an A-XDR value, with the scaler sent or the one the vendor implies."""
    value = item.value
    if isinstance(value, CosemDateTime):
        text = value.isoformat(use_deviation=profile.trust_clock_deviation)
        return None if text is None else ObisValue(item.obis, text)
    if isinstance(value, bytes):
        return _convert_octets(item.obis, value, profile)
    if isinstance(value, str):
        return ObisValue(item.obis, value.rstrip("\x00 "))
    if isinstance(value, bool):
        return ObisValue(item.obis, int(value))
    if isinstance(value, int | float):
        return _convert_number(item, value, profile)
    if isinstance(value, CosemDate | CosemTime):
        return None
    return None  # null-data, bit-strings and nested lists carry nothing we publish


def _convert_octets(obis: Obis, value: bytes, profile: VendorProfile) -> ObisValue | None:
    if len(value) == _DATE_TIME_OCTETS and obis.cde == (1, 0, 0):
        stamp = CosemDateTime.from_bytes(value)
        text = stamp.isoformat(use_deviation=profile.trust_clock_deviation)
        return None if text is None else ObisValue(obis, text)
    text = _text(value)
    return ObisValue(obis, text if text is not None else value.hex())


def _convert_number(item: _Item, value: float, profile: VendorProfile) -> ObisValue:
    if item.scaler_unit is not None:
        scaler, unit = item.scaler_unit
        return ObisValue(item.obis, value, scaler, unit_symbol(unit))
    known = field_for(item.obis)
    exponent = profile.implied_exponents.get(known[1].kind, 0) if known else 0
    return ObisValue(item.obis, value, exponent, None)


def decode_notification(
    notification: DataNotification, forced: VendorProfile | None = None
) -> MeterReading:
    """Decode a data-notification into a reading.

    Args:
        notification: the decoded APDU.
        forced: the configured vendor, or None to recognise it from the frame.

    Raises:
        LayoutError: the body matches no layout, or contradicts the configured vendor.
    """
    extracted = extract(notification.body)
    profile = _choose_profile(notification.body, extracted, forced)
    items = extracted.items or _positional(extracted, profile)
    values = [converted for item in items if (converted := _convert(item, profile)) is not None]
    extra: dict[str, FieldValue] = {}
    list_id = _text(extracted.loose[0]) if extracted.items and extracted.loose else None
    if list_id and profile.matches_list_id(list_id):
        values.insert(0, ObisValue(LIST_ID_OBIS, list_id))
    values = profile.adjust(values)
    if not values:
        raise LayoutError("the notification carries no values")
    if profile.manufacturer:
        extra[model.FIELD_METER_MANUFACTURER] = profile.manufacturer
    if notification.date_time is not None:
        stamp = notification.date_time.isoformat(use_deviation=profile.trust_clock_deviation)
        if stamp is not None:
            extra[model.FIELD_METER_DATETIME] = stamp
    return build_reading(values, layout=profile.name, extra=extra)


def decode_content(content: bytes, forced: VendorProfile | None = None) -> MeterReading:
    """Decode frame content (LLC header optional + data-notification APDU) into a reading."""
    return decode_notification(decode_data_notification(strip_llc(content)), forced)


def profile_named(name: str) -> VendorProfile | None:
    """The profile for a ``meter.type`` value; None for ``auto``."""
    if name == "auto":
        return None
    for profile in (*PROFILES, GENERIC):
        if profile.name == name:
            return profile
    raise LayoutError(f"unknown meter type {name!r}")
