"""A-XDR decoding of COSEM ``Data`` (IEC 62056-6-2 §4.1.5, DLMS UA Blue Book "Data" CHOICE).

Values decode to plain Python objects, because the hot path (one frame per 2-10 s per meter, but
benchmarks and replays push tens of thousands) should not allocate a wrapper per value:

============================  =================================================
A-XDR type (tag)              Python value
============================  =================================================
null-data (0)                 ``None``
array (1)                     ``list``
structure (2)                 ``tuple``
boolean (3)                   ``bool``
bit-string (4)                :class:`BitString`
integers (5, 6, 15-18, 20-22) ``int`` (enum too)
float32/float64 (23, 24)      ``float``
octet-string (9)              ``bytes``
visible-string (10)           ``str`` (ASCII; other bytes map 1:1 via Latin-1)
utf8-string (12)              ``str``
bcd (13)                      ``int`` (the two nibbles as decimal digits)
date-time/date/time (25-27)   :class:`CosemDateTime` / :class:`CosemDate` / :class:`CosemTime`
============================  =================================================

Malformed input raises :class:`~han2mqtt.errors.AxdrError` with the offset; nothing else escapes.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Final, NamedTuple

from han2mqtt.errors import AxdrError
from han2mqtt.protocol.cosem import CosemDate, CosemDateTime, CosemTime

__all__ = ["AxdrValue", "BitString", "DataTag", "decode_data", "decode_length", "leaf_offsets"]


class DataTag(IntEnum):
    """Tags of the COSEM ``Data`` CHOICE (Blue Book, "Data" type description)."""

    NULL_DATA = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27


class BitString(NamedTuple):
    """An A-XDR bit-string: ``length`` bits, most significant bit of ``data[0]`` first."""

    length: int
    data: bytes

    def __str__(self) -> str:
        bits = "".join(f"{byte:08b}" for byte in self.data)
        return bits[: self.length]


AxdrValue = (
    None
    | bool
    | int
    | float
    | bytes
    | str
    | BitString
    | CosemDateTime
    | CosemDate
    | CosemTime
    | list["AxdrValue"]
    | tuple["AxdrValue", ...]
)

MAX_DEPTH: Final = 16
"""Nesting limit: real push lists nest 3 deep; a crafted frame must not exhaust the stack."""
_MAX_LENGTH_OCTETS: Final = 4

_FIXED: Final[dict[int, struct.Struct]] = {
    DataTag.DOUBLE_LONG: struct.Struct(">i"),
    DataTag.DOUBLE_LONG_UNSIGNED: struct.Struct(">I"),
    DataTag.INTEGER: struct.Struct(">b"),
    DataTag.LONG: struct.Struct(">h"),
    DataTag.UNSIGNED: struct.Struct(">B"),
    DataTag.LONG_UNSIGNED: struct.Struct(">H"),
    DataTag.LONG64: struct.Struct(">q"),
    DataTag.LONG64_UNSIGNED: struct.Struct(">Q"),
    DataTag.ENUM: struct.Struct(">B"),
    DataTag.FLOAT32: struct.Struct(">f"),
    DataTag.FLOAT64: struct.Struct(">d"),
}
# Plain ints for the hot path: comparing against IntEnum members costs an attribute lookup each.
_OCTET_STRING: Final = int(DataTag.OCTET_STRING)
_STRUCTURE: Final = int(DataTag.STRUCTURE)
_ARRAY: Final = int(DataTag.ARRAY)
_NULL_DATA: Final = int(DataTag.NULL_DATA)
_FIXED_FAST: Final = {tag: (fmt.size, fmt.unpack_from) for tag, fmt in _FIXED.items()}
_DATE_TIME_SIZES: Final[dict[int, int]] = {DataTag.DATE_TIME: 12, DataTag.DATE: 5, DataTag.TIME: 4}


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode an A-XDR length (X.690 definite form) at ``pos``; return ``(length, next_pos)``."""
    if pos >= len(buf):
        raise AxdrError("truncated: length expected", offset=pos)
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > _MAX_LENGTH_OCTETS:
        raise AxdrError(f"unsupported length encoding 0x{first:02x}", offset=pos)
    end = pos + 1 + count
    if end > len(buf):
        raise AxdrError("truncated: length octets expected", offset=pos)
    return int.from_bytes(buf[pos + 1 : end], "big"), end


def decode_data(buf: bytes, pos: int = 0, depth: int = 0) -> tuple[AxdrValue, int]:
    """Decode one A-XDR ``Data`` value at ``pos``; return ``(value, next_pos)``.

    Raises:
        AxdrError: unknown tag, truncated data, nesting deeper than :data:`MAX_DEPTH`.
    """
    if pos >= len(buf):
        raise AxdrError("truncated: data tag expected", offset=pos)
    tag = buf[pos]
    pos += 1
    fixed = _FIXED.get(tag)
    if fixed is not None:
        end = pos + fixed.size
        if end > len(buf):
            raise AxdrError(f"truncated {DataTag(tag).name.lower()}", offset=pos)
        return fixed.unpack_from(buf, pos)[0], end
    if tag == _OCTET_STRING:
        return _string(buf, pos)
    if tag in (_STRUCTURE, _ARRAY):
        return _sequence(buf, pos, depth, as_tuple=tag == _STRUCTURE)
    if tag == _NULL_DATA:
        return None, pos
    return _decode_rare(buf, pos, tag)


def _string(buf: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = decode_length(buf, pos)
    end = pos + length
    if end > len(buf):
        raise AxdrError(f"truncated string: {length} bytes announced", offset=pos)
    return buf[pos:end], end


def _sequence(
    buf: bytes, pos: int, depth: int, *, as_tuple: bool
) -> tuple[list[AxdrValue] | tuple[AxdrValue, ...], int]:
    if depth >= MAX_DEPTH:
        raise AxdrError("data nested too deeply", offset=pos)
    count, pos = decode_length(buf, pos)
    if count > len(buf) - pos:
        # Every element takes at least one byte: the count cannot be right.
        raise AxdrError(f"truncated: {count} elements announced", offset=pos)
    items: list[AxdrValue] = []
    append = items.append
    size = len(buf)
    fixed_get = _FIXED_FAST.get
    # The two element kinds that make up nearly every push list (fixed-size numbers and short
    # octet-strings such as OBIS codes) are decoded inline: this loop is the decoder's hot path.
    for _ in range(count):
        if pos >= size:
            raise AxdrError("truncated: data tag expected", offset=pos)
        tag = buf[pos]
        fixed = fixed_get(tag)
        if fixed is not None:
            end = pos + 1 + fixed[0]
            if end > size:
                raise AxdrError(f"truncated {DataTag(tag).name.lower()}", offset=pos + 1)
            append(fixed[1](buf, pos + 1)[0])
            pos = end
        elif tag == _OCTET_STRING and pos + 1 < size and buf[pos + 1] < 0x80:
            end = pos + 2 + buf[pos + 1]
            if end > size:
                raise AxdrError(f"truncated string: {buf[pos + 1]} bytes announced", offset=pos + 2)
            append(buf[pos + 2 : end])
            pos = end
        else:
            value, pos = decode_data(buf, pos, depth + 1)
            append(value)
    return (tuple(items) if as_tuple else items), pos


def _decode_rare(buf: bytes, pos: int, tag: int) -> tuple[AxdrValue, int]:
    """Decode the tags push lists seldom use."""
    if tag == DataTag.VISIBLE_STRING:
        raw, end = _string(buf, pos)
        return raw.decode("latin-1"), end
    if tag == DataTag.UTF8_STRING:
        raw, end = _string(buf, pos)
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise AxdrError("invalid utf8-string", offset=pos) from exc
    if tag in (DataTag.BOOLEAN, DataTag.BCD):
        if pos >= len(buf):
            raise AxdrError("truncated", offset=pos)
        byte = buf[pos]
        value: AxdrValue = byte != 0 if tag == DataTag.BOOLEAN else (byte >> 4) * 10 + (byte & 0xF)
        return value, pos + 1
    if tag == DataTag.BIT_STRING:
        bits, pos = decode_length(buf, pos)
        end = pos + (bits + 7) // 8
        if end > len(buf):
            raise AxdrError("truncated bit-string", offset=pos)
        return BitString(bits, buf[pos:end]), end
    return _date_or_time(buf, pos, tag)


def _date_or_time(buf: bytes, pos: int, tag: int) -> tuple[AxdrValue, int]:
    size = _DATE_TIME_SIZES.get(tag)
    if size is not None:
        end = pos + size
        if end > len(buf):
            raise AxdrError("truncated date/time", offset=pos)
        raw = buf[pos:end]
        if tag == DataTag.DATE_TIME:
            return CosemDateTime.from_bytes(raw), end
        return (
            CosemDate.from_bytes(raw) if tag == DataTag.DATE else CosemTime.from_bytes(raw)
        ), end
    raise AxdrError(f"unknown or unsupported data tag 0x{tag:02x}", offset=pos - 1)


def leaf_offsets(buf: bytes, pos: int = 0) -> list[int]:
    """Offsets of the tags of every non-sequence value in the Data at ``pos``, in wire order.

    Only for data that :func:`decode_data` has already accepted: it assumes well-formed input.
    """
    offsets: list[int] = []
    remaining = [1]
    while remaining:
        if not remaining[-1]:
            remaining.pop()
            continue
        remaining[-1] -= 1
        tag = buf[pos]
        if tag in (_STRUCTURE, _ARRAY):
            count, pos = decode_length(buf, pos + 1)
            remaining.append(count)
        else:
            offsets.append(pos)
            pos = decode_data(buf, pos)[1]
    return offsets
