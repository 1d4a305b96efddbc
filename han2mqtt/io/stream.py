"""asyncio protocols that turn a byte stream (serial port, TCP socket) into frames on a queue.

They work with any asyncio transport.  Every connection gets a fresh frame reader, so half a frame
left by a dropped connection never merges with the first bytes of the next one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from han2mqtt.protocol.hdlc import HdlcFrame, HdlcFrameReader, HdlcSegmentAssembler

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
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.frames_dropped += 1


class SmartMeterFrameProtocol(StreamProtocol):
    """Put every complete frame on the queue, valid or not (check ``frame.is_valid``)."""

    def _deliver(self, frame: HdlcFrame) -> None:
        self._put(frame)


class SmartMeterFrameContentProtocol(StreamProtocol):
    """Put the content (information field) of every valid, non-empty frame on the queue.

    Segmented frames (HDLC segmentation, format 0xA8) are joined first, so the queue always
    receives whole APDUs.
    """

    def __init__(
        self,
        queue: asyncio.Queue[Any],
        reader: FrameReader | None = None,
        reader_factory: Callable[[], FrameReader] = HdlcFrameReader,
    ) -> None:
        super().__init__(queue, reader, reader_factory)
        self._assembler = HdlcSegmentAssembler()

    def _deliver(self, frame: HdlcFrame) -> None:
        content = self._assembler.add(frame)
        if content:
            self._put(content)
