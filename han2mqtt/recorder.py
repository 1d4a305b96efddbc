"""``han2mqtt record``: write what the configured source delivers, raw, with receive times.

The recording (format: :mod:`han2mqtt.protocol.recording`) holds the bytes before any framing or
decoding, so it shows a problem whatever layer it is in, and ``source.type: file`` replays it
through the whole daemon.  A serial or TCP source is recorded read by read; an MQTT source message
by message, with its topic.  Every line is flushed as it is written: a recording cut short by
Ctrl-C or a crash is still a valid one.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from han2mqtt._version import __version__
from han2mqtt.config import Settings
from han2mqtt.daemon import describe_source, source_factory
from han2mqtt.errors import ConfigError
from han2mqtt.io import BackOff, ConnectionManager
from han2mqtt.io.relay import MqttSource
from han2mqtt.protocol.recording import Chunk, format_line, header_lines
from han2mqtt.simulator import serve_demo

__all__ = ["RecordStats", "record"]

_PROGRESS_PERIOD = 0.5


@dataclass(slots=True)
class RecordStats:
    """What was recorded so far."""

    chunks: int = 0
    octets: int = 0
    started: float = 0.0


class _Writer:
    """Write chunks as lines, flushed one by one."""

    def __init__(self, out: IO[str], stats: RecordStats) -> None:
        self._out = out
        self.stats = stats

    def write(self, data: bytes, topic: str | None = None) -> None:
        self._out.write(format_line(Chunk(datetime.now(UTC), data, topic)) + "\n")
        self._out.flush()
        self.stats.chunks += 1
        self.stats.octets += len(data)


class _RecordingReader:
    """A frame reader that frames nothing: it writes every chunk the port delivers."""

    def __init__(self, writer: _Writer) -> None:
        self._writer = writer

    def read(self, data_chunk: bytes) -> list[Any]:
        self._writer.write(bytes(data_chunk))
        return []


async def record(
    settings: Settings,
    out: IO[str],
    *,
    duration: float | None = None,
    progress: Callable[[RecordStats], None] | None = None,
) -> RecordStats:
    """Record the configured source into ``out`` for ``duration`` seconds, or until a signal.

    Raises:
        ConfigError: the source cannot be recorded (a file: copy it instead).
    """
    if settings.source.type == "file":
        raise ConfigError("source.type file is a recording already: copy the file")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    demo: asyncio.Server | None = None
    if settings.source.type == "demo":
        demo = await serve_demo(
            interval=settings.source.demo_interval,
            speed=settings.source.demo_speed,
            hours=settings.source.demo_hours,
        )
        port = demo.sockets[0].getsockname()[1]
        source = settings.source.model_copy(update={"host": "127.0.0.1", "port": port})
        settings = settings.model_copy(update={"source": source})
    for line in header_lines(f"han2mqtt {__version__}; source: {describe_source(settings)}"):
        out.write(line + "\n")
    out.write(f"# started: {datetime.now(UTC).isoformat(timespec='seconds')}\n")
    writer = _Writer(out, RecordStats(started=time.monotonic()))
    try:
        await _record_until(settings, writer, stop, duration, progress)
    finally:
        if demo is not None:
            demo.close()
            await demo.wait_closed()
    return writer.stats


async def _record_until(
    settings: Settings,
    writer: _Writer,
    stop: asyncio.Event,
    duration: float | None,
    progress: Callable[[RecordStats], None] | None,
) -> None:
    async with asyncio.TaskGroup() as tasks:
        if settings.source.type == "mqtt":
            # Beside a running bridge: a client id of its own, and every message, not a share
            # taken away from the group's members.
            plain = settings.source.model_copy(update={"shared_group": None})
            source = MqttSource(
                settings.model_copy(update={"source": plain}),
                lambda topic, payload, _at: writer.write(payload, topic),
                role="record",
            )
            tasks.create_task(source.run(stop), name="source")
            manager = None
        else:
            queue: asyncio.Queue[bytes] = asyncio.Queue()
            source_settings = settings.source
            manager = ConnectionManager(
                source_factory(settings, queue, lambda: _RecordingReader(writer)),
                back_off=BackOff(source_settings.reconnect_min, source_settings.reconnect_max),
                watchdog_timeout=source_settings.watchdog,
                connect_timeout=source_settings.connect_timeout,
            )
            tasks.create_task(manager.connect_loop(), name="source")
        deadline = None if duration is None else writer.stats.started + duration
        while not stop.is_set():
            if progress is not None:
                progress(writer.stats)
            timeout = _PROGRESS_PERIOD
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - time.monotonic()))
                if timeout <= 0:
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout)
        stop.set()
        if manager is not None:
            manager.close()
