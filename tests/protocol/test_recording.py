"""The recording format: lines of receive time, optional topic, hex."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from han2mqtt.errors import FramingError
from han2mqtt.protocol.recording import (
    Chunk,
    format_line,
    header_lines,
    is_recording,
    parse_line,
    parse_recording,
    split_recording,
)

STAMP = datetime(2026, 11, 29, 11, 38, 55, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "chunk",
    [
        Chunk(STAMP, b"\x7e\xa0\x2a"),
        Chunk(STAMP, b"\x00", "meters/house 1/raw"),
        Chunk(STAMP, b"", "a/%/b"),
        Chunk(STAMP.astimezone(timezone(timedelta(hours=2))), b"\x01"),
    ],
)
def test_a_chunk_survives_its_line(chunk: Chunk):
    line = format_line(chunk)
    assert "\n" not in line
    assert len(line.split()) == (2 if chunk.topic is None else 3) or not chunk.data
    assert parse_line(line) == chunk


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", None),
        ("# a comment", None),
        ("   ", None),
        (
            "1795952337.883012 0f40",
            Chunk(datetime.fromtimestamp(1795952337.883012, UTC), b"\x0f\x40"),
        ),
        (
            "2026-11-29T11:38:55+01:00 t/x 00",
            Chunk(datetime.fromisoformat("2026-11-29T11:38:55+01:00"), b"\x00", "t/x"),
        ),
    ],
)
def test_lines(line: str, expected: Chunk | None):
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    "line",
    ["0f40", "2026-11-29T11:38:55 0f40", "yesterday 0f40", "1 t x 0f40", "1.5 0f4", "1.5 zz"],
)
def test_a_bad_line_is_a_framing_error_naming_it(line: str):
    with pytest.raises(FramingError, match="line 7"):
        parse_line(line, 7)


def test_a_recording_splits_into_stream_and_messages():
    lines = [
        *header_lines("test"),
        format_line(Chunk(STAMP, b"\x7e\xa0")),
        format_line(Chunk(STAMP, b"\x2a\x7e")),
    ]
    data = "\n".join(lines).encode()
    assert is_recording(data)
    assert not is_recording(b"7ea02a")
    assert split_recording(data) == (b"\x7e\xa0\x2a\x7e", [])
    topics = [format_line(Chunk(STAMP, b"\x01", "a")), format_line(Chunk(STAMP, b"\x02", "b"))]
    assert split_recording("\n".join(topics).encode()) == (b"", [("a", b"\x01"), ("b", b"\x02")])
    assert len(list(parse_recording(lines))) == 2
