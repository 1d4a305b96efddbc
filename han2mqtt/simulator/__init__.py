"""Meters on a TCP port, as a serial server next to a real meter would serve them.

Simulated meters (:mod:`han2mqtt.simulator.meters`) whose clocks move, at ``speed`` times real
time, with registers that follow their power and the hourly list on every hour; or the built-in
real captures replayed as they are (``han2mqtt/data/samples.hex``).  Used by ``han2mqtt demo``
(``source.type: demo``) so that the demo runs the real pipeline, TCP connection included; by the
tests and benchmarks; and by users as ``han2mqtt simulate`` (or ``python -m han2mqtt.simulator``):
a meter to point ``han2mqtt run`` at before the real one is wired.

Nothing here knows the command line; ``__main__`` hands ``python -m`` to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta, tzinfo
from importlib import resources
from zoneinfo import ZoneInfo

from han2mqtt.simulator.meters import (
    DEFAULT_METERS,
    METERS,
    SimulatedMeter,
    later,
    register_meter,
)

__all__ = [
    "DEFAULT_PORT",
    "FAST_STEP",
    "METERS",
    "SIMULATED_ZONE",
    "Simulation",
    "demo_start",
    "load_samples",
    "register_meter",
    "serve_demo",
    "serve_frames",
    "serve_meters",
    "simulate",
]

FAST_STEP = timedelta(minutes=1)
"""Meter time per step when the steps follow each other without a pause."""
SIMULATED_ZONE = ZoneInfo("Europe/Oslo")
"""The simulated meters' local time (the Nordic meters' and the Dutch P1's offset alike)."""

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


class Simulation:
    """What one client of :func:`serve_meters` gets: the meters and their common clock.

    Args:
        names: keys of :data:`METERS`.
        start: the meters' first time (aware); default: now in :data:`SIMULATED_ZONE`.
        speed: meter seconds per real second.
        interval: real seconds between two steps.
        duration: meter time after which the meters fall silent (None: never).
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        start: datetime | None = None,
        speed: float = 1.0,
        interval: float = 2.0,
        duration: timedelta | None = None,
    ) -> None:
        unknown = [name for name in names if name not in METERS]
        if unknown:
            raise ValueError(f"unknown simulated meter {unknown[0]!r} (one of {', '.join(METERS)})")
        self.start = start or datetime.now(SIMULATED_ZONE).replace(microsecond=0)
        self.meters: list[SimulatedMeter] = [METERS[name](self.start) for name in names]
        for meter in self.meters:
            # Several meters on one line: a list 1 names no meter, and would belong to none
            # (a bridge holds it back); each step sends the lists that name their meter.
            meter.short_lists = len(self.meters) == 1
        # As fast as possible (interval 0): a minute of meter time per step.
        self.step = timedelta(seconds=interval * speed) if interval > 0 else FAST_STEP
        self.interval = interval
        self.end = None if duration is None else later(self.start, duration)
        self.time = self.start

    def next_frames(self) -> list[bytes] | None:
        """The frames of the next step, in meter-time order; None once ``duration`` is over."""
        if self.end is not None and self.time >= self.end:
            return None
        self.time = later(self.time, self.step)
        if self.end is not None:
            self.time = min(self.time, self.end)
        return [frame for meter in self.meters for frame in meter.advance(self.time)]


def demo_start(zone: tzinfo = SIMULATED_ZONE) -> datetime:
    """23:55 yesterday: the first hourly list comes within a few steps, and midnight with it.

    The demo's three meter hours then always show the hour's, the last hour's and the day's
    energy (a day's energy needs the register at midnight), whatever the time it is run at, and
    two runs print the same.
    """
    yesterday = datetime.now(zone).date() - timedelta(days=1)
    return datetime.combine(yesterday, time(23, 55), tzinfo=zone)


_MAX_BACKLOG = 1 << 20
"""Octets a client may fall behind before it is dropped (a meter does not wait either)."""


class _Line:
    """One simulation for every client, as one meter behind a serial server.

    Its clock and registers go on whoever connects, so a client that reconnects never sees them
    go back.
    """

    def __init__(
        self, simulation: Callable[[], Simulation], on_done: Callable[[], None] | None
    ) -> None:
        self._make = simulation
        self._on_done = on_done
        self._clients: set[asyncio.StreamWriter] = set()
        self._task: asyncio.Task[None] | None = None
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        if self._task is None:  # the clocks start with the first client
            self._task = asyncio.get_running_loop().create_task(self._run(self._make()))
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while await reader.read(4096):  # nothing is expected: wait until the client goes
                pass
        self._clients.discard(writer)
        writer.close()

    async def _run(self, simulation: Simulation) -> None:
        while self.server is None or self.server.is_serving():
            frames = simulation.next_frames()
            if frames is None:
                break
            data = b"".join(frames)
            for writer in list(self._clients):
                if writer.transport.get_write_buffer_size() > _MAX_BACKLOG:
                    self._clients.discard(writer)
                    writer.close()
                else:
                    writer.write(data)
            await asyncio.sleep(simulation.interval)
        else:
            return  # the server was closed
        if self._on_done is not None:
            self._on_done()  # the line stays open, silent, like an idle meter


async def serve_meters(
    simulation: Callable[[], Simulation],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_done: Callable[[], None] | None = None,
) -> asyncio.Server:
    """Serve ``simulation()`` to every client, a step every ``interval`` seconds.

    The simulation starts with the first client and is shared: later clients (a bridge that
    reconnects) get the same meters from where their clocks are.  ``on_done`` is called when
    it has reached its ``duration``.  The caller closes the server, which stops the meters.
    """
    line = _Line(simulation, on_done)
    line.server = await asyncio.start_server(line.serve, host, port)
    return line.server


async def serve_demo(
    *,
    interval: float,
    speed: float = 1.0,
    hours: float | None = None,
    on_done: Callable[[], None] | None = None,
) -> asyncio.Server:
    """``source.type: demo``: every simulated meter on a free port of 127.0.0.1.

    Sped up, the clocks start five minutes before the hour, so the hourly lists (and with them
    the hour's, the day's and the last hour's energy) come within the first seconds.
    """
    duration = None if hours is None else timedelta(hours=hours)

    def simulation() -> Simulation:
        start = demo_start() if speed > 1 else None
        return Simulation(
            list(DEFAULT_METERS), start=start, speed=speed, interval=interval, duration=duration
        )

    return await serve_meters(simulation, on_done=on_done)


async def simulate(  # noqa: PLR0913 - the command's options, each with its default
    host: str,
    port: int,
    interval: float,
    *,
    meters: Sequence[str] | None = None,
    speed: float = 1.0,
    replay: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve simulated meters (or with ``replay`` the built-in captures) until SIGINT or SIGTERM.

    ``announce`` gets one line with the address actually bound (``port`` 0 picks a free one).

    Raises:
        OSError: the address cannot be bound (in use, not an address of this machine).
        ValueError: a meter name that :data:`METERS` does not know.
    """
    names = list(meters or DEFAULT_METERS)
    if replay:
        frames = load_samples()
        server = await serve_frames(frames, interval=interval, host=host, port=port)
        what = f"{len(frames)} built-in meter frames"
    else:
        Simulation(names)  # unknown names fail here, before the port is bound
        server = await serve_meters(
            lambda: Simulation(names, speed=speed, interval=interval), host=host, port=port
        )
        what = f"simulated meters {', '.join(names)} (meter time {speed:g}x)"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()
    announce(
        f"serving {what} on {bound[0]}:{bound[1]}, one step every {interval:g} s, "
        "to every client (Ctrl-C stops)"
    )
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        # Not wait_closed(): from Python 3.12 it waits for the connected clients, whose
        # handlers asyncio.run() cancels once this returns.
        server.close()
