"""Wire encoders for the simulated meters: A-XDR values, the data-notification, HDLC, P1.

The decoder only reads; these write the same formats, so that the simulated meters send frames a
real HAN port could have sent (checked by the decoder in the tests).  Written from the standards:
A-XDR tags of IEC 62056-6-2 (Blue Book, "Data"), the data-notification APDU of IEC 62056-5-3
(tag 15, long-invoke-id-and-priority, optional date-time, notification-body), the HDLC frame
format type 3 of IEC 62056-46 (flags, format field with the 11-bit length, HCS and FCS with the
CRC-16/X-25), the LLC header E6 E7 00 of IEC 62056-46 §5, and the DSMR 5.0 P1 telegram
(CRC-16/ARC over ``/`` … ``!``, four upper-case hex digits).
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta
from typing import Final

from han2mqtt.protocol.crc import crc16_arc, crc16_x25

__all__ = [
    "array",
    "cosem_date_time",
    "data_notification",
    "hdlc_frame",
    "i16",
    "obis",
    "octets",
    "p1_telegram",
    "p1_time",
    "scaler_unit",
    "structure",
    "u16",
    "u32",
    "visible",
]

_ARRAY: Final = 0x01
_STRUCTURE: Final = 0x02
_DOUBLE_LONG_UNSIGNED: Final = 0x06
_OCTET_STRING: Final = 0x09
_VISIBLE_STRING: Final = 0x0A
_LONG: Final = 0x10
_LONG_UNSIGNED: Final = 0x12
_INTEGER: Final = 0x0F
_ENUM: Final = 0x16
_DATA_NOTIFICATION: Final = 0x0F
_LLC: Final = b"\xe6\xe7\x00"
_FLAG: Final = b"\x7e"
_FORMAT_TYPE_3: Final = 0xA000
_UI_FRAME: Final = 0x13
"""Control field: an unnumbered information frame with the final bit set, as meters push."""
_DEVIATION_UNSPECIFIED: Final = -0x8000
"""0x8000 read as a signed long: "not specified"."""
_DST_ACTIVE: Final = 0x80


def _length(n: int) -> bytes:
    """A-XDR length: one octet below 128, else 0x80 + the number of length octets."""
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def octets(data: bytes) -> bytes:
    """octet-string."""
    return bytes([_OCTET_STRING]) + _length(len(data)) + data


def visible(text: str) -> bytes:
    """visible-string (ASCII)."""
    return bytes([_VISIBLE_STRING]) + _length(len(text)) + text.encode("ascii")


def u32(value: int) -> bytes:
    """double-long-unsigned."""
    return bytes([_DOUBLE_LONG_UNSIGNED]) + struct.pack(">I", value)


def u16(value: int) -> bytes:
    """long-unsigned."""
    return bytes([_LONG_UNSIGNED]) + struct.pack(">H", value)


def i16(value: int) -> bytes:
    """Long."""
    return bytes([_LONG]) + struct.pack(">h", value)


def structure(*elements: bytes) -> bytes:
    """Structure of the encoded ``elements``."""
    return bytes([_STRUCTURE]) + _length(len(elements)) + b"".join(elements)


def array(*elements: bytes) -> bytes:
    """Array of the encoded ``elements``."""
    return bytes([_ARRAY]) + _length(len(elements)) + b"".join(elements)


def obis(text: str) -> bytes:
    """An OBIS code ``A-B:C.D.E.F`` as its six-octet octet-string."""
    medium, rest = text.split(":")
    a, b = medium.split("-")
    return octets(bytes(int(part) for part in (a, b, *rest.split("."))))


def scaler_unit(scaler: int, unit: int) -> bytes:
    """The scaler_unit structure of a register: integer scaler, enum unit (Blue Book units)."""
    return structure(bytes([_INTEGER]) + struct.pack(">b", scaler), bytes([_ENUM, unit]))


def cosem_date_time(moment: datetime) -> bytes:
    """The 12 octets of a COSEM date-time of a local wall-clock time.

    Deviation unspecified (as the Nordic lists send it: local time), hundredths not specified,
    the daylight-saving bit of the status set when ``moment`` (aware) is in summer time.
    """
    summer = bool(moment.dst()) if moment.tzinfo is not None else False
    return struct.pack(
        ">HBBBBBBBhB",
        moment.year,
        moment.month,
        moment.day,
        moment.isoweekday(),
        moment.hour,
        moment.minute,
        moment.second,
        0xFF,
        _DEVIATION_UNSPECIFIED,
        _DST_ACTIVE if summer else 0,
    )


def data_notification(body: bytes, stamp: datetime | None = None) -> bytes:
    """LLC + data-notification: invoke id 0x40000000, the date-time (octet-string) if given."""
    header = bytes([_DATA_NOTIFICATION]) + b"\x40\x00\x00\x00"
    header += b"\x00" if stamp is None else octets(cosem_date_time(stamp))
    return _LLC + header + body


def hdlc_frame(information: bytes, *, dest: bytes = b"\x41", src: bytes = b"\x08\x83") -> bytes:
    """One unsegmented HDLC frame (format type 3) with flags, HCS and FCS."""
    total = 2 + len(dest) + len(src) + 1 + 2 + len(information) + 2
    header = (_FORMAT_TYPE_3 | total).to_bytes(2, "big") + dest + src + bytes([_UI_FRAME])
    body = header + crc16_x25(header).to_bytes(2, "little") + information
    return _FLAG + body + crc16_x25(body).to_bytes(2, "little") + _FLAG


def p1_telegram(header: str, lines: list[str]) -> bytes:
    """A DSMR 5 telegram: ``/header``, an empty line, the data lines, ``!`` and its CRC."""
    text = f"/{header}\r\n\r\n" + "".join(f"{line}\r\n" for line in lines) + "!"
    raw = text.encode("ascii")
    return raw + f"{crc16_arc(raw):04X}\r\n".encode("ascii")


def p1_time(moment: datetime) -> str:
    """``YYMMDDhhmmssX``: X is S in summer time, W in winter time (DSMR 5.0 §6.12)."""
    summer = moment.dst() not in (None, timedelta(0))
    return moment.strftime("%y%m%d%H%M%S") + ("S" if summer else "W")
