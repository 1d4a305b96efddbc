"""A test-side encoder: builds A-XDR data, data-notifications and HDLC frames from values.

It is deliberately written independently of the decoder (no shared helpers), so round-trip tests
check the decoder against the standard, not against itself.
"""

from __future__ import annotations

import struct
from typing import Any

from han2mqtt.protocol.crc import crc16_x25

LLC = b"\xe6\xe7\x00"


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def null() -> bytes:
    return b"\x00"


def octets(data: bytes) -> bytes:
    return b"\x09" + length(len(data)) + data


def visible(text: str) -> bytes:
    return b"\x0a" + length(len(text)) + text.encode("ascii")


def u32(value: int) -> bytes:
    return b"\x06" + struct.pack(">I", value)


def i32(value: int) -> bytes:
    return b"\x05" + struct.pack(">i", value)


def u16(value: int) -> bytes:
    return b"\x12" + struct.pack(">H", value)


def i16(value: int) -> bytes:
    return b"\x10" + struct.pack(">h", value)


def i8(value: int) -> bytes:
    return b"\x0f" + struct.pack(">b", value)


def enum(value: int) -> bytes:
    return b"\x16" + bytes([value])


def structure(*elements: bytes) -> bytes:
    return b"\x02" + length(len(elements)) + b"".join(elements)


def array(*elements: bytes) -> bytes:
    return b"\x01" + length(len(elements)) + b"".join(elements)


def obis(text: str) -> bytes:
    ab, cdef = text.split(":")
    a, b = ab.split("-")
    return octets(bytes(int(x) for x in (a, b, *cdef.split("."))))


def scaler_unit(scaler: int, unit: int) -> bytes:
    return structure(i8(scaler), enum(unit))


def date_time(year: int, month: int, day: int, hour: int, minute: int, second: int) -> bytes:
    """The 12 octets of a COSEM date-time, weekday, hundredths and deviation unspecified."""
    return struct.pack(
        ">HBBBBBBBhB", year, month, day, 0xFF, hour, minute, second, 0xFF, -0x8000, 0
    )


def notification(body: bytes, stamp: bytes | None = None, *, typed_stamp: bool = False) -> bytes:
    header = b"\x0f\x40\x00\x00\x00"
    if stamp is None:
        header += b"\x00"
    else:
        header += (b"\x09" if typed_stamp else b"") + b"\x0c" + stamp
    return header + body


def hdlc(
    information: bytes, *, segmented: bool = False, dest: bytes = b"\x41", src: bytes = b"\x08\x83"
) -> bytes:
    """One HDLC frame with flags, HCS and FCS (IEC 62056-46 frame format type 3)."""
    header_len = 2 + len(dest) + len(src) + 1
    total = header_len + 2 + len(information) + 2
    fmt = 0xA000 | (0x0800 if segmented else 0) | total
    header = fmt.to_bytes(2, "big") + dest + src + b"\x13"
    hcs = crc16_x25(header).to_bytes(2, "little")
    body = header + hcs + information
    return b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"


def encode_value(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"\x03" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return i32(value) if value < 0 else u32(value)
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, bytes):
        return octets(value)
    raise TypeError(value)
