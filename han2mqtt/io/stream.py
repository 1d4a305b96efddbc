"""asyncio protocols that turn a byte stream (serial port, TCP socket) into frames on a queue.

They work with any asyncio transport.  Every connection gets a fresh frame reader, so half a frame
left by a dropped connection never merges with the first bytes of the next one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from han2mqtt.protocol.hdlc import HdlcFrame, HdlcFrameReader, HdlcSegmentAssembler

MAX_BACKLOG = 10_000
"""Frames held while the queue is full (more than one socket read can deliver)."""

__all__ = [
    "FrameReader",
    "SmartMeterFrameContentProtocol",
    "SmartMeterFrameProtocol",
    "StreamProtocol",
]


class FrameReader(Protocol):
    """What a protocol needs of a framing layer (HDLC today; M-Bus and P1 plug in the same way)."""

    def read(self, data_chunk: bytes) -> list[Any]:
        """Consume a chunk, return the frames it completed."""
        ...


class StreamProtocol(asyncio.Protocol):
    """Common part: feed bytes to a frame reader, track liveness, signal the connection's end.

    Attributes:
        done: resolved when the connection is lost (with the exception, if the loss had one).
        bytes_received: bytes received on this connection; the watchdog samples it.
        last_data_at: ``time.monotonic()`` of the last bytes, None before any.
        frames_dropped: frames dropped because the queue was full (a consumer that stalls).
    """

    def __init__(
        self,
        queue: asyncio.Queue[Any],
        reader: FrameReader | None = None,
        reader_factory: Callable[[], FrameReader] = HdlcFrameReader,
    ) -> None:
        self._queue = queue
        self.reader: FrameReader = reader if reader is not None else reader_factory()
        self._transport: asyncio.BaseTransport | None = None
        self._done: asyncio.Future[None] | None = None
        self.bytes_received = 0
        self.last_data_at: float | None = None
        self.frames_dropped = 0
        self._resumer: asyncio.Task[None] | None = None
        self._backlog: deque[object] = deque()

    @property
    def done(self) -> asyncio.Future[None]:
        """Future resolved on ``connection_lost`` (created on first use, in the running loop)."""
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        return self._done

    @property
    def transport(self) -> asyncio.BaseTransport | None:
        """The transport while connected."""
        return self._transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        self._transport = transport
        _ = self.done  # bind the future to the loop now, not in a later callback

    def data_received(self, data: bytes) -> None:  # noqa: D102
        self.bytes_received += len(data)
        self.last_data_at = time.monotonic()
        for frame in self.reader.read(data):
            self._deliver(frame)

    def eof_received(self) -> bool:  # noqa: D102
        return False  # let the transport close; the manager reconnects

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self._transport = None
        if self._resumer is not None:
            self._resumer.cancel()
        done = self.done
        if not done.done():
            if exc is None:
                done.set_result(None)
            else:
                done.set_exception(exc)
                done.exception()  # mark retrieved: a lost connection is routine, not a bug

    def _deliver(self, frame: Any) -> None:  # noqa: ANN401 - a frame of the reader's type
        raise NotImplementedError

    def _put(self, item: object) -> None:
        """Queue a frame; when the queue is full, keep it in a backlog and pause reading.

        A meter sends a frame every few seconds and never fills the queue.  A fast TCP replay
        does, and one read can hold hundreds of frames: those wait in the backlog (bounded by
        one read's worth) while reading is paused, so a flood is slowed down, not dropped.
        """
        if self._backlog:
            self._stash(item)
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._stash(item)

    def _stash(self, item: object) -> None:
        if len(self._backlog) >= MAX_BACKLOG:
            self.frames_dropped += 1
            return
        self._backlog.append(item)
        transport = self._transport
        if self._resumer is None and isinstance(transport, asyncio.ReadTransport):
            transport.pause_reading()
            self._resumer = asyncio.get_running_loop().create_task(self._drain_backlog(transport))

    async def _drain_backlog(self, transport: asyncio.ReadTransport) -> None:
        try:
            while self._backlog:
                await self._queue.put(self._backlog.popleft())
            if self._transport is transport and not transport.is_closing():
                transport.resume_reading()
        finally:
            self._resumer = None


class SmartMeterFrameProtocol(StreamProtocol):
    """Put every complete frame on the queue, valid or not (check ``frame.is_valid``)."""

    def _deliver(self, frame: HdlcFrame) -> None:
        self._put(frame)


class SmartMeterFrameContentProtocol(StreamProtocol):
    """Put the content (information field) of every valid, non-empty frame on the queue.

    Segmented frames (HDLC segmentation, format 0xA8) are joined first, so the queue always
    receives whole APDUs.  With ``reader=ContentReader(...)`` (M-Bus, P1, or auto-detection) the
    reader's contents go to the queue as they are.
    """

    def __init__(
        self,
        queue: asyncio.Queue[Any],
        reader: FrameReader | None = None,
        reader_factory: Callable[[], FrameReader] = HdlcFrameReader,
    ) -> None:
        super().__init__(queue, reader, reader_factory)
        self._assembler = HdlcSegmentAssembler()

    def _deliver(self, frame: HdlcFrame | bytes) -> None:
        if isinstance(frame, bytes):  # a reader that delivers contents (ContentReader)
            self._put(frame)
            return
        content = self._assembler.add(frame)
        if content:
            self._put(content)
