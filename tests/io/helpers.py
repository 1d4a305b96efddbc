"""Shared pieces of the transport tests: real frames, a fake clock, a scripted TCP meter."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from han2mqtt.protocol.hdlc import HdlcFrameReader
from tests import corpus

AIDON_LIST1 = bytes.fromhex(
    "7EA02A410883130413E6E7000F40000000000101020309060100010700FF060000067D02020F00161B1C057E"
)


def frame(item_id: str) -> bytes:
    return corpus.raw(corpus.by_id(item_id))


def content_of(raw_frame: bytes) -> bytes:
    """The information field of one unsegmented frame."""
    (parsed,) = HdlcFrameReader().read(raw_frame)
    return parsed.payload


class FakeClock:
    """Monotonic time that only moves when somebody sleeps: timing tests never sleep for real."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def tcp_meter(handler: Handler, port: int = 0) -> AsyncIterator[tuple[asyncio.Server, int]]:
    """A TCP 'serial server' on 127.0.0.1 whose behaviour per connection is ``handler``."""

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The server closing cancels handlers that still hold their connection: that is the end
        # of the test, not an error worth a traceback in the log.
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await handler(reader, writer)
        writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", port)
    try:
        yield server, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def get_n(queue: asyncio.Queue[bytes], count: int, timeout: float = 10) -> list[bytes]:
    """Take ``count`` items from ``queue`` or fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        return [await queue.get() for _ in range(count)]
