"""The source watchdog counts decoded frames, not bytes: a port of garbage is reopened (11.1)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re

from han2mqtt import AutoDecoder
from han2mqtt.errors import Han2MqttError
from han2mqtt.io import BackOff, ConnectionManager, create_tcp_frame_content_connection
from han2mqtt.protocol.stream import ContentReader
from tests.io.helpers import AIDON_LIST1, FakeClock, tcp_meter

WATCHDOG = 5.0
_LOST = re.compile(
    r"meter connection lost \(no valid frame for 5 s from tcp 127\.0\.0\.1:\d+; "
    r"(\d+) bytes received\); reconnecting in 1\.0 s"
)


class ByteDrivenClock(FakeClock):
    """Fake time that moves on only after the connected port delivered more bytes.

    So every watchdog check sees fresh bytes, as on a port that never stops sending, and the
    test does not depend on how fast the real socket is compared with the fake clock.
    """

    def __init__(self) -> None:
        super().__init__()
        self.manager: ConnectionManager | None = None

    async def sleep(self, seconds: float) -> None:
        protocol = self.manager.protocol if self.manager is not None else None
        if protocol is not None and protocol.transport is not None:
            seen = protocol.bytes_received
            async with asyncio.timeout(10):
                while protocol.bytes_received == seen and protocol.transport is not None:
                    await asyncio.sleep(0.001)
        await super().sleep(seconds)


class Meter:
    """A TCP peer: garbage on its first ``garbage_connections`` connections, then frames."""

    def __init__(self, garbage_connections: int) -> None:
        self.garbage_connections = garbage_connections
        self.connections = 0
        self.rng = random.Random(7)

    async def __call__(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        garbage = self.connections <= self.garbage_connections
        while True:
            writer.write(self.rng.randbytes(64) if garbage else AIDON_LIST1)
            await writer.drain()
            await asyncio.sleep(0.001)


async def _decode(queue: asyncio.Queue[bytes], decoder: AutoDecoder, frames: list[int]) -> None:
    while True:
        content = await queue.get()
        frames[0] += 1  # a good frame, whether it decodes or not (as the daemon counts)
        with contextlib.suppress(Han2MqttError):
            decoder.feed(content)


async def _run(meter: Meter, until, caplog) -> tuple[ConnectionManager, list[tuple[int, str]]]:
    caplog.set_level(logging.DEBUG, logger="han2mqtt.io.reconnect")
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    decoder = AutoDecoder()
    frames = [0]
    clock = ByteDrivenClock()
    async with tcp_meter(meter) as (_, port):
        manager = ConnectionManager(
            lambda: create_tcp_frame_content_connection(
                queue, None, "127.0.0.1", port, reader=ContentReader("auto")
            ),
            back_off=BackOff(1, 1, rng=lambda: 1.0),
            watchdog_timeout=WATCHDOG,
            clock=clock,
            progress=lambda: frames[0],
            source=f"tcp 127.0.0.1:{port}",
        )
        clock.manager = manager
        consumer = asyncio.create_task(_decode(queue, decoder, frames))
        task = asyncio.create_task(manager.connect_loop())
        async with asyncio.timeout(60):
            while not until(manager, clock):
                await asyncio.sleep(0.005)
        manager.close()
        await task
        consumer.cancel()
    log = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "han2mqtt.io.reconnect"]
    return manager, log


async def test_a_port_that_sends_only_garbage_is_reconnected_and_named_once(caplog):
    meter = Meter(garbage_connections=1_000)
    manager, log = await _run(meter, lambda m, _: m.stats.watchdog_timeouts >= 3, caplog)
    assert manager.stats.connects >= 3
    assert meter.connections >= 3
    warnings = [message for level, message in log if level >= logging.WARNING]
    assert len(warnings) == 1, log  # once per outage, not once per reconnect
    match = _LOST.fullmatch(warnings[0])
    assert match is not None, warnings[0]
    assert int(match.group(1)) > 0
    assert sum(_LOST.fullmatch(m) is not None for level, m in log if level == logging.DEBUG) >= 2
    established = [level for level, m in log if m == "meter connection established"]
    assert established[0] == logging.INFO
    assert set(established[1:]) == {logging.DEBUG}


async def test_frames_that_decode_end_the_outage_and_keep_the_watchdog_quiet(caplog):
    meter = Meter(garbage_connections=2)

    def long_after_recovery(manager: ConnectionManager, clock: FakeClock) -> bool:
        return manager.stats.connects >= 3 and clock.now > 100 * WATCHDOG

    manager, log = await _run(meter, long_after_recovery, caplog)
    assert manager.stats.watchdog_timeouts == 2
    assert manager.stats.connects == 3
    recovered = [(level, m) for level, m in log if m.startswith("valid frames again")]
    assert len(recovered) == 1
    assert recovered[0][0] == logging.INFO
    assert re.fullmatch(r"valid frames again from tcp 127\.0\.0\.1:\d+", recovered[0][1])


async def test_without_a_progress_counter_bytes_still_feed_the_watchdog(caplog):
    # The library's ConnectionManager keeps its byte watchdog for users without a decoder.
    caplog.set_level(logging.DEBUG, logger="han2mqtt.io.reconnect")
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    clock = ByteDrivenClock()
    async with tcp_meter(Meter(garbage_connections=1_000)) as (_, port):
        manager = ConnectionManager(
            lambda: create_tcp_frame_content_connection(queue, None, "127.0.0.1", port),
            watchdog_timeout=WATCHDOG,
            clock=clock,
        )
        clock.manager = manager
        task = asyncio.create_task(manager.connect_loop())
        async with asyncio.timeout(60):
            while clock.now < 100 * WATCHDOG:
                await asyncio.sleep(0.005)
        manager.close()
        await task
    assert manager.stats.watchdog_timeouts == 0
    assert manager.stats.connects == 1
