"""``han2mqtt decode``: decode captures (hex or raw bytes) into one JSON object per frame.

Kept apart from the CLI module so that it can be tested without argument parsing, and so that
the daemon's modules are not imported for a one-shot decode.
"""

from __future__ import annotations

import binascii
import json
import re
import string
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from han2mqtt.autodecoder import AutoDecoder
from han2mqtt.errors import DecodeError
from han2mqtt.protocol.apdu import decode_data_notification, strip_llc
from han2mqtt.protocol.axdr import AxdrValue, BitString
from han2mqtt.protocol.cosem import CosemDate, CosemDateTime, CosemTime
from han2mqtt.protocol.hdlc import FLAG, HdlcFrameReader, HdlcSegmentAssembler

__all__ = ["DecodeResult", "decode_stream", "jsonable", "parse_input", "run_decode"]

_HEX_TEXT = re.compile(rb"^[0-9a-fA-F\s:,-]*$")
_HEX_DIGITS = frozenset(string.hexdigits)


def parse_input(data: bytes) -> bytes:
    """Return the bytes of a capture given as raw bytes or as hex text (spaces, lines allowed)."""
    if data and _HEX_TEXT.match(data):
        digits = bytes(b for b in data if chr(b) in _HEX_DIGITS)
        if len(digits) % 2 == 0:
            try:
                return binascii.unhexlify(digits)
            except binascii.Error:
                pass
    return data


def jsonable(value: AxdrValue) -> Any:  # noqa: ANN401 - a JSON tree
    """Convert an A-XDR value tree into JSON-serialisable values (bytes as hex)."""
    # The NamedTuple types first: they are tuples too.
    if isinstance(value, CosemDateTime):
        return value.isoformat() or value._asdict()
    if isinstance(value, CosemDate | CosemTime):
        return value._asdict()
    if isinstance(value, BitString):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """One frame's outcome: a JSON object to print, or the reason it was rejected."""

    output: dict[str, Any] | None
    error: str | None


def _contents(stream: bytes) -> Iterator[bytes | str]:
    """Yield frame contents, or an error text for each frame that cannot be used."""
    if stream.lstrip(b"\x00\xff")[:1] != bytes((FLAG,)):
        yield stream  # a bare APDU (with or without LLC header)
        return
    reader = HdlcFrameReader()
    assembler = HdlcSegmentAssembler()
    for frame in [*reader.read(stream), *reader.flush()]:
        if not frame.is_valid:
            reason = "bad FCS" if frame.is_expected_length else "truncated frame"
            if not frame.is_good_hcs:
                reason = "bad HCS"
            yield f"HDLC frame rejected ({reason}): {frame.as_bytes().hex()}"
            assembler.add(frame)
            continue
        content = assembler.add(frame)
        if content is not None:
            yield content
    if reader.stats.bytes_discarded:
        yield f"{reader.stats.bytes_discarded} bytes outside any frame skipped"


def decode_stream(
    stream: bytes, decoder: AutoDecoder, *, raw: bool = False
) -> Iterator[DecodeResult]:
    """Decode every frame in ``stream``."""
    for content in _contents(stream):
        if isinstance(content, str):
            yield DecodeResult(None, content)
            continue
        try:
            reading = decoder.decode(content)
        except DecodeError as exc:
            yield DecodeResult(None, f"{type(exc).__name__}: {exc}")
            continue
        output: dict[str, Any] = dict(reading.fields)
        if raw:
            output["_layout"] = reading.layout
            output["_obis"] = reading.obis
            notification = decode_data_notification(strip_llc(content))
            output["_axdr"] = jsonable(notification.body)
        yield DecodeResult(output, None)


def run_decode(
    source: bytes, *, meter_type: str, raw: bool, out: IO[str], err: IO[str] = sys.stderr
) -> int:
    """Decode ``source`` and print one JSON line per frame; problems go to ``err``. Returns 0."""
    decoder = AutoDecoder(meter_type)
    for result in decode_stream(parse_input(source), decoder, raw=raw):
        if result.output is not None:
            out.write(json.dumps(result.output, ensure_ascii=False) + "\n")
        else:
            err.write(f"han2mqtt decode: {result.error}\n")
    return 0
