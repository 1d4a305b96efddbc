"""The bridge daemon: meter port → frames → readings → MQTT topics and Home Assistant discovery.

:class:`Bridge` holds the decisions (which meter, which topics, when discovery and availability
change); :func:`run_daemon` wires it to a :class:`~han2mqtt.io.ConnectionManager`, a publisher,
signals and the supervisors (systemd notify, heartbeat file).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from han2mqtt._version import __version__
from han2mqtt.autodecoder import AutoDecoder
from han2mqtt.config import Settings
from han2mqtt.errors import ConfigError, DecodeError, TransportError
from han2mqtt.health import notify, watchdog_interval, write_heartbeat
from han2mqtt.io import (
    BackOff,
    ConnectionManager,
    ConnectionState,
    create_serial_frame_content_connection,
    create_tcp_frame_content_connection,
)
from han2mqtt.model import MeterReading
from han2mqtt.mqtt.discovery import (
    announces,
    device_topic,
    discovery_messages,
    is_ours,
    removal_messages,
    retained_components,
)
from han2mqtt.mqtt.publisher import Handler, MqttPublisher, PublisherStats
from han2mqtt.mqtt.topics import (
    OFFLINE,
    ONLINE,
    Message,
    availability_topic,
    bridge_info_topic,
    bridge_state_topic,
    messages_for_reading,
)
from han2mqtt.protocol.stream import ContentReader
from han2mqtt.simulator import load_samples, serve_frames
from han2mqtt.tracker import UNKNOWN_METER, MeterState, MeterTracker

__all__ = ["Bridge", "PrintPublisher", "Publisher", "run_daemon", "source_factory"]

_LOGGER = logging.getLogger("han2mqtt")
METER_ID_GRACE = 30.0
"""Seconds to hold back id-less frames (list 1) waiting for a list that names the meter."""
_DECODE_LOG_INTERVAL = 300.0
_HOUSEKEEPING_PERIOD = 1.0
_HA_RESEND_DELAY = (1.0, 5.0)


class Publisher(Protocol):
    """What the bridge needs of the MQTT side: :class:`MqttPublisher` or :class:`PrintPublisher`."""

    stats: PublisherStats

    @property
    def connected(self) -> bool:
        """Whether messages go out now."""
        ...

    async def start(self) -> None:
        """Begin publishing."""
        ...

    async def stop(self) -> None:
        """Publish ``offline`` and stop."""
        ...

    def publish(self, message: Message) -> None:
        """Publish or queue one message."""
        ...

    def subscribe(self, topic: str, callback: Handler) -> None:
        """Receive messages on ``topic``."""
        ...

    async def drain(self, high_water: int = ...) -> None:
        """Wait until the outgoing backlog is small."""
        ...


class PrintPublisher:
    """Print what would be published, one ``topic payload`` line each (as ``mosquitto_sub -v``)."""

    def __init__(self, base_topic: str, write: Callable[[str], object] = sys.stdout.write) -> None:
        self._base = base_topic
        self._write = write
        self.stats = PublisherStats()

    @property
    def connected(self) -> bool:
        """Always: printing never fails."""
        return True

    async def start(self) -> None:
        """Print what a connect publishes."""
        self.publish(Message(bridge_state_topic(self._base), ONLINE, 1, retain=True))

    async def stop(self) -> None:
        """Print what a clean disconnect publishes."""
        self.publish(Message(bridge_state_topic(self._base), OFFLINE, 1, retain=True))

    def publish(self, message: Message) -> None:
        """Print the message."""
        retained = " (retained)" if message.retain else ""
        self._write(f"{message.topic} {message.payload}{retained}\n")
        self.stats.published += 1

    def subscribe(self, topic: str, callback: Handler) -> None:
        """Nobody sends anything to a printer."""

    async def drain(self, high_water: int = 0) -> None:
        """Printing has no backlog."""


class Bridge:
    """Turns frame contents into MQTT messages; owns the per-meter state.

    Args:
        settings: the configuration.
        publisher: where messages go.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self._clock = clock
        encryption_key, authentication_key = settings.meter.key_bytes()
        self.decoder = AutoDecoder(
            settings.meter.type,
            encryption_key=encryption_key,
            authentication_key=authentication_key,
        )
        self.tracker = MeterTracker(settings.meter.offline_after, settings.meter.id, clock)
        self.frames = 0
        self.decode_errors = 0
        self.held_back = 0
        self.source_state = ConnectionState.CLOSED.value
        self.started = clock()
        self._first_frame: float | None = None
        self._last_decode_log = -_DECODE_LOG_INTERVAL
        self._errors_since_log = 0
        self._resend_task: asyncio.Task[None] | None = None
        self._retained_components: dict[str, dict[str, Any]] = {}
        """Device discovery topic → the components the broker held for it at start-up."""
        self._published_components: dict[str, set[str]] = {}
        """Device discovery topic → the component keys this run last published there."""
        self.on_frame: Callable[[], None] | None = None

    # -- frames -----------------------------------------------------------------------------

    def handle_content(self, content: bytes, received_at: datetime | None = None) -> None:
        """Decode one frame's content and publish what it says."""
        self.frames += 1
        now = self._clock()
        if self._first_frame is None:
            self._first_frame = now
        if self.on_frame is not None:
            self.on_frame()
        try:
            reading = self.decoder.feed(content)
        except DecodeError as exc:
            self._decode_failed(exc, now)
            return
        if reading is None:
            return  # one block of a general-block-transfer: the rest follows
        if not self._has_meter(reading, now):
            self.held_back += 1
            return
        if reading.meter_id and UNKNOWN_METER in self.tracker.meters and not self.settings.meter.id:
            self._retire(self.tracker.meters.pop(UNKNOWN_METER), reading.meter_id)
        state, came_online, needs_discovery = self.tracker.observe(reading)
        if came_online:
            self._publish_availability(state, online=True)
            _LOGGER.info("meter %s online (%s)", state.meter_id, reading.layout)
        if needs_discovery:
            self._publish_discovery(state)
        stamp = received_at or datetime.now(UTC)
        for message in self._reading_messages(reading, state.meter_id, stamp):
            self.publisher.publish(message)

    def _has_meter(self, reading: MeterReading, now: float) -> bool:
        if self.settings.meter.id or reading.meter_id or self.tracker.meters:
            return True
        assert self._first_frame is not None
        if now - self._first_frame < METER_ID_GRACE:
            return False  # a list naming the meter usually follows within 10 s
        _LOGGER.warning(
            "the meter sends no serial number; publishing as %r (set meter.id to name it)",
            UNKNOWN_METER,
        )
        return True

    def _retire(self, state: MeterState, successor: str) -> None:
        """Remove what was published for ``state`` (retained availability and discovery).

        Frames without a meter id that arrived before any frame named the meter were published
        as ``unknown``; once the meter's id is known, that device would otherwise linger in Home
        Assistant beside the real one.
        """
        _LOGGER.info("meter %s is %s; removing its topics", state.meter_id, successor)
        gone = device_topic(state.meter_id, self.settings.homeassistant)
        self._retained_components.pop(gone, None)
        self._published_components.pop(gone, None)
        topics = [availability_topic(self.settings.mqtt.base_topic, state.meter_id)]
        if self.settings.homeassistant.discovery and state.last_reading is not None:
            topics += [message.topic for message in self._discovery(state)]
        for message in removal_messages(topics):
            self.publisher.publish(message)

    def _decode_failed(self, exc: DecodeError, now: float) -> None:
        """Count every failure; log a summary at most every few minutes, not one per frame."""
        self.decode_errors += 1
        self._errors_since_log += 1
        if now - self._last_decode_log >= _DECODE_LOG_INTERVAL:
            _LOGGER.warning(
                "%d frame(s) could not be decoded since the last report; latest: %s",
                self._errors_since_log,
                exc,
            )
            self._last_decode_log = now
            self._errors_since_log = 0

    def _reading_messages(
        self, reading: MeterReading, meter: str, stamp: datetime
    ) -> list[Message]:
        return messages_for_reading(
            reading, meter, stamp, self.settings.mqtt, self.settings.publish
        )

    def _publish_availability(self, state: MeterState, *, online: bool) -> None:
        topic = availability_topic(self.settings.mqtt.base_topic, state.meter_id)
        self.publisher.publish(Message(topic, ONLINE if online else OFFLINE, 1, retain=True))

    def _publish_discovery(self, state: MeterState) -> None:
        if not self.settings.homeassistant.discovery or state.last_reading is None:
            return
        for message in self._discovery(state):
            if self.settings.homeassistant.mode == "device":
                self._published_components[message.topic] = set(json.loads(message.payload)["cmps"])
            self.publisher.publish(message)

    def _discovery(self, state: MeterState) -> list[Message]:
        assert state.last_reading is not None
        ha = self.settings.homeassistant
        return discovery_messages(
            state.meter_id,
            state.last_reading,
            self.settings.mqtt,
            ha,
            obis=self.settings.publish.obis,
            keep=self._retained_components.get(device_topic(state.meter_id, ha)),
        )

    def on_discovery_config(self, topic: str, payload: bytes, retained: bool) -> None:
        """The broker's copy of one of our device discovery messages (sent on subscribing).

        A restarted daemon has seen only a few lists yet; the copy from the last run names the
        sensors of the others (the hourly energy registers).  They are kept in every discovery
        this run publishes, and if a smaller one already went out, it is sent again.
        """
        if not retained or not payload:
            return  # our own publications coming back, or a purge
        components = retained_components(payload, self.settings.mqtt.base_topic)
        if not components:
            return
        self._retained_components[topic] = components
        published = self._published_components.get(topic)
        if published is None or components.keys() <= published:
            return
        for state in self.tracker.meters.values():
            if device_topic(state.meter_id, self.settings.homeassistant) == topic:
                self._publish_discovery(state)

    # -- broker and Home Assistant events ---------------------------------------------------------

    def resend_all(self) -> None:
        """Discovery, availability and the current state of every meter (after a (re)connect)."""
        stamp = datetime.now(UTC)
        for state in self.tracker.meters.values():
            self._publish_discovery(state)
            self._publish_availability(state, online=state.online)
            # An offline meter's last values are not its state now: never re-send them as fresh.
            if state.online and state.last_reading is not None:
                for message in self._reading_messages(state.last_reading, state.meter_id, stamp):
                    self.publisher.publish(message)
        self.publisher.publish(self.info_message())

    def on_broker_connected(self) -> None:
        """After a *re*connect, the broker may have lost what it had: send it all again.

        On the first connect there is nothing to repeat: what frames produced before it waited
        in the publisher's queue and has just been sent, unless the queue overflowed.
        """
        if self.publisher.stats.connects > 1 or self.publisher.stats.dropped:
            self.resend_all()

    def on_homeassistant_status(self, _topic: str, payload: bytes, _retained: bool) -> None:
        """Home Assistant restarted: re-send discovery after a short random delay."""
        if payload.strip().lower() != b"online":
            return
        if self._resend_task is not None and not self._resend_task.done():
            return
        delay = random.uniform(*_HA_RESEND_DELAY)  # noqa: S311 - spreading load, not security
        self._resend_task = asyncio.get_running_loop().create_task(self._resend_later(delay))

    async def _resend_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.resend_all()

    def on_source_state(self, state: ConnectionState) -> None:
        """Remember the source's state for ``bridge/info``."""
        self.source_state = state.value

    # -- periodic work --------------------------------------------------------------------------

    def expire(self) -> None:
        """Publish ``offline`` for meters that went silent."""
        for state in self.tracker.expire():
            _LOGGER.warning(
                "meter %s offline: no frame for %.0f s",
                state.meter_id,
                self.settings.meter.offline_after,
            )
            self._publish_availability(state, online=False)

    def healthy(self) -> bool:
        """Frames arrived recently (or the daemon has only just started)."""
        age = self.tracker.last_frame_age()
        limit = self.settings.health.max_age
        if age is None:
            return self._clock() - self.started < limit
        return age < limit

    def info_message(self) -> Message:
        """``bridge/info``: version, source, meters, counters; never secrets."""
        age = self.tracker.last_frame_age()
        info: dict[str, Any] = {
            "version": __version__,
            "source": {"type": self.settings.source.type, "state": self.source_state},
            "meters": {
                state.meter_id: {
                    "online": state.online,
                    "frames": state.frames,
                    "manufacturer": state.manufacturer,
                    "type": state.meter_type,
                }
                for state in self.tracker.meters.values()
            },
            "frames": self.frames,
            "decoded": self.decoder.stats.decoded,
            "decode_errors": self.decode_errors,
            "last_frame_age": None if age is None else round(age, 1),
            "mqtt": {
                "published": self.publisher.stats.published,
                "dropped": self.publisher.stats.dropped,
                "reconnects": max(0, self.publisher.stats.connects - 1),
            },
        }
        topic = bridge_info_topic(self.settings.mqtt.base_topic)
        return Message(topic, json.dumps(info, separators=(",", ":")), 1, retain=True)


def source_factory(settings: Settings, queue: asyncio.Queue[bytes]) -> Callable[[], Any]:
    """A connection factory for the configured source."""
    source = settings.source
    framing = source.format
    if source.type == "serial":
        return lambda: create_serial_frame_content_connection(
            queue,
            None,
            url=source.device,
            baudrate=source.baudrate,
            parity=source.parity,
            bytesize=source.bytesize,
            stopbits=source.stopbits,
            reader=ContentReader(framing, octet_stuffing=source.octet_stuffing),
        )
    if source.host is None or source.port is None:
        raise TransportError(f"source.type {source.type} needs source.host and source.port")
    host, port = source.host, source.port
    return lambda: create_tcp_frame_content_connection(
        queue, None, host, port, reader=ContentReader(framing, octet_stuffing=source.octet_stuffing)
    )


async def _consume(bridge: Bridge, queue: asyncio.Queue[bytes]) -> None:
    while True:
        content = await queue.get()
        bridge.handle_content(content)
        await bridge.publisher.drain()
        # With frames queued, get() returns without yielding: one turn of the loop per frame
        # lets the socket take this frame's messages while the next one is decoded, instead of
        # decoding a whole backlog first and then writing it (the broker idle meanwhile).
        await asyncio.sleep(0)


async def _housekeeping(bridge: Bridge) -> None:
    settings = bridge.settings
    next_info = 0.0
    ping = watchdog_interval()
    next_ping = 0.0
    last_decoded = bridge.decoder.stats.decoded
    while True:
        now = time.monotonic()
        bridge.expire()
        if now >= next_info:
            bridge.publisher.publish(bridge.info_message())
            next_info = now + settings.publish.info_interval
        if ping is not None and now >= next_ping and bridge.healthy():
            _notify("WATCHDOG=1")
            next_ping = now + ping
        # A frame that decodes, not merely arrives: garbage or a wrong key is not health.
        decoded = bridge.decoder.stats.decoded
        if settings.health.heartbeat_file is not None and decoded != last_decoded:
            last_decoded = decoded
            _heartbeat(settings.health.heartbeat_file)
        await asyncio.sleep(_HOUSEKEEPING_PERIOD)


_warned: set[str] = set()


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
        demo = await serve_frames(load_samples(), interval=settings.source.demo_interval)
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


async def _run(
    settings: Settings, publisher: Publisher | None, stop: asyncio.Event, frame_limit: int | None
) -> int:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    mqtt: Publisher = publisher if publisher is not None else MqttPublisher(settings.mqtt)
    bridge = Bridge(settings, mqtt)
    if isinstance(mqtt, MqttPublisher):
        mqtt.on_connected = bridge.on_broker_connected
    if frame_limit is not None:

        def count() -> None:
            if bridge.frames >= frame_limit:
                stop.set()

        bridge.on_frame = count
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=256)
    source = settings.source
    manager = ConnectionManager(
        source_factory(settings, queue),
        back_off=BackOff(source.reconnect_min, source.reconnect_max),
        watchdog_timeout=source.watchdog,
        connect_timeout=source.connect_timeout,
        on_state_change=bridge.on_source_state,
    )
    if settings.health.heartbeat_file is not None:
        # One left by an earlier run (a container's /tmp survives a restart) is not our health.
        with contextlib.suppress(OSError):
            settings.health.heartbeat_file.unlink(missing_ok=True)
    await mqtt.start()
    _subscribe(mqtt, bridge)
    _LOGGER.info("han2mqtt %s started; source %s", __version__, _describe_source(settings))
    try:
        async with asyncio.TaskGroup() as tasks:
            source_task = tasks.create_task(manager.connect_loop(), name="source")
            workers = [
                tasks.create_task(_consume(bridge, queue), name="decode"),
                tasks.create_task(_housekeeping(bridge), name="housekeeping"),
            ]
            _notify("READY=1")
            await stop.wait()
            _LOGGER.info("stopping")
            _notify("STOPPING=1")
            manager.close()
            await source_task
            for worker in workers:
                worker.cancel()
    finally:
        try:
            await mqtt.stop()
        except (OSError, RuntimeError, TimeoutError) as exc:
            _LOGGER.warning("MQTT did not close cleanly: %s", exc)
    return 0


def _subscribe(mqtt: Publisher, bridge: Bridge) -> None:
    """What the bridge listens to: Home Assistant's status and its own retained discovery."""
    ha = bridge.settings.homeassistant
    if not ha.discovery:
        return
    mqtt.subscribe(f"{ha.prefix}/status", bridge.on_homeassistant_status)
    if ha.mode == "device":
        mqtt.subscribe(f"{ha.prefix}/device/+/config", bridge.on_discovery_config)


def _describe_source(settings: Settings) -> str:
    source = settings.source
    if source.type == "serial":
        line = f"{source.bytesize}{source.parity}{source.stopbits:g}"
        return f"serial {source.device} {source.baudrate} {line}"
    if source.type == "tcp":
        return f"tcp {source.host}:{source.port}"
    return "built-in demo frames"


async def purge(settings: Settings, *, listen: float = 2.0) -> int:
    """Delete every retained message han2mqtt created: bridge, meter and discovery topics.

    Retained messages arrive right after subscribing; those on our topics are overwritten with
    empty retained payloads, which makes the broker (and Home Assistant) forget them.
    """
    found: set[str] = set()
    ha = settings.homeassistant
    base = settings.mqtt.base_topic

    def collect(topic: str, payload: bytes, retained: bool) -> None:
        # Only what the broker keeps: live readings of a running daemon are not ours to blank,
        # nor is the discovery of another han2mqtt instance (another base topic).
        if not retained or not payload:
            return
        if topic.startswith(base + "/") or (is_ours(topic, ha) and announces(payload, base)):
            found.add(topic)

    # announce=False: no "online"/"offline" and no last will, so nothing new is left behind.
    # A client id of its own: the broker would disconnect a running daemon that uses the same
    # one (and the daemon, reconnecting, this purge).
    mqtt = settings.mqtt.model_copy(update={"client_id": f"{settings.mqtt.client_id}-purge"})
    publisher = MqttPublisher(mqtt, announce=False)
    publisher.subscribe(f"{settings.mqtt.base_topic}/#", collect)
    publisher.subscribe(f"{ha.prefix}/#", collect)
    await publisher.start()
    await publisher.wait_connected(timeout=10)
    await asyncio.sleep(listen)
    for message in removal_messages(sorted(found)):
        publisher.publish(message)
    await publisher.stop()
    _LOGGER.info("purged %d retained topic(s)", len(found))
    return len(found)


DEMO_BASE_TOPIC = "han2mqtt-demo"
"""The demo's base topic on a real broker: it must never touch a running bridge's topics."""


def demo_settings(mqtt_host: str | None, mqtt_port: int, interval: float) -> Settings:
    """Defaults with the built-in demo source (no configuration file, no environment).

    Printed, the demo shows the topics exactly as ``han2mqtt run`` names them.  On a broker it
    uses its own base topic and client id: a live bridge's ``bridge/state`` set to ``offline``
    by the demo's exit would make all its Home Assistant entities unavailable.
    """
    data: dict[str, Any] = {"source": {"type": "demo", "demo_interval": interval}}
    if mqtt_host is not None:
        data["mqtt"] = {
            "host": mqtt_host,
            "port": mqtt_port,
            "client_id": "han2mqtt-demo",
            "base_topic": DEMO_BASE_TOPIC,
        }
    return Settings.model_validate(data)


async def run_demo(
    mqtt_host: str | None, mqtt_port: int = 1883, interval: float = 0.5, *, forever: bool = False
) -> int:
    """The whole pipeline on the built-in sample frames; printed, or published to a broker.

    Raises:
        ConfigError: ``mqtt_host`` was given but the broker was never reached.
    """
    settings = demo_settings(mqtt_host, mqtt_port, interval)
    publisher: Publisher = (
        MqttPublisher(settings.mqtt) if mqtt_host else PrintPublisher(settings.mqtt.base_topic)
    )
    limit = None if forever else len(load_samples())
    code = await run_daemon(settings, publisher=publisher, frame_limit=limit)
    if isinstance(publisher, MqttPublisher) and publisher.stats.connects == 0:
        reason = publisher.stats.last_error or "no answer"
        raise ConfigError(f"cannot reach the MQTT broker {mqtt_host}:{mqtt_port}: {reason}")
    return code
