"""Sources of many meters: MQTT relays (``source.type: mqtt``) and recordings (``file``).

Both deliver :class:`Delivery` items to the daemon's queue: a frame content, the topic it came
from (each topic has its own framing and decoder state, see :mod:`han2mqtt.protocol.relay` and
:class:`~han2mqtt.bridge.Bridge`) and its receive time.

The MQTT source is a client of its own (:class:`MqttSource`), never the publisher's connection,
even on the same broker: its session (clean, so that a shared subscription's messages are not
queued for a dead process), its client id (``<mqtt.client_id>-source``), its keep-alive and its
flow of hundreds of incoming messages a second stay apart from the outgoing readings and their
flow control, and ``source.mqtt_host`` may name another broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, Literal, NamedTuple

from han2mqtt.config import MqttSettings, Settings, SourceSettings
from han2mqtt.errors import FramingError, TransportError
from han2mqtt.io.reconnect import ConnectionState
from han2mqtt.mqtt.publisher import MqttPublisher
from han2mqtt.protocol.recording import Chunk, parse_line
from han2mqtt.protocol.relay import PayloadProblem, RelayDemux
from han2mqtt.protocol.stream import ContentReader

__all__ = [
    "Delivery",
    "MqttSource",
    "QueueWriter",
    "RelayFeeder",
    "replay_file",
    "source_broker",
    "subscription",
]

_LOGGER = logging.getLogger("han2mqtt")
MAX_BACKLOG: Final = 10_000
"""Contents held while the queue is full; beyond it they are dropped and counted."""
_MAX_REPORTED: Final = 1_000
"""(topic, kind) pairs logged once each; past this many, problems are only counted."""
_STATE_PERIOD: Final = 1.0


class Delivery(NamedTuple):
    """One frame content for the bridge, with where and when it arrived."""

    content: bytes
    source: str = ""
    """The MQTT topic (empty for the single stream of a serial or TCP port)."""
    received_at: datetime | None = None


def source_broker(settings: Settings, role: str = "source") -> MqttSettings:
    """The broker the MQTT source subscribes at: the ``mqtt`` section, ``source.mqtt_*`` over it.

    The client id is ``<mqtt.client_id>-<role>``: the recorder (``record``) must not take over
    the running bridge's source connection.
    """
    source = settings.source
    update: dict[str, object] = {"client_id": f"{settings.mqtt.client_id}-{role}"}
    if source.mqtt_host is not None:
        update["host"] = source.mqtt_host
    if source.mqtt_port is not None:
        update["port"] = source.mqtt_port
    if source.mqtt_username is not None:
        update["username"] = source.mqtt_username
        update["password"] = source.mqtt_password
    return settings.mqtt.model_copy(update=update)


def subscription(topic: str, shared_group: str | None) -> str:
    """The topic filter to subscribe: ``$share/<group>/<topic>`` for a shared subscription."""
    return topic if shared_group is None else f"$share/{shared_group}/{topic}"


class RelayFeeder:
    """Payloads of source topics → :class:`Delivery` items; malformed ones counted and logged.

    Args:
        demux: the per-topic framing state.
        counters: where the counts go (``Bridge.source_counters``, shown in ``bridge/info``).
    """

    def __init__(self, demux: RelayDemux, counters: dict[str, int]) -> None:
        self._demux = demux
        self._counters = counters
        self._reported: set[tuple[str, PayloadProblem]] = set()
        self._silenced = False

    def feed(self, topic: str, payload: bytes, received_at: datetime) -> list[Delivery]:
        """The contents one message of ``topic`` completes."""
        relayed = self._demux.read(topic, payload)
        if relayed.problem is not None:
            self._problem(topic, relayed.problem, len(payload))
        return [Delivery(content, topic, received_at) for content in relayed.contents]

    def _problem(self, topic: str, problem: PayloadProblem, size: int) -> None:
        """Count each; log the first of each kind per topic (a broken relay repeats itself)."""
        self._counters[problem.value] = self._counters.get(problem.value, 0) + 1
        key = (topic, problem)
        if key in self._reported or self._silenced:
            return
        if len(self._reported) >= _MAX_REPORTED:
            self._silenced = True
            _LOGGER.warning("malformed payloads on too many topics: further ones only counted")
            return
        self._reported.add(key)
        shown = topic.encode("unicode_escape").decode("ascii")  # no forged log lines
        _LOGGER.warning(
            "payload dropped on %s (%s, %d bytes); further ones of this kind on this topic are"
            " counted in bridge/info, not logged",
            shown,
            problem.value,
            size,
        )


class MqttSource:
    """Subscribe to the relays' topic and hand every message to ``on_message``.

    Retained messages are skipped: the broker sends them on subscribing, they are old frames.

    Args:
        settings: the configuration (``source`` and ``mqtt`` sections).
        on_message: called in the event loop with ``(topic, payload, receive time)``.
        on_state_change: told when the subscription's connection comes and goes.
        role: the client id's suffix (see :func:`source_broker`).
    """

    def __init__(
        self,
        settings: Settings,
        on_message: Callable[[str, bytes, datetime], None],
        on_state_change: Callable[[ConnectionState], None] | None = None,
        *,
        role: str = "source",
    ) -> None:
        source = settings.source
        if source.topic is None:
            raise TransportError("source.type mqtt needs source.topic")
        self._client = MqttPublisher(source_broker(settings, role), announce=False)
        self._on_message = on_message
        self._on_state_change = on_state_change
        self._state = ConnectionState.CLOSED
        self.filter = subscription(source.topic, source.shared_group)
        self._client.subscribe(self.filter, self._received)

    def _received(self, topic: str, payload: bytes, retained: bool) -> None:
        if not retained:
            self._on_message(topic, payload, datetime.now(UTC))

    async def run(self, stop: asyncio.Event) -> None:
        """Subscribe until ``stop`` is set (reconnecting as the publisher does), then disconnect."""
        await self._client.start()
        try:
            while not stop.is_set():
                self._set_state(
                    ConnectionState.CONNECTED if self._client.connected else ConnectionState.WAITING
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _STATE_PERIOD)
        finally:
            await self._client.stop()
            self._set_state(ConnectionState.CLOSED)

    def _set_state(self, state: ConnectionState) -> None:
        if state is self._state:
            return
        if state is ConnectionState.CONNECTED:
            _LOGGER.info("subscribed to %s", self.filter)
        self._state = state
        if self._on_state_change is not None:
            self._on_state_change(state)


class QueueWriter:
    """Put deliveries on the daemon's queue without blocking a paho callback.

    While the queue is full they wait in a bounded backlog, drained by a task; beyond the bound
    they are dropped and counted as ``dropped`` (a decoder that cannot keep up with the fleet).
    """

    def __init__(self, queue: asyncio.Queue[Any], counters: dict[str, int]) -> None:
        self._queue = queue
        self._counters = counters
        self._backlog: deque[Delivery] = deque()
        self._drainer: asyncio.Task[None] | None = None

    def put(self, delivery: Delivery) -> None:
        """Queue ``delivery`` now, or as soon as there is room."""
        if not self._backlog:
            try:
                self._queue.put_nowait(delivery)
            except asyncio.QueueFull:
                pass
            else:
                return
        if len(self._backlog) >= MAX_BACKLOG:
            self._counters["dropped"] = self._counters.get("dropped", 0) + 1
            return
        self._backlog.append(delivery)
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain(), name="backlog")

    async def _drain(self) -> None:
        try:
            while self._backlog:
                await self._queue.put(self._backlog.popleft())
        finally:
            self._drainer = None


async def replay_file(
    source: SourceSettings, feeder: RelayFeeder, queue: asyncio.Queue[Any]
) -> int:
    """Replay a recording: every chunk through its framing, at the recorded pace (or faster).

    Chunks without a topic (a serial or TCP recording) go through one :class:`ContentReader`;
    chunks with a topic through the relay's per-topic readers, as the MQTT source would.  Every
    content carries the chunk's recorded receive time.  Returns the number of chunks.

    Raises:
        TransportError: the file cannot be read or has a line that is not a chunk.
    """
    path = source.path
    if path is None:
        raise TransportError("source.type file needs source.path")
    reader = ContentReader(source.format, octet_stuffing=source.octet_stuffing)
    pace = _Pace(source.speed)
    chunks = 0
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                chunk = parse_line(line, number)
                if chunk is None:
                    continue
                await pace.wait(chunk.received_at)
                for delivery in _deliveries(chunk, reader, feeder):
                    await queue.put(delivery)
                chunks += 1
    except (OSError, UnicodeDecodeError) as exc:
        raise TransportError(f"cannot read the recording {path}: {exc}") from exc
    except FramingError as exc:
        raise TransportError(f"{path}: {exc}") from exc
    return chunks


def _deliveries(chunk: Chunk, reader: ContentReader, feeder: RelayFeeder) -> list[Delivery]:
    if chunk.topic is not None:
        return feeder.feed(chunk.topic, chunk.data, chunk.received_at)
    return [Delivery(content, "", chunk.received_at) for content in reader.read(chunk.data)]


class _Pace:
    """Wait until a chunk's time has come: recorded gaps divided by the speed factor."""

    def __init__(self, speed: Literal["realtime", "max"] | float) -> None:
        self._factor = None if speed == "max" else 1.0 if speed == "realtime" else float(speed)
        self._origin: tuple[datetime, float] | None = None
        self._since_yield = 0

    async def wait(self, stamp: datetime) -> None:
        if self._factor is None:
            self._since_yield += 1
            if self._since_yield >= 100:  # let the loop breathe at full speed
                self._since_yield = 0
                await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        if self._origin is None:
            self._origin = (stamp, loop.time())
        recorded, started = self._origin
        due = started + (stamp - recorded).total_seconds() / self._factor
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
