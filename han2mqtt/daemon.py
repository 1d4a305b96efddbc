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
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from han2mqtt import stopsignals
from han2mqtt._version import __version__
from han2mqtt.bridge import Bridge, Publisher
from han2mqtt.config import DEFAULT_CLIENT_ID, Settings
from han2mqtt.errors import ConfigError, StateError, TransportError
from han2mqtt.health import notify, watchdog_interval, write_heartbeat
from han2mqtt.history.settings import history_path, retention
from han2mqtt.history.writer import HistoryWriter
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
from han2mqtt.statefile import (
    STATE_FILE,
    check_writable,
    move_aside,
    read_state,
    state_directory,
    write_state,
)

if TYPE_CHECKING:
    from han2mqtt.web import StatusPage

__all__ = ["describe_source", "replay_client_id", "run_daemon", "source_factory"]

EXIT_FAILED = 1
"""``run`` ends with this when it cannot start (the history database is another process's)."""
_LOGGER = logging.getLogger("han2mqtt")
_HOUSEKEEPING_PERIOD = 1.0
_DEMO_QUIET = 1.0
"""Seconds without a frame, after the simulated time is over, that end the demo."""
_DEMO_POLL = 0.1
_DEMO_MAX_WAIT = 300.0
"""Seconds the demo waits at most for the bridge to catch up with the simulator."""
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


async def _consume(
    bridge: Bridge,
    queue: asyncio.Queue[bytes | Delivery],
    gate: Callable[[], Awaitable[None]] | None = None,
) -> None:
    while True:
        item = await queue.get()
        with _survive(bridge, "frame"):
            if isinstance(item, Delivery):
                bridge.handle_content(item.content, item.received_at, item.source)
            else:
                bridge.handle_content(item)
        if gate is not None:
            await gate()
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
            self._unusable(self.path, exc)
        try:
            resolutions = read_state(self.resolution_path)
            if resolutions is not None:
                self._bridge.restore_resolution(resolutions)
        except (OSError, ValueError) as exc:
            self._unusable(self.resolution_path, exc)

    @property
    def resolution_path(self) -> Path:
        """Kamstrup register resolutions decided from evidence (han2mqtt.energy.resolution)."""
        return self.path.with_name("energy-resolution.json")

    @staticmethod
    def _unusable(path: Path, exc: Exception) -> None:
        """A bad file is moved aside and never fatal."""
        moved = move_aside(path)
        where = f"moved to {moved}" if moved else "left in place"
        _LOGGER.warning("state file %s unusable (%s): %s; starting afresh", path, exc, where)

    def tick(self, now: float) -> None:
        """Write the file if a minute has passed and frames came since the last write."""
        if now >= self._next:
            self._next = now + STATE_SAVE_INTERVAL
            self.save()

    def save(self) -> None:
        """Write the file now (if anything changed); a failure is a warning once per outage."""
        if not self._enabled or self._bridge.frames == self._saved_frames:
            return
        if self._bridge.resolution_changed:
            try:
                write_state(self.resolution_path, self._bridge.resolution_state())
                self._bridge.resolution_changed = False
            except OSError as exc:
                if not self._failing:  # once per outage, as for the state file below
                    _LOGGER.warning("cannot write %s: %s", self.resolution_path, exc)
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
    ending: _DemoEnd | None = None
    if settings.source.type == "demo":
        source = settings.source
        ending = _DemoEnd(stop)
        demo = await serve_demo(
            interval=source.demo_interval,
            speed=source.demo_speed,
            hours=source.demo_hours,
            on_done=ending.simulation_over,  # what was sent is handled, then the demo stops
        )
        port = demo.sockets[0].getsockname()[1]
        settings = settings.model_copy(
            update={
                "source": settings.source.model_copy(update={"host": "127.0.0.1", "port": port})
            }
        )
    try:
        return await _run(settings, publisher, stop, frame_limit, ending)
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


def _bridge(
    settings: Settings, mqtt: Publisher, stop: asyncio.Event, frame_limit: int | None
) -> tuple[Bridge, _StateKeeper, HistoryWriter | None]:
    """The bridge with its energy state restored, the keeper of that state, the ledger's writer.

    Raises:
        StateError: another process holds the history database, or a newer han2mqtt wrote it.
    """
    bridge = Bridge(settings, mqtt)
    path = state_directory(settings.state.dir) / STATE_FILE
    keeper = _StateKeeper(bridge, path, enabled=settings.source.type != "demo")
    history = _open_history(bridge)
    keeper.load()
    if isinstance(mqtt, MqttPublisher):
        mqtt.on_connected = bridge.on_broker_connected
    _limit_frames(bridge, stop, frame_limit)
    return bridge, keeper, history


def _clear_heartbeat(settings: Settings) -> None:
    """One left by an earlier run (a container's /tmp survives a restart) is not our health."""
    if settings.health.heartbeat_file is not None:
        with contextlib.suppress(OSError):
            settings.health.heartbeat_file.unlink(missing_ok=True)


class _DemoEnd:
    """Stops the demo once its simulated time is over and the bridge has read every frame sent.

    A fixed grace is not enough where the bridge runs far slower than the simulator (a Pi, or
    an ARM test under emulation): it stops when no frame has come for :data:`_DEMO_QUIET` s.
    """

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._bridge: Bridge | None = None
        self._task: asyncio.Task[None] | None = None

    def watch(self, bridge: Bridge) -> None:
        """The bridge whose frames tell when the line has gone quiet."""
        self._bridge = bridge

    def simulation_over(self) -> None:
        """The simulator sent its last frame."""
        self._task = asyncio.get_running_loop().create_task(self._quiet(), name="demo-end")

    async def _quiet(self) -> None:
        seen, quiet_since = -1, 0.0
        deadline = time.monotonic() + _DEMO_MAX_WAIT
        while time.monotonic() < deadline:
            frames = -1 if self._bridge is None else self._bridge.frames
            if frames != seen:
                seen, quiet_since = frames, time.monotonic()
            elif time.monotonic() - quiet_since >= _DEMO_QUIET:
                break
            await asyncio.sleep(_DEMO_POLL)
        self._stop.set()


async def _run(
    settings: Settings,
    publisher: Publisher | None,
    stop: asyncio.Event,
    frame_limit: int | None,
    ending: _DemoEnd | None = None,
) -> int:
    _handle_stop_signals(stop)
    _preflight(settings)
    settings = replay_client_id(settings)
    mqtt: Publisher = publisher if publisher is not None else MqttPublisher(settings.mqtt)
    try:
        bridge, keeper, history = _bridge(settings, mqtt, stop, frame_limit)
    except StateError as exc:
        _LOGGER.error("%s", exc)  # noqa: TRY400 - one line, the reason says it all
        return EXIT_FAILED
    if ending is not None:
        ending.watch(bridge)
    queue: asyncio.Queue[bytes | Delivery] = asyncio.Queue(maxsize=256)
    readers = _ReaderTotals(settings)
    manager = _stream_source(bridge, queue, readers)
    _clear_heartbeat(settings)
    prices = _Prices.start(settings, bridge, mqtt)
    page = await _start_page(bridge, manager)  # before MQTT: a taken port ends the start
    try:
        await mqtt.start()
    except BaseException:
        await _stop_page(page)
        raise
    _subscribe(mqtt, bridge)
    if prices is not None:
        prices.subscribe()
    _LOGGER.info("han2mqtt %s started; source %s", __version__, _describe_source(settings))
    try:
        async with asyncio.TaskGroup() as tasks:
            source_task = tasks.create_task(
                manager.connect_loop() if manager else _relay_source(bridge, queue, stop),
                name="source",
            )
            gate = None if prices is None else prices.launch(tasks)
            workers = [
                tasks.create_task(_consume(bridge, queue, gate), name="decode"),
                tasks.create_task(
                    _housekeeping(bridge, readers.bad if manager else None, keeper),
                    name="housekeeping",
                ),
                *(() if prices is None or prices.task is None else (prices.task,)),
                tasks.create_task(_write_history(history), name="history"),
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
        if history is not None:
            history.close()
        try:
            bridge.on_stop()  # every meter offline, before the bridge itself
        finally:
            await _stop_publisher(mqtt)
    return 0


class _Prices:
    """The money stage's wiring: price table, cache, fetcher, and the area's retained prices."""

    REPLAY_WAIT = 30.0
    """Seconds a replay waits at most for a day's prices (a live meter never waits)."""

    def __init__(self, settings: Settings, bridge: Bridge, mqtt: Publisher) -> None:
        from han2mqtt.history import HISTORY_FILE, open_database  # noqa: PLC0415 - when priced
        from han2mqtt.history.prices import PriceCache  # noqa: PLC0415
        from han2mqtt.io.prices import PriceFetcher  # noqa: PLC0415
        from han2mqtt.money import Money, currency_of  # noqa: PLC0415
        from han2mqtt.prices.areas import area  # noqa: PLC0415
        from han2mqtt.prices.table import PriceTable  # noqa: PLC0415

        assert settings.prices.area is not None
        self.settings = settings
        self.mqtt = mqtt
        table = PriceTable(
            area(settings.prices.area), currency_of(settings), settings.prices.resolution
        )
        self.cache: PriceCache | None = None
        try:
            path = state_directory(settings.state.dir) / HISTORY_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            self.cache = PriceCache(open_database(path))
        except (StateError, OSError) as exc:
            _LOGGER.warning("prices are not cached: %s", exc)
        self.fetcher = PriceFetcher(settings, table, self.cache, on_day=self._publish)
        self.money = Money(
            settings,
            table,
            want=self._want,
            restore=self.cache.load_energy if self.cache else None,
            persist=self._persist if self.cache else None,
        )
        bridge.money = self.money
        bridge.prices_status = self.fetcher.status
        self.task: asyncio.Task[None] | None = None
        self._published: date | None = None

    @classmethod
    def start(cls, settings: Settings, bridge: Bridge, mqtt: Publisher) -> _Prices | None:
        """The money stage when ``prices.source`` is set, else None."""
        return None if settings.prices.source == "none" else cls(settings, bridge, mqtt)

    def launch(self, tasks: asyncio.TaskGroup) -> Callable[[], Awaitable[None]] | None:
        """Start the fetcher (:attr:`task`); the replay gate when the source is a recording."""
        self.task = tasks.create_task(self.fetcher.run(), name="prices")
        return self.replay_gate if self.settings.source.type == "file" else None

    def subscribe(self) -> None:
        """``prices.topic`` for the ``mqtt`` source."""
        topic = self.settings.prices.topic
        if topic is not None and "mqtt" in (
            self.settings.prices.source,
            *self.settings.prices.fallback,
        ):
            self.mqtt.subscribe(topic, self._on_mqtt)

    def _on_mqtt(self, _topic: str, payload: bytes, _retained: bool) -> None:
        # One number is the price "now": now on the meter's clock, which prices are looked up by.
        self.fetcher.on_mqtt(payload, self.money.latest or datetime.now(UTC))

    def _want(self, day: date, ahead: bool) -> None:
        self.fetcher.want(day, ahead)
        if not ahead and (self._published is None or day > self._published):
            self._published = day
            self._publish(day)  # the window of today and tomorrow moved on

    def _persist(
        self, meter: str, since: datetime, energy: dict[datetime, tuple[float, float]]
    ) -> None:
        assert self.cache is not None
        try:
            self.cache.store_energy(meter, since, energy)
        except StateError as exc:
            _warn_once("cost-energy", "%s", exc)

    def _publish(self, _day: date) -> None:
        from han2mqtt.money import area_prices_message  # noqa: PLC0415

        today = self.money.today
        if today is None:
            return
        message = area_prices_message(
            self.settings.mqtt.base_topic, self.money.pricing, (today, today + timedelta(days=1))
        )
        if message is not None:
            self.mqtt.publish(message)

    async def replay_gate(self) -> None:
        """A replay waits for the prices of the day it reached (bounded)."""
        today = self.money.today
        if today is not None and not self.fetcher.table.has(today):
            await self.fetcher.settled(today, self.REPLAY_WAIT)


def _limit_frames(bridge: Bridge, stop: asyncio.Event, frame_limit: int | None) -> None:
    """Stop after ``frame_limit`` frames (tests, benchmarks)."""
    if frame_limit is None:
        return

    def count() -> None:
        if bridge.frames >= frame_limit:
            stop.set()

    bridge.on_frame = count


async def _write_history(history: HistoryWriter | None) -> None:
    """The history writer's task (nothing to do without a ledger)."""
    if history is not None:
        await history.run()


def _open_history(bridge: Bridge) -> HistoryWriter | None:
    """The ledger's writer (``history.enabled``, not for the demo), fed by the bridge.

    Raises:
        StateError: another process holds the database, or a newer han2mqtt wrote it.
    """
    settings = bridge.settings
    if not settings.history.enabled or settings.source.type == "demo":
        return None
    writer = HistoryWriter(
        history_path(settings), settings.meter.zone(), retention(settings.history)
    )
    writer.open()
    bridge.interval_listeners.append(writer.submit)
    bridge.history_stats = writer.stats
    return writer


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


def replay_client_id(settings: Settings) -> Settings:
    """A replay (``source.type: file``) with the default client id gets one of its own.

    The broker closes the older of two connections with one client id: a replay beside the live
    bridge, both ``han2mqtt``, would throw each other off every second.
    """
    mqtt = settings.mqtt
    if settings.source.type != "file" or mqtt.client_id != DEFAULT_CLIENT_ID:
        return settings
    own = mqtt.model_copy(update={"client_id": f"{DEFAULT_CLIENT_ID}-replay"})
    return settings.model_copy(update={"mqtt": own})


def _preflight(settings: Settings) -> None:
    """What can be checked before anything starts is checked now: a wrong setting exits 2.

    Raises:
        ConfigError: the recording of ``source.type: file`` cannot be read, or the state
            directory cannot be written (found at start, not at the first save an hour later).
    """
    source = settings.source
    if source.type == "file" and source.path is not None:
        try:
            with source.path.open("rb"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"source.path: cannot read the recording {source.path}: {exc.strerror}"
            ) from exc
    if source.type != "demo":
        directory = state_directory(settings.state.dir)
        try:
            check_writable(directory)
        except OSError as exc:
            raise ConfigError(
                f"state.dir: cannot write in {directory}: {exc.strerror} (set state.dir to a "
                "directory this user may write, or give it one: a volume on /data in Docker)"
            ) from exc


async def _start_page(bridge: Bridge, manager: ConnectionManager | None) -> StatusPage | None:
    """The status page (``web.enabled``), or None.

    Raises:
        ConfigError: the port cannot be listened on (taken, or not allowed): exit 2 at start.
    """
    web = bridge.settings.web
    if not web.enabled:
        return None
    from han2mqtt.web import StatusPage  # noqa: PLC0415 - aiohttp is imported only when it serves

    page = StatusPage(web, bridge, manager, description=_describe_source(bridge.settings))
    try:
        await page.start()
    except OSError as exc:
        raise ConfigError(
            f"web.port: cannot listen on {web.host}:{web.port}: {exc.strerror or exc} (another "
            "program has it: choose another web.port, or web.enabled: false)"
        ) from exc
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
