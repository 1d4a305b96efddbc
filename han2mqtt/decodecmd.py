"""``han2mqtt decode``: decode captures (hex or raw bytes) into one JSON object per frame.

Kept apart from the CLI module so that it can be tested without argument parsing, and so that
the daemon's modules are not imported for a one-shot decode.
"""

from __future__ import annotations

import binascii
import contextlib
import json
import re
import string
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Final, NamedTuple

from han2mqtt.autodecoder import AutoDecoder
from han2mqtt.errors import ConfigError, DecodeError, FramingError
from han2mqtt.protocol.apdu import ApduTag, decode_data_notification, strip_llc
from han2mqtt.protocol.axdr import AxdrValue, BitString
from han2mqtt.protocol.cosem import CosemDate, CosemDateTime, CosemTime
from han2mqtt.protocol.hdlc import FLAG, HdlcFrameReader, HdlcSegmentAssembler
from han2mqtt.protocol.mbus import SEGMENT_NUMBER, MbusApduAssembler, MbusFrameReader
from han2mqtt.protocol.p1 import P1TelegramReader
from han2mqtt.protocol.recording import is_recording, split_recording
from han2mqtt.protocol.relay import RelayDemux
from han2mqtt.protocol.stream import is_tic_evidence
from han2mqtt.protocol.tic import STX, TicFrame, TicFrameReader, frames_from_text, parse_frame

__all__ = [
    "DecodeResult",
    "decode_recording",
    "decode_stream",
    "jsonable",
    "parse_input",
    "run_decode",
]

_HEX_TEXT = re.compile(rb"^[0-9a-fA-F\s:,-]*$")
_COMMENT = re.compile(rb"(?m)^\s*#.*$")
_HEX_DIGITS = frozenset(string.hexdigits)


def parse_input(data: bytes) -> bytes:
    """Return the bytes of a capture given as raw bytes or as hex text.

    Hex text may have spaces, separators, one frame per line and ``#`` comment lines.

    Raises:
        ConfigError: hex text with an odd number of digits (a digit lost in copying).
    """
    text = _COMMENT.sub(b"", data)
    if not text.strip() or not _HEX_TEXT.match(text):
        return data
    digits = bytes(b for b in text if chr(b) in _HEX_DIGITS)
    if len(digits) % 2:
        raise ConfigError(f"hex input with an odd number of digits ({len(digits)})")
    return binascii.unhexlify(digits)


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
    """One frame's outcome: a JSON object to print, or a line for stderr.

    ``reason`` is the kind of rejection (``bad FCS``, ``MissingKeyError`` ...) for the summary;
    None for a reading and for lines that reject no frame (skipped bytes, notes).
    """

    output: dict[str, Any] | None
    error: str | None
    reason: str | None = None


class Problem(NamedTuple):
    """A line about the capture; ``reason`` names the rejection when a frame was rejected."""

    text: str
    reason: str | None


def _note(text: str) -> Problem:
    return Problem(text, None)


def _rejected(text: str, frame: bytes, reason: str) -> Problem:
    return Problem(f"{text}: {frame.hex()}", reason)


_APDU_STARTS: Final = frozenset(
    {
        ApduTag.DATA_NOTIFICATION,
        ApduTag.GENERAL_GLO_CIPHERING,
        ApduTag.GENERAL_DED_CIPHERING,
        ApduTag.GENERAL_BLOCK_TRANSFER,
    }
)
"""First octets of the APDUs meters push: a capture that starts otherwise is not a bare APDU."""


def _contents(stream: bytes) -> tuple[list[bytes], list[Problem]]:
    """Frame contents of a capture, and a text for each frame that had to be rejected.

    A capture of a live port (``cat /dev/ttyUSB0``) starts anywhere, usually inside a frame, so
    the framing is the one whose reader finds valid frames in it, not the one the first byte
    suggests.  Only input that no framing makes sense of and that does not start like a frame
    is taken for a bare APDU (with or without the LLC header), as MQTT relays forward them.
    """
    first = stream.lstrip(b"\x00\xff\r\n")[:1]
    hdlc = _hdlc_contents(stream)
    if hdlc[0] or first == bytes((FLAG,)):
        return hdlc
    seven_bit_first = bytes(b & 0x7F for b in first)  # TIC read at 8N1: bit 7 is parity
    for read, marker in (
        (_mbus_contents, b"\x68"),
        (_p1_contents, b"/"),
        (_tic_contents, bytes((STX,))),
    ):
        found = read(stream)
        if found[0] or first == marker or (read is _tic_contents and seven_bit_first == marker):
            return found
    apdu = strip_llc(stream)
    if apdu and apdu[0] in _APDU_STARTS:
        return [stream], []
    text = _tic_text_contents(stream)
    if text[0] or text[1]:  # groups whose checksums pass: a TIC capture, if not a good one
        return text
    what = f"{len(stream)} bytes" if stream else "empty input"
    return [], [Problem(f"no frame found ({what}: no HDLC, M-Bus, P1 or TIC frame, no APDU)", None)]


def _hdlc_contents(stream: bytes) -> tuple[list[bytes], list[Problem]]:
    """HDLC: each rejected frame is reported with its reason."""
    reader = HdlcFrameReader()
    assembler = HdlcSegmentAssembler()
    contents: list[bytes] = []
    problems: list[Problem] = []
    for frame in [*reader.read(stream), *reader.flush()]:
        content = assembler.add(frame)
        if not frame.is_valid:
            reason = "bad FCS" if frame.is_expected_length else "truncated frame"
            reason = reason if frame.is_good_hcs else "bad HCS"
            problems.append(_rejected(f"HDLC frame rejected ({reason})", frame.as_bytes(), reason))
        elif content is not None:
            contents.append(content)
    if reader.stats.bytes_discarded:
        problems.append(_note(f"{reader.stats.bytes_discarded} bytes outside any frame skipped"))
    return contents, problems


def _mbus_contents(stream: bytes) -> tuple[list[bytes], list[Problem]]:
    """M-Bus long frames joined into APDUs; each rejected frame or segment with its reason."""
    reader = MbusFrameReader()
    assembler = MbusApduAssembler()
    contents: list[bytes] = []
    problems: list[Problem] = []
    for frame in reader.read(stream):
        segment = frame.ci & SEGMENT_NUMBER if frame.is_valid else 0
        if not frame.is_valid:
            problems.append(
                _rejected("M-Bus frame rejected (bad checksum or end mark)", frame.raw, "bad M-Bus")
            )
        elif segment and segment != assembler.expected_segment:
            problems.append(
                Problem(
                    f"M-Bus segment {segment} without the segments before it "
                    "(the capture starts inside a telegram): dropped",
                    "M-Bus segment missing",
                )
            )
        apdu = assembler.add(frame)
        if apdu is not None:
            contents.append(apdu)
    if assembler.pending:
        problems.append(
            Problem("M-Bus telegram cut off at the end of the capture: dropped", "cut off")
        )
    if reader.stats.bytes_discarded:
        problems.append(_note(f"{reader.stats.bytes_discarded} bytes outside any frame skipped"))
    return contents, problems


def _p1_contents(stream: bytes) -> tuple[list[bytes], list[Problem]]:
    """P1 telegrams; each rejected one with its reason."""
    reader = P1TelegramReader()
    contents: list[bytes] = []
    problems: list[Problem] = []
    for telegram in reader.read(stream) + reader.flush():
        if telegram.is_valid:
            contents.append(telegram.raw)
        else:
            first = telegram.identification or "?"
            problems.append(
                Problem(f"P1 telegram rejected (CRC mismatch): {first}", "CRC mismatch")
            )
    if reader.bytes_discarded:
        problems.append(_note(f"{reader.bytes_discarded} bytes outside any telegram skipped"))
    return contents, problems


def _tic_frame_contents(frames: list[TicFrame]) -> tuple[list[bytes], list[Problem]]:
    """TIC frames with their meter id and enough good groups; a line for each of the others."""
    contents: list[bytes] = []
    problems: list[Problem] = []
    for frame in frames:
        if is_tic_evidence(frame):
            contents.append(frame.raw)
            continue
        problems.append(
            Problem(
                f"TIC frame rejected ({len(frame.groups)} good groups, {frame.bad_groups} with a "
                "bad checksum, no meter id among the good ones)",
                "TIC frame without meter id",
            )
        )
    return contents, problems


def _tic_contents(stream: bytes) -> tuple[list[bytes], list[Problem]]:
    """TIC frames as read from the port (7-bit characters, bit 7 the parity bit or 0)."""
    reader = TicFrameReader()
    contents, problems = _tic_frame_contents(reader.read(stream) + reader.flush())
    if reader.interrupted:
        problems.append(_note(f"{reader.interrupted} TIC frames interrupted (EOT) or cut short"))
    if reader.bytes_discarded:
        problems.append(_note(f"{reader.bytes_discarded} bytes outside any TIC frame skipped"))
    return contents, problems


def _tic_text_contents(stream: bytes) -> tuple[list[bytes], list[Problem]]:
    """A TIC capture as text: one group per line (``ADCO 021528603314 :``), no STX/ETX."""
    try:
        text = stream.decode("ascii")
    except UnicodeDecodeError:
        return [], []
    frames = [parse_frame(raw) for raw in frames_from_text(text)]
    if not any(frame.groups for frame in frames):
        return [], []
    return _tic_frame_contents(frames)


def decode_stream(
    stream: bytes, decoder: AutoDecoder, *, raw: bool = False
) -> Iterator[DecodeResult]:
    """Decode every frame in ``stream``."""
    contents, problems = _contents(stream)
    for problem in problems:
        yield DecodeResult(None, problem.text, problem.reason)
    for content in contents:
        try:
            reading = decoder.feed(content)
        except DecodeError as exc:
            yield DecodeResult(None, f"{type(exc).__name__}: {exc}", type(exc).__name__)
            continue
        if reading is None:
            continue  # a block of a general-block-transfer; the reading comes with the last
        if decoder.last_note is not None:
            yield DecodeResult(None, f"note: {decoder.last_note}")  # decoded all the same
        output: dict[str, Any] = dict(reading.fields)
        if reading.unscaled:  # as in the state JSON: raw numbers whose scaling nothing states
            output["unscaled"] = {code: reading.obis[code] for code in reading.unscaled}
        if raw:
            output["_layout"] = reading.layout
            output["_obis"] = reading.obis
            apdu = decoder.last_apdu  # deciphered and joined, unlike the frame content
            if apdu is not None:
                with contextlib.suppress(DecodeError):
                    output["_axdr"] = jsonable(decode_data_notification(apdu).body)
        yield DecodeResult(output, None)


def run_decode(  # noqa: PLR0913 - the command's options
    source: bytes,
    *,
    meter_type: str,
    raw: bool,
    out: IO[str],
    err: IO[str] | None = None,
    keys: tuple[bytes | None, bytes | None] = (None, None),
) -> int:
    """Decode ``source`` and print one JSON line per frame; problems go to ``err``.

    Returns 0 when at least one frame decoded, 1 when none did (nothing found, every frame
    rejected, a missing or wrong key); then, or when any frame was rejected, a summary line
    (frames found, decoded, rejected by reason) ends ``err``.
    """
    err = err if err is not None else sys.stderr  # looked up now: tests and callers swap it
    decoder = AutoDecoder(meter_type, encryption_key=keys[0], authentication_key=keys[1])
    decoded, rejected = 0, Counter[str]()
    if is_recording(source):  # han2mqtt record's format: receive times, maybe topics
        results = decode_recording(source, meter_type, keys, raw=raw)
    else:
        results = decode_stream(parse_input(source), decoder, raw=raw)
    for result in results:
        if result.output is not None:
            out.write(json.dumps(result.output, ensure_ascii=False) + "\n")
            decoded += 1
        else:
            err.write(f"han2mqtt decode: {result.error}\n")
        if result.reason is not None:
            rejected[result.reason] += 1
    if rejected or not decoded:  # blocks and segments joined count as the one frame they make
        err.write(f"han2mqtt decode: {_summary(decoded + rejected.total(), decoded, rejected)}\n")
    return 0 if decoded else 1


def decode_recording(
    data: bytes,
    meter_type: str,
    keys: tuple[bytes | None, bytes | None] = (None, None),
    *,
    raw: bool = False,
) -> Iterator[DecodeResult]:
    """Decode a recording: its stream as one capture, its MQTT messages topic by topic.

    Each topic has its own framing state and decoder, as in the daemon, so interleaved meters
    never mix.

    Raises:
        ConfigError: the recording has a line that is not a chunk.
    """
    try:
        stream, messages = split_recording(data)
    except FramingError as exc:
        raise ConfigError(str(exc)) from exc

    def decoder() -> AutoDecoder:
        return AutoDecoder(meter_type, encryption_key=keys[0], authentication_key=keys[1])

    if stream:
        yield from decode_stream(stream, decoder(), raw=raw)
    demux = RelayDemux()
    decoders: dict[str, AutoDecoder] = {}
    for topic, payload in messages:
        relayed = demux.read(topic, payload)
        if relayed.problem is not None:
            yield DecodeResult(
                None, f"{topic}: payload dropped ({relayed.problem.value})", "payload dropped"
            )
        for content in relayed.contents:
            topic_decoder = decoders.get(topic) or decoders.setdefault(topic, decoder())
            yield from decode_stream(content, topic_decoder, raw=raw)


def _summary(found: int, decoded: int, rejected: Counter[str]) -> str:
    """``3 frames found, 1 decoded, 2 rejected (bad FCS: 1, MissingKeyError: 1)``."""
    text = f"{found} frame{'' if found == 1 else 's'} found, {decoded} decoded"
    if rejected:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in rejected.most_common())
        text += f", {rejected.total()} rejected ({reasons})"
    return text
