"""The relay sources' I/O side: the queue writer's bound, logging once, replaying a file."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from han2mqtt.config import SourceSettings
from han2mqtt.errors import TransportError
from han2mqtt.io import relay
from han2mqtt.io.relay import Delivery, QueueWriter, RelayFeeder, replay_file, subscription
from han2mqtt.protocol.recording import Chunk, format_line, header_lines
from han2mqtt.protocol.relay import RelayDemux
from tests.fleet import AIDON_LISTS, information, meter_frames

STAMP = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


async def test_the_writer_keeps_order_through_its_backlog_and_counts_what_overflows(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(relay, "MAX_BACKLOG", 3)
    queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=2)
    counters: dict[str, int] = {}
    writer = QueueWriter(queue, counters)
    for number in range(8):
        writer.put(Delivery(bytes([number])))
    assert counters == {"dropped": 3}  # 2 in the queue, 3 waiting, 3 dropped
    received = [(await queue.get()).content for _ in range(5)]
    assert received == [bytes([n]) for n in range(5)]


def test_problems_are_counted_each_and_logged_once_per_topic_and_kind(
    caplog: pytest.LogCaptureFixture,
):
    counters: dict[str, int] = {}
    feeder = RelayFeeder(RelayDemux(), counters)
    with caplog.at_level(logging.WARNING, logger="han2mqtt"):
        for _ in range(5):
            feeder.feed("a/\nforged", b"", STAMP)
            feeder.feed("a/\nforged", b"junk", STAMP)
            feeder.feed("b", b"junk", STAMP)
    assert counters == {"empty": 5, "unrecognised": 10}
    assert len(caplog.records) == 3
    assert all("\n" not in record.getMessage() for record in caplog.records)
    good = feeder.feed("c", meter_frames(1)[0], STAMP)
    assert good == [Delivery(information(AIDON_LISTS[0], 1), "c", STAMP)]


def test_a_shared_subscription_filter():
    assert subscription("ams/+/raw", None) == "ams/+/raw"
    assert subscription("ams/+/raw", "h2m") == "$share/h2m/ams/+/raw"


async def test_a_replay_delivers_stream_and_topic_chunks_with_their_times(tmp_path: Path):
    frames = meter_frames(1)
    later = STAMP.replace(minute=5)
    lines = [
        *header_lines("test"),
        format_line(Chunk(STAMP, frames[0][:30])),
        format_line(Chunk(later, frames[0][30:])),
        format_line(Chunk(later, frames[1].hex().encode(), "relay/x")),
    ]
    path = tmp_path / "r.rec"
    path.write_text("\n".join(lines) + "\n")
    queue: asyncio.Queue[Delivery] = asyncio.Queue()
    source = SourceSettings(type="file", path=path, speed="max")
    assert await replay_file(source, RelayFeeder(RelayDemux(), {}), queue) == 3
    assert [queue.get_nowait() for _ in range(queue.qsize())] == [
        Delivery(information(AIDON_LISTS[0], 1), "", later),  # completed by the second chunk
        Delivery(information(AIDON_LISTS[1], 1), "relay/x", later),
    ]


async def test_a_broken_recording_is_a_transport_error_naming_the_line(tmp_path: Path):
    path = tmp_path / "r.rec"
    path.write_text("# han2mqtt recording 1\nnot a chunk at all here\n")
    source = SourceSettings(type="file", path=path, speed="max")
    with pytest.raises(TransportError, match="line 2"):
        await replay_file(source, RelayFeeder(RelayDemux(), {}), asyncio.Queue())
