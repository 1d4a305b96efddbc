"""A meter on a TCP port: replays HDLC frames like a serial server next to a real meter would.

Used by ``han2mqtt demo`` (and ``source.type: demo``) so that the demo runs the real pipeline,
TCP connection and reconnect logic included, and by the tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from importlib import resources

__all__ = ["load_samples", "serve_frames"]


def load_samples() -> list[bytes]:
    """The built-in sample frames (real captures, see ``han2mqtt/data/samples.hex``)."""
    text = resources.files("han2mqtt").joinpath("data/samples.hex").read_text(encoding="ascii")
    return [
        bytes.fromhex(line)
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


async def serve_frames(
    frames: Sequence[bytes],
    *,
    interval: float = 1.0,
    repeat: bool = True,
    host: str = "127.0.0.1",
    port: int = 0,
) -> asyncio.Server:
    """Serve ``frames`` to every client, ``interval`` seconds apart, forever if ``repeat``.

    The caller closes the server; its port is ``server.sockets[0].getsockname()[1]``.
    """

    async def play(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while True:
                for frame in frames:
                    writer.write(frame)
                    await writer.drain()
                    await asyncio.sleep(interval)
                if not repeat:
                    await asyncio.sleep(3600)  # keep the line open, silent, like an idle meter
        writer.close()

    return await asyncio.start_server(play, host, port)
