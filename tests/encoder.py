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


def u8(value: int) -> bytes:
    return b"\x11" + bytes([value])


def hdlc_segments(information: bytes, size: int) -> bytes:
    """The information split into HDLC frames of at most ``size`` octets (format 0xA8 chains)."""
    parts = [information[i : i + size] for i in range(0, len(information), size)]
    return b"".join(hdlc(part, segmented=i < len(parts) - 1) for i, part in enumerate(parts))


def general_blocks(apdu: bytes, size: int) -> list[bytes]:
    """``apdu`` as general-block-transfer blocks (E0, control, number, ack, length, data)."""
    parts = [apdu[i : i + size] for i in range(0, len(apdu), size)]
    blocks = []
    for number, part in enumerate(parts, start=1):
        control = 0x80 if number == len(parts) else 0x00
        header = bytes([0xE0, control]) + struct.pack(">HH", number, 0)
        blocks.append(header + length(len(part)) + part)
    return blocks


def glo_ciphering(
    apdu: bytes,
    key: bytes,
    auth: bytes,
    *,
    title: bytes = b"LGZ\x00\x01\x02\x03\x04",
    counter: int = 1,
) -> bytes:
    """General-glo-ciphering, security control 0x30: AES-128-GCM, AAD = SC ‖ AK, 12-octet tag."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

    frame_counter = struct.pack(">I", counter)
    sealed = AESGCM(key).encrypt(title + frame_counter, apdu, b"\x30" + auth)
    body = b"\x30" + frame_counter + sealed[:-16] + sealed[-16:-4]
    return b"\xdb\x08" + title + length(len(body)) + body
