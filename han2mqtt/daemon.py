"""The daemon's wiring: the event loop, its tasks, signals, clocks and supervisors.

:func:`run_daemon` connects the configured source (through a
:class:`~han2mqtt.io.ConnectionManager`) to a :class:`~han2mqtt.bridge.Bridge` and its publisher,
runs the housekeeping (availability expiry, ``bridge/info``, systemd watchdog, heartbeat file) and
stops cleanly on SIGTERM/SIGINT/SIGHUP.  It holds no decoding or accounting logic of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from han2mqtt import stopsignals
from han2mqtt._version import __version__
from han2mqtt.bridge import Bridge, Publisher
from han2mqtt.config import Settings
from han2mqtt.errors import StateError, TransportError
from han2mqtt.health import notify, watchdog_interval, write_heartbeat
from han2mqtt.io import (
    BackOff,
    ConnectionManager,
    ConnectionState,
    FrameReader,
    create_serial_frame_content_connection,
    create_tcp_frame_content_connection,
)
from han2mqtt.io.relay import Delivery, MqttSource, QueueWriter, RelayFeeder, replay_file
from han2mqtt.mqtt.publisher import MqttPublisher
from han2mqtt.protocol.relay import RelayDemux
from han2mqtt.protocol.stream import ContentReader
from han2mqtt.simulator import serve_demo
from han2mqtt.statefile import STATE_FILE, move_aside, read_state, state_directory, write_state

if TYPE_CHECKING:
    from han2mqtt.web import StatusPage

__all__ = ["describe_source", "run_daemon", "source_factory"]

_LOGGER = logging.getLogger("han2mqtt")
_HOUSEKEEPING_PERIOD = 1.0
_DEMO_GRACE = 0.5
"""Seconds the demo waits after its meters' last frame before it stops."""
_HA_RESEND_DELAY = (1.0, 5.0)
_REPLAY_WAIT = 0.1
"""Seconds between looks at the broker connection before a replay starts."""
STATE_SAVE_INTERVAL = 60.0
"""Seconds between writes of the energy state file (and once more at stop)."""


def source_factory(
    settings: Settings,
    queue: asyncio.Queue[Any],
    reader: Callable[[], FrameReader] | None = None,
) -> Callable[[], Any]:
    """A connection factory for the configured source.

    Each connection reads with a fresh ``reader()`` (``han2mqtt record`` passes one that writes
    the raw bytes down); by default a :class:`ContentReader` for ``source.format``.
    """
    source = settings.source
    framing = source.format
    if reader is None:

        def reader() -> FrameReader:
            return ContentReader(framing, octet_stuffing=source.octet_stuffing)

    if source.type == "serial":
        return lambda: create_serial_frame_content_connection(
            queue,
            None,
            url=source.device,
            baudrate=source.baudrate,
            parity=source.parity,
            bytesize=source.bytesize,
            stopbits=source.stopbits,
            reader=reader(),
        )
    if source.host is None or source.port is None:
        raise TransportError(f"source.type {source.type} needs source.host and source.port")
    host, port = source.host, source.port
    return lambda: create_tcp_frame_content_connection(queue, None, host, port, reader=reader())


async def _consume(bridge: Bridge, queue: asyncio.Queue[bytes | Delivery]) -> None:
    while True:
        item = await queue.get()
        with _survive(bridge, "frame"):
            if isinstance(item, Delivery):
                bridge.handle_content(item.content, item.received_at, item.source)
            else:
                bridge.handle_content(item)
        queue.task_done()
        await bridge.publisher.drain()
        # With frames queued, get() returns without yielding: one turn of the loop per frame
        # lets the socket take this frame's messages while the next one is decoded, instead of
        # decoding a whole backlog first and then writing it (the broker idle meanwhile).
        await asyncio.sleep(0)


class _ReaderTotals:
    """A reader factory that keeps the bad-frame counts of every reader it made.

    Each connection reads with a fresh reader; its count must survive the connection.
    """

    def __init__(self, settings: Settings) -> None:
        self._source = settings.source
        self._current: ContentReader | None = None
        self._closed = 0

    def __call__(self) -> FrameReader:
        if self._current is not None:
            self._closed += self._current.stats.bad
        source = self._source
        self._current = ContentReader(source.format, octet_stuffing=source.octet_stuffing)
        return self._current

    def bad(self) -> int:
        """Frames rejected so far (bad FCS/HCS, CRC or checksum, cut short)."""
        current = self._current.stats.bad if self._current is not None else 0
        return self._closed + current


class _StateKeeper:
    """The energy state file: read at start, written at most once a minute and at stop."""

    def __init__(self, bridge: Bridge, path: Path, *, enabled: bool = True) -> None:
        self._bridge = bridge
        self.path = path
        self._enabled = enabled
        """False for the demo: its sample frames are no meter's history to keep."""
        self._saved_frames = 0
        self._next = time.monotonic() + STATE_SAVE_INTERVAL
        self._failing = False

    def load(self) -> None:
        """Restore the bridge's energy stage; a bad file is moved aside, never fatal."""
        if not self._enabled:
            return
        try:
            data = read_state(self.path)
            if data is not None:
                self._bridge.restore_energy(data)
                _LOGGER.info("energy state restored from %s", self.path)
        except (OSError, StateError) as exc:
            moved = move_aside(self.path)
            where = f"moved to {moved}" if moved else "left in place"
            _LOGGER.warning(
                "state file %s unusable (%s): %s; starting afresh", self.path, exc, where
            )

    def tick(self, now: float) -> None:
        """Write the file if a minute has passed and frames came since the last write."""
        if now >= self._next:
            self._next = now + STATE_SAVE_INTERVAL
            self.save()

    def save(self) -> None:
        """Write the file now (if anything changed); a failure is a warning once per outage."""
        if not self._enabled or self._bridge.frames == self._saved_frames:
            return
        try:
            write_state(self.path, self._bridge.energy_state())
        except OSError as exc:
            if not self._failing:
                _LOGGER.warning(
                    "cannot write the state file %s: %s (peaks and hour registers will not "
                    "survive a restart; set state.dir)",
                    self.path,
                    exc,
                )
            self._failing = True
            return
        self._failing = False
        self._saved_frames = self._bridge.frames


async def _housekeeping(
    bridge: Bridge,
    bad_frames: Callable[[], int] | None = None,
    keeper: _StateKeeper | None = None,
) -> None:
    settings = bridge.settings
    ping = watchdog_interval()
    next_ping = 0.0
    last_decoded = bridge.decoder.stats.decoded
    while True:
        now = time.monotonic()
        with _survive(bridge, "housekeeping"):
            bridge.expire()
            if bad_frames is not None:
                bridge.count_bad_frames(bad_frames())
            bridge.publish_info_when_due()
        if ping is not None and now >= next_ping and bridge.healthy():
            _notify("WATCHDOG=1")
            next_ping = now + ping
        # A frame that decodes, not merely arrives: garbage or a wrong key is not health.
        decoded = bridge.decoder.stats.decoded
        if settings.health.heartbeat_file is not None and decoded != last_decoded:
            last_decoded = decoded
            _heartbeat(settings.health.heartbeat_file)
        if keeper is not None:
            keeper.tick(now)
        await asyncio.sleep(_HOUSEKEEPING_PERIOD)


_warned: set[str] = set()


@contextlib.contextmanager
def _survive(bridge: Bridge, what: str) -> Iterator[None]:
    """A bug met while handling one frame (or one housekeeping step) costs that frame only.

    The error is counted (``internal_errors`` in ``bridge/info``) and logged with its traceback
    once per kind (exception type and where it was raised); the task group, and with it the
    daemon, keeps going.
    """
    try:
        yield
    except BrokenPipeError:
        raise  # printing to a pipe whose reader has gone (demo | head): the command ends
    except Exception as exc:
        bridge.internal_errors += 1
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        kind = f"{what}:{type(exc).__qualname__}:{frame.filename}:{frame.lineno}"
        if kind not in _warned:
            _warned.add(kind)
            _LOGGER.exception("internal error while handling a %s (counted, and skipped)", what)


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        _LOGGER.warning(message, *args)


def _notify(message: str) -> None:
    """Tell systemd; a broken notify socket is worth a warning, not the daemon's life."""
    try:
        notify(message)
    except TransportError as exc:
        _warn_once("notify", "%s", exc)


def _heartbeat(path: Path) -> None:
    try:
        write_heartbeat(path)
    except OSError as exc:
        _warn_once("heartbeat", "cannot write the heartbeat file %s: %s", path, exc)


async def run_daemon(
    settings: Settings,
    *,
    publisher: Publisher | None = None,
    stop: asyncio.Event | None = None,
    frame_limit: int | None = None,
) -> int:
    """Run until SIGTERM/SIGINT, ``stop``, or ``frame_limit`` frames; return the exit code."""
    stop = stop or asyncio.Event()
    demo: asyncio.Server | None = None
    if settings.source.type == "demo":
        loop = asyncio.get_running_loop()
        source = settings.source

        def finished() -> None:
            loop.call_later(_DEMO_GRACE, stop.set)

        demo = await serve_demo(
            interval=source.demo_interval,
            speed=source.demo_speed,
            hours=source.demo_hours,
            on_done=finished,  # the simulated time is over: what was sent is handled, then stop
        )
        port = demo.sockets[0].getsockname()[1]
        settings = settings.model_copy(
            update={
                "source": settings.source.model_copy(update={"host": "127.0.0.1", "port": port})
            }
        )
    try:
        return await _run(settings, publisher, stop, frame_limit)
    finally:
        if demo is not None:
            demo.close()
            await demo.wait_closed()


def _handle_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM, SIGINT and SIGHUP set ``stop`` (SIGHUP too: a clean stop, there is no reload)."""
    loop = asyncio.get_running_loop()
    for signum in stopsignals.STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    if stopsignals.requested():  # one arrived while the daemon was starting
        stop.set()


async def _run(
    settings: Settings, publisher: Publisher | None, stop: asyncio.Event, frame_limit: int | None
) -> int:
    _handle_stop_signals(stop)
    mqtt: Publisher = publisher if publisher is not None else MqttPublisher(settings.mqtt)
    bridge = Bridge(settings, mqtt)
    path = state_directory(settings.state.dir) / STATE_FILE
    keeper = _StateKeeper(bridge, path, enabled=settings.source.type != "demo")
    keeper.load()
    if isinstance(mqtt, MqttPublisher):
        mqtt.on_connected = bridge.on_broker_connected
    if frame_limit is not None:

        def count() -> None:
            if bridge.frames >= frame_limit:
                stop.set()

        bridge.on_frame = count
    queue: asyncio.Queue[bytes | Delivery] = asyncio.Queue(maxsize=256)
    readers = _ReaderTotals(settings)
    manager = _stream_source(bridge, queue, readers)
    if settings.health.heartbeat_file is not None:
        # One left by an earlier run (a container's /tmp survives a restart) is not our health.
        with contextlib.suppress(OSError):
            settings.health.heartbeat_file.unlink(missing_ok=True)
    await mqtt.start()
    _subscribe(mqtt, bridge)
    _LOGGER.info("han2mqtt %s started; source %s", __version__, _describe_source(settings))
    page = await _start_page(bridge, manager)
    try:
        async with asyncio.TaskGroup() as tasks:
            source_task = tasks.create_task(
                manager.connect_loop() if manager else _relay_source(bridge, queue, stop),
                name="source",
            )
            workers = [
                tasks.create_task(_consume(bridge, queue), name="decode"),
                tasks.create_task(
                    _housekeeping(bridge, readers.bad if manager else None, keeper),
                    name="housekeeping",
                ),
            ]
            _notify("READY=1")
            await stop.wait()
            _LOGGER.info("stopping")
            _notify("STOPPING=1")
            if manager is not None:
                manager.close()
            await source_task
            for worker in workers:
                worker.cancel()
    finally:
        await _stop_page(page)
        keeper.save()
        try:
            bridge.on_stop()  # every meter offline, before the bridge itself
        finally:
            await _stop_publisher(mqtt)
    return 0


async def _stop_publisher(mqtt: Publisher) -> None:
    """Publish ``offline`` and disconnect; a failure is logged, not raised."""
    try:
        await mqtt.stop()
    except BrokenPipeError:
        raise  # printing to a pipe whose reader has gone (demo | head): the command exits
    except (OSError, RuntimeError, TimeoutError) as exc:
        _LOGGER.warning("MQTT did not close cleanly: %s", exc)


def _stream_source(
    bridge: Bridge, queue: asyncio.Queue[Any], readers: Callable[[], FrameReader]
) -> ConnectionManager | None:
    """The manager of a serial or TCP source; None for the MQTT and file sources."""
    source = bridge.settings.source
    if source.type in ("mqtt", "file"):
        return None
    return ConnectionManager(
        source_factory(bridge.settings, queue, readers),
        back_off=BackOff(source.reconnect_min, source.reconnect_max),
        watchdog_timeout=source.watchdog,
        connect_timeout=source.connect_timeout,
        on_state_change=bridge.on_source_state,
        # The watchdog waits for good frames: a port that sends only noise is reopened too, one
        # whose frames do not decode (a wrong key) is not: the decode errors say what is wrong.
        progress=lambda: bridge.frames,
        source=_describe_source(bridge.settings),
    )


async def _relay_source(bridge: Bridge, queue: asyncio.Queue[Any], stop: asyncio.Event) -> None:
    """The MQTT relay source until ``stop``, or a recording's replay (which then sets ``stop``)."""
    source = bridge.settings.source
    feeder = RelayFeeder(RelayDemux(source.payload, source.max_topics), bridge.source_counters)
    if source.type == "mqtt":
        writer = QueueWriter(queue, bridge.source_counters)

        def received(topic: str, payload: bytes, received_at: datetime) -> None:
            for delivery in feeder.feed(topic, payload, received_at):
                writer.put(delivery)

        await MqttSource(bridge.settings, received, bridge.on_source_state).run(stop)
        return
    replay = asyncio.create_task(_replay(bridge, feeder, queue), name="replay")
    stopped = asyncio.create_task(stop.wait(), name="replay-stop")
    await asyncio.wait((replay, stopped), return_when=asyncio.FIRST_COMPLETED)
    for task in (replay, stopped):
        task.cancel()
    await asyncio.gather(replay, stopped, return_exceptions=True)
    bridge.on_source_state(ConnectionState.CLOSED)
    stop.set()


async def _replay(bridge: Bridge, feeder: RelayFeeder, queue: asyncio.Queue[Any]) -> None:
    """Replay ``source.path`` once the broker is there, and wait until all is published."""
    source = bridge.settings.source
    while not bridge.publisher.connected:  # noqa: ASYNC110 - a property, nothing to await
        # Readings queued for a broker not there yet replace each other: the day would not
        # be given again in full.
        await asyncio.sleep(_REPLAY_WAIT)
    bridge.on_source_state(ConnectionState.CONNECTED)
    try:
        chunks = await replay_file(source, feeder, queue)
    except TransportError as exc:
        _LOGGER.error("%s", exc)  # noqa: TRY400 - one line, the reason says it all
        return
    await queue.join()  # every content decoded and published
    _LOGGER.info("replayed %d chunk(s) from %s; stopping", chunks, source.path)


async def _start_page(bridge: Bridge, manager: ConnectionManager | None) -> StatusPage | None:
    """The status page (``web.enabled``), or None; a taken port costs the page, not the bridge."""
    web = bridge.settings.web
    if not web.enabled:
        return None
    from han2mqtt.web import StatusPage  # noqa: PLC0415 - aiohttp is imported only when it serves

    page = StatusPage(web, bridge, manager, description=_describe_source(bridge.settings))
    try:
        await page.start()
    except OSError as exc:
        # A one-line reason, no traceback.
        _LOGGER.error("status page off: cannot listen on %s:%s: %s", web.host, web.port, exc)  # noqa: TRY400
        return None
    return page


async def _stop_page(page: StatusPage | None) -> None:
    if page is not None:
        await page.stop()


def _subscribe(mqtt: Publisher, bridge: Bridge) -> None:
    """What the bridge listens to: Home Assistant's status and its own retained discovery."""
    ha = bridge.settings.homeassistant
    if not ha.discovery:
        return
    mqtt.subscribe(f"{ha.prefix}/status", _HomeAssistantWatch(bridge))
    if ha.mode == "device":
        mqtt.subscribe(f"{ha.prefix}/device/+/config", bridge.on_discovery_config)


class _HomeAssistantWatch:
    """Home Assistant restarted (``<prefix>/status`` → ``online``): re-send discovery.

    After a short random delay, so that many bridges do not answer in the same instant.
    """

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self._task: asyncio.Task[None] | None = None

    def __call__(self, _topic: str, payload: bytes, _retained: bool) -> None:
        if payload.strip().lower() != b"online":
            return
        if self._task is not None and not self._task.done():
            return
        delay = random.uniform(*_HA_RESEND_DELAY)  # noqa: S311 - spreading load, not security
        self._task = asyncio.get_running_loop().create_task(self._resend_later(delay))

    async def _resend_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._bridge.resend_all()


def _describe_source(settings: Settings) -> str:
    source = settings.source
    if source.type == "serial":
        line = f"{source.bytesize}{source.parity}{source.stopbits:g}"
        return f"serial {source.device} {source.baudrate} {line}"
    if source.type == "tcp":
        return f"tcp {source.host}:{source.port}"
    if source.type == "mqtt":
        group = f" (shared group {source.shared_group})" if source.shared_group else ""
        return f"mqtt {source.topic}{group}"
    if source.type == "file":
        return f"file {source.path} at speed {source.speed}"
    return "simulated demo meters"


describe_source = _describe_source
"""The source in a few words (the start-up log line, a recording's header)."""
