"""The protocols with an in-memory transport: any chunking, bad frames, segmentation, loss."""

from __future__ import annotations

import asyncio

import pytest

from han2mqtt import SmartMeterFrameContentProtocol, SmartMeterFrameProtocol
from han2mqtt.protocol.hdlc import HdlcFrame
from tests.io.helpers import AIDON_LIST1, content_of, frame


class MemoryTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.paused = False

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def _paused(transport: MemoryTransport) -> bool:
    """Read through a call: the protocol changes it behind mypy's back."""
    return transport.paused


async def test_frame_protocol_delivers_every_frame_valid_or_not_in_any_chunking():
    queue: asyncio.Queue[HdlcFrame] = asyncio.Queue()
    protocol = SmartMeterFrameProtocol(queue)
    protocol.connection_made(MemoryTransport())
    damaged = bytearray(AIDON_LIST1)
    damaged[20] ^= 0x40
    stream = AIDON_LIST1 + bytes(damaged) + AIDON_LIST1
    for index in range(0, len(stream), 7):
        protocol.data_received(stream[index : index + 7])
    frames = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [f.is_valid for f in frames] == [True, False, True]
    assert protocol.bytes_received == len(stream)


async def test_content_protocol_delivers_only_valid_contents():
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    protocol = SmartMeterFrameContentProtocol(queue)
    protocol.connection_made(MemoryTransport())
    damaged = bytearray(AIDON_LIST1)
    damaged[20] ^= 0x40
    protocol.data_received(b"\x00garbage" + bytes(damaged) + AIDON_LIST1 + b"\xff" * 5)
    assert queue.qsize() == 1
    assert queue.get_nowait() == content_of(AIDON_LIST1)


async def test_content_protocol_joins_hdlc_segments():
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    protocol = SmartMeterFrameContentProtocol(queue)
    protocol.connection_made(MemoryTransport())
    protocol.data_received(frame("xx-iskra-am550-hdlc-segmented"))
    assert queue.qsize() == 1
    assert queue.get_nowait().startswith(b"\xe6\xe7\x00\x0f")


async def test_a_flood_pauses_reading_and_loses_nothing():
    """One read with more frames than the queue holds: the rest wait, reading pauses."""
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=2)
    protocol = SmartMeterFrameContentProtocol(queue)
    transport = MemoryTransport()
    protocol.connection_made(transport)
    protocol.data_received(AIDON_LIST1 * 5)
    assert _paused(transport)
    received = [await asyncio.wait_for(queue.get(), 1) for _ in range(5)]
    assert received == [content_of(AIDON_LIST1)] * 5
    async with asyncio.timeout(1):
        while _paused(transport):
            await asyncio.sleep(0.001)
    assert protocol.frames_dropped == 0
    protocol.connection_lost(None)


async def test_done_resolves_on_connection_lost():
    protocol = SmartMeterFrameProtocol(asyncio.Queue())
    protocol.connection_made(MemoryTransport())
    assert not protocol.done.done()
    protocol.connection_lost(None)
    await protocol.done

    other = SmartMeterFrameProtocol(asyncio.Queue())
    other.connection_made(MemoryTransport())
    other.connection_lost(ConnectionResetError("reset"))
    with pytest.raises(ConnectionResetError):
        await other.done


def test_octet_stuffing_is_an_opt_in_of_the_content_reader():
    from han2mqtt.protocol.stream import ContentReader  # noqa: PLC0415
    from tests import corpus  # noqa: PLC0415

    frame = corpus.raw(corpus.by_id("no-kaifa-list1-flag-7e-in-info"))
    inner = frame[1:-1]
    assert b"\x7e" in inner  # a payload byte a stuffing link would have escaped
    stuffed = b"\x7e" + inner.replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e") + b"\x7e"
    plain = ContentReader("hdlc").read(frame)
    assert plain
    assert ContentReader("hdlc", octet_stuffing=True).read(stuffed) == plain
    assert ContentReader("hdlc").read(stuffed) != plain  # HAN meters never stuff: off by default
