"""A meter on a TCP port: replays HDLC frames like a serial server next to a real meter would.

Used by ``han2mqtt demo`` (and ``source.type: demo``) so that the demo runs the real pipeline,
TCP connection and reconnect logic included, by the tests and benchmarks, and by users as
``han2mqtt simulate`` (or ``python -m han2mqtt.simulator``): a meter to point ``han2mqtt run`` at
with ``source.type: tcp`` before the real one is wired.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from importlib import resources

from han2mqtt.linky import linky_frames

__all__ = ["DEFAULT_PORT", "METERS", "load_samples", "serve_frames", "simulate"]

DEFAULT_PORT = 8899
"""The port of ``han2mqtt simulate``: the default of common TCP serial servers (USR-TCP232)."""


def load_samples() -> list[bytes]:
    """The built-in sample frames (real captures, see ``han2mqtt/data/samples.hex``)."""
    text = resources.files("han2mqtt").joinpath("data/samples.hex").read_text(encoding="ascii")
    return [
        bytes.fromhex(line)
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


METERS: dict[str, Callable[[], list[bytes]]] = {"han": load_samples, "linky": linky_frames}
"""``--meter``: the frames each simulated meter sends."""


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


async def simulate(
    host: str,
    port: int,
    interval: float,
    *,
    announce: Callable[[str], None] = print,
    meter: str = "han",
) -> None:
    """Serve the built-in frames on ``host``:``port`` until SIGINT or SIGTERM.

    ``announce`` gets one line with the address actually bound (``port`` 0 picks a free one).

    Raises:
        OSError: the address cannot be bound (in use, not an address of this machine).
    """
    frames = METERS[meter]()
    server = await serve_frames(frames, interval=interval, host=host, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()
    announce(
        f"serving {len(frames)} built-in meter frames on {bound[0]}:{bound[1]}, one every "
        f"{interval:g} s, to every client (Ctrl-C stops)"
    )
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        # Not wait_closed(): from Python 3.12 it waits for the connected clients, whose
        # handlers asyncio.run() cancels once this returns.
        server.close()


if __name__ == "__main__":
    from han2mqtt.cli import main

    sys.exit(main(["simulate", *sys.argv[1:]]))
