"""Recordings: what a source delivered, raw, with receive times, one chunk per line.

``han2mqtt record`` writes them, ``source.type: file`` replays them through the whole daemon and
``han2mqtt decode`` reads them.  The format (version 1) is plain text, so that a user can attach
it to a bug report and anyone can read, cut or anonymise it with an editor::

    # han2mqtt recording 1
    # han2mqtt 0.4.0; source: tcp 192.0.2.7:8899
    2026-11-29T11:38:55.123456+00:00 7ea02a410883130413e6e7000f40...
    2026-11-29T11:38:57.623411+00:00 7ea02a410883130413e6e7000f40...
    1795952337.883012 meters/house%201 0f40000000000101020309060100...

- ``#`` starts a comment line; the first line names the format and its version.
- Every other line is one chunk as the source delivered it: the receive time, then, for an MQTT
  source, the topic (percent-encoded, so that it holds no spaces), then the bytes as hex (``-``
  for an empty message).  A chunk
  of a serial or TCP source is whatever one read returned: frames may be split across lines.
- The receive time is ISO 8601 with an offset (written in UTC, with microseconds) or seconds
  since the epoch (``1795952337.883012``).

Pure: no files are opened here; :func:`parse_line` and :func:`format_line` work on lines.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Final, NamedTuple
from urllib.parse import quote, unquote

from han2mqtt.errors import FramingError

__all__ = [
    "HEADER",
    "RECORDING_VERSION",
    "Chunk",
    "format_line",
    "header_lines",
    "is_recording",
    "parse_line",
    "parse_recording",
    "split_recording",
]

RECORDING_VERSION: Final = 1
HEADER: Final = "# han2mqtt recording"
_FIELDS_STREAM: Final = 2
_FIELDS_TOPIC: Final = 3
_EMPTY: Final = "-"
"""The bytes of an empty message (MQTT allows them)."""
_TOPIC_SAFE: Final = "/+#$!'()*,;=@:&"
"""Characters kept as they are in a recorded topic (spaces and % are escaped)."""


class Chunk(NamedTuple):
    """One delivery of a source: when it arrived, from which topic (MQTT), and the bytes."""

    received_at: datetime
    data: bytes
    topic: str | None = None


def header_lines(description: str) -> list[str]:
    """The comment lines that start a recording (format and version, then ``description``)."""
    return [f"{HEADER} {RECORDING_VERSION}", f"# {description}"]


def format_line(chunk: Chunk) -> str:
    """One chunk as a line (without the newline)."""
    stamp = chunk.received_at.astimezone(UTC).isoformat(timespec="microseconds")
    data = chunk.data.hex() or _EMPTY
    if chunk.topic is None:
        return f"{stamp} {data}"
    return f"{stamp} {quote(chunk.topic, safe=_TOPIC_SAFE)} {data}"


def parse_line(line: str, number: int = 0) -> Chunk | None:
    """The chunk on ``line``; None for a comment or an empty line.

    Raises:
        FramingError: the line is not ``time [topic] hex`` (naming the line ``number``).
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    fields = text.split()
    if len(fields) not in (_FIELDS_STREAM, _FIELDS_TOPIC):
        raise FramingError(f"recording line {number}: expected 'time [topic] hex'")
    try:
        data = b"" if fields[-1] == _EMPTY else binascii.unhexlify(fields[-1])
    except (binascii.Error, ValueError) as exc:
        raise FramingError(f"recording line {number}: the bytes are not hex") from exc
    topic = unquote(fields[1]) if len(fields) == _FIELDS_TOPIC else None
    return Chunk(_parse_time(fields[0], number), data, topic)


def _parse_time(text: str, number: int) -> datetime:
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        stamp = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError) as exc:
        raise FramingError(f"recording line {number}: bad receive time {text[:40]!r}") from exc
    if stamp.tzinfo is None:
        raise FramingError(f"recording line {number}: the receive time needs an offset")
    return stamp


def parse_recording(lines: Iterable[str]) -> Iterator[Chunk]:
    """Every chunk of a recording, in order.

    Raises:
        FramingError: a line that is neither a comment nor a chunk.
    """
    for number, line in enumerate(lines, start=1):
        chunk = parse_line(line, number)
        if chunk is not None:
            yield chunk


def split_recording(data: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A recording's stream (serial, TCP: the chunks joined) and its messages (MQTT: per topic).

    Raises:
        FramingError: a line that is neither a comment nor a chunk, or text that is not UTF-8.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FramingError("a recording is text (UTF-8)") from exc
    stream = bytearray()
    messages: list[tuple[str, bytes]] = []
    for chunk in parse_recording(text.splitlines()):
        if chunk.topic is None:
            stream += chunk.data
        else:
            messages.append((chunk.topic, chunk.data))
    return bytes(stream), messages


def is_recording(data: bytes) -> bool:
    """Whether ``data`` (a file's start) is a recording, by its first line."""
    return data.lstrip().startswith(HEADER.encode("ascii"))
