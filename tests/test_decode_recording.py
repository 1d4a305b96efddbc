"""``han2mqtt decode`` on recordings made by ``han2mqtt record`` (stream and MQTT topics)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from han2mqtt.cli import main
from han2mqtt.protocol.recording import Chunk, format_line, header_lines
from tests.fleet import meter_frames, meter_id

STAMP = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _write(path: Path, chunks: list[Chunk]) -> Path:
    lines = [*header_lines("test"), *(format_line(chunk) for chunk in chunks)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_stream_recording_split_anywhere_decodes_every_frame(capsys, tmp_path: Path):
    stream = b"".join(meter_frames(1))
    pieces = [stream[i : i + 37] for i in range(0, len(stream), 37)]  # reads cut frames apart
    recording = _write(tmp_path / "x.rec", [Chunk(STAMP, piece) for piece in pieces])
    assert main(["decode", str(recording)]) == 0
    readings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r.get("meter_id") for r in readings] == [meter_id(1), None, meter_id(1)]


def test_an_mqtt_recording_decodes_topic_by_topic(capsys, tmp_path: Path):
    one, two = meter_frames(1, segmented=True), meter_frames(2, segmented=True)
    chunks = []
    for first, second in zip(one, two, strict=True):
        chunks += [Chunk(STAMP, first.hex().encode(), "relay/1"), Chunk(STAMP, second, "relay/2")]
    chunks.append(Chunk(STAMP, b"garbage", "relay/2"))
    recording = _write(tmp_path / "x.rec", chunks)
    assert main(["decode", str(recording)]) == 0
    captured = capsys.readouterr()
    readings = [json.loads(line) for line in captured.out.splitlines()]
    one_two = [meter_id(1), meter_id(2)]
    assert [r.get("meter_id") for r in readings] == [*one_two, None, None, *one_two]
    assert "relay/2: payload dropped (unrecognised)" in captured.err


def test_a_broken_recording_is_a_usage_error_naming_the_line(capsys, tmp_path: Path):
    recording = tmp_path / "x.rec"
    recording.write_text(f"{header_lines('t')[0]}\n2026-11-29T12:00:00+00:00 0f40\nnonsense\n")
    assert main(["decode", str(recording)]) == 2
    assert "line 3" in capsys.readouterr().err


@pytest.mark.parametrize("payload", [b"", b"\x00"])
def test_empty_and_tiny_messages_do_not_break_decode(capsys, tmp_path: Path, payload: bytes):
    recording = _write(tmp_path / "x.rec", [Chunk(STAMP, payload, "t")])
    assert main(["decode", str(recording)]) == 1  # nothing decoded (issue 10 item 7)
    err = capsys.readouterr().err
    assert "payload dropped" in err
    assert err.endswith("0 decoded, 1 rejected (payload dropped: 1)\n")
