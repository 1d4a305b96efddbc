"""The MQTT side: paho-mqtt 2.x driven from asyncio, surviving broker outages.

paho runs its network loop in its own thread (``connect_async`` + ``loop_start``); every callback
hops into the asyncio loop with ``call_soon_threadsafe`` and is guarded, so an exception in our
code can never kill paho's thread.  The bridge's last will is ``offline`` on
``<base>/bridge/state``; ``online`` is published on every connect, ``offline`` before a clean
disconnect.

While the broker is unreachable, messages wait in a bounded queue keyed by topic: a newer message
for a topic replaces the queued one (a stale reading is worth nothing once a newer one exists), and
when the queue is full the oldest topic is dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from han2mqtt.config import MqttSettings
from han2mqtt.mqtt.topics import OFFLINE, ONLINE, Message, bridge_state_topic

__all__ = ["MqttPublisher", "PublisherStats"]

_LOGGER = logging.getLogger(__name__)
_STOP_TIMEOUT = 3.0


@dataclass(slots=True)
class PublisherStats:
    """Counters for ``bridge/info``; they only grow."""

    published: int = 0
    dropped: int = 0
    connects: int = 0
    disconnects: int = 0
    last_error: str | None = None


class MqttPublisher:
    """Publish :class:`Message` objects to the broker of ``settings``.

    Args:
        settings: the ``mqtt`` configuration section.
        on_connected: called (in the asyncio loop) after every (re)connect, once ``online`` has
            been published: the daemon re-sends discovery and the current state there.
        announce: publish ``online``/``offline`` on ``bridge/state`` and set the last will
            (False for one-shot tools such as ``han2mqtt purge``).
    """

    def __init__(
        self,
        settings: MqttSettings,
        on_connected: Callable[[], None] | None = None,
        *,
        announce: bool = True,
    ) -> None:
        self._settings = settings
        self._announce = announce
        self.on_connected = on_connected
        self._connected_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: OrderedDict[str, Message] = OrderedDict()
        self._subscriptions: dict[str, Callable[[str, bytes], None]] = {}
        self._connected = False
        self._handed = 0
        """Messages handed to paho (asyncio thread only)."""
        self._written = 0
        """Messages paho has written to the socket (paho's thread only)."""
        self._last_info: paho.MQTTMessageInfo | None = None
        self._client = self._make_client()
        self.stats = PublisherStats()

    @property
    def connected(self) -> bool:
        """True while the broker connection is up (as seen from the asyncio loop)."""
        return self._connected

    @property
    def queued(self) -> int:
        """Messages waiting for the broker."""
        return len(self._queue)

    def _make_client(self) -> paho.Client:
        settings = self._settings
        protocol = paho.MQTTv5 if settings.protocol == "5" else paho.MQTTv311
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=protocol,
        )
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls.enabled:
            tls = settings.tls
            client.tls_set(
                ca_certs=str(tls.ca_certs) if tls.ca_certs else None,
                certfile=str(tls.certfile) if tls.certfile else None,
                keyfile=str(tls.keyfile) if tls.keyfile else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(tls.insecure)
        if self._announce:
            client.will_set(bridge_state_topic(settings.base_topic), OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.max_queued_messages_set(settings.queue_size)
        client.on_connect = self._paho_on_connect
        client.on_disconnect = self._paho_on_disconnect
        client.on_message = self._paho_on_message
        client.on_publish = self._paho_on_publish
        return client

    async def start(self) -> None:
        """Start connecting in the background; a broker that is down is retried forever."""
        self._loop = asyncio.get_running_loop()
        self._connected_event = asyncio.Event()
        settings = self._settings
        try:
            self._client.connect_async(settings.host, settings.port, settings.keepalive)
        except (OSError, ValueError) as exc:  # e.g. an unresolvable host name format
            self.stats.last_error = str(exc)
            _LOGGER.warning("MQTT connect to %s:%s failed: %s", settings.host, settings.port, exc)
        self._client.loop_start()

    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109 - a plain bound
        """Wait for the first connection.

        Raises:
            TimeoutError: not connected within ``timeout`` seconds.
        """
        assert self._connected_event is not None, "start() first"
        async with asyncio.timeout(timeout):
            await self._connected_event.wait()

    def subscribe(self, topic: str, callback: Callable[[str, bytes], None]) -> None:
        """Call ``callback(topic, payload)`` for messages matching ``topic``.

        Wildcards are allowed; the subscription is renewed after every reconnect.
        """
        self._subscriptions[topic] = callback
        if self._connected:
            self._client.subscribe(topic, qos=1)

    def publish(self, message: Message) -> None:
        """Publish now, or queue until the broker is back."""
        if self._connected:
            info = self._client.publish(message.topic, message.payload, message.qos, message.retain)
            self._last_info = info
            if info.rc == paho.MQTT_ERR_SUCCESS:
                self.stats.published += 1
                self._handed += 1
                return
        self._enqueue(message)

    @property
    def backlog(self) -> int:
        """Messages handed to paho but not yet written to the broker's socket."""
        return max(0, self._handed - self._written) if self._connected else 0

    async def drain(self, high_water: int = 2000) -> None:
        """Wait while paho's backlog is above ``high_water`` (flow control for floods).

        paho's outgoing packet queue for QoS 0 is unbounded: a producer faster than the socket
        would grow it without limit.  Meters are never that fast; replays and benchmarks are.
        """
        while self.backlog > high_water:  # noqa: ASYNC110 - paho offers no awaitable to wait on
            await asyncio.sleep(0.001)

    def _enqueue(self, message: Message) -> None:
        self._queue.pop(message.topic, None)
        self._queue[message.topic] = message
        while len(self._queue) > self._settings.queue_size:
            self._queue.popitem(last=False)
            self.stats.dropped += 1

    async def stop(self) -> None:
        """Publish ``offline``, wait briefly for it to leave, disconnect, stop paho's thread."""
        loop = asyncio.get_running_loop()
        if self._connected:
            last = self._last_info
            if self._announce:
                topic = bridge_state_topic(self._settings.base_topic)
                last = self._client.publish(topic, OFFLINE, qos=1, retain=True)
            if last is not None:
                # Let the last message leave before disconnecting (bounded: never hang on exit).
                with contextlib.suppress(RuntimeError, ValueError):
                    await loop.run_in_executor(None, last.wait_for_publish, _STOP_TIMEOUT)
        self._connected = False
        self._client.disconnect()
        await loop.run_in_executor(None, self._client.loop_stop)

    # -- paho's thread ------------------------------------------------------------------------

    def _hop(self, function: Callable[..., None], *args: Any) -> None:  # noqa: ANN401
        """Run ``function`` in the asyncio loop; never raise into paho's thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._guarded, function, *args)
        except RuntimeError:  # the loop closed between the check and the call
            return

    @staticmethod
    def _guarded(function: Callable[..., None], *args: Any) -> None:  # noqa: ANN401
        try:
            function(*args)
        except Exception:
            _LOGGER.exception("error in MQTT callback %s", getattr(function, "__name__", function))

    def _paho_on_connect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: object,
        reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        self._hop(self._connect_result, reason_code.is_failure, str(reason_code))

    def _paho_on_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: object,
        reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        self._hop(self._disconnected, str(reason_code))

    def _paho_on_publish(
        self, _client: paho.Client, _userdata: object, _mid: int, _rc: object, _props: object
    ) -> None:
        self._written += 1

    def _paho_on_message(
        self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage
    ) -> None:
        self._hop(self._dispatch, message.topic, bytes(message.payload))

    # -- the asyncio loop ---------------------------------------------------------------------

    def _connect_result(self, failed: bool, reason: str) -> None:
        settings = self._settings
        self._handed = self._written = 0
        if failed:
            if self.stats.last_error != reason:
                _LOGGER.error(
                    "MQTT broker %s:%s refused the connection: %s",
                    settings.host,
                    settings.port,
                    reason,
                )
            self.stats.last_error = reason
            return
        self._connected = True
        self.stats.connects += 1
        self.stats.last_error = None
        _LOGGER.info("connected to MQTT broker %s:%s", settings.host, settings.port)
        if self._announce:
            self._client.publish(
                bridge_state_topic(settings.base_topic), ONLINE, qos=1, retain=True
            )
        for topic in self._subscriptions:
            self._client.subscribe(topic, qos=1)
        queued, self._queue = self._queue, OrderedDict()
        for message in queued.values():
            self.publish(message)
        if self._connected_event is not None:
            self._connected_event.set()
        if self.on_connected is not None:
            self.on_connected()

    def _disconnected(self, reason: str) -> None:
        if self._connected_event is not None:
            self._connected_event.clear()
        if self._connected:
            self.stats.disconnects += 1
            _LOGGER.warning("lost the MQTT broker (%s); reconnecting", reason)
        self._connected = False

    def _dispatch(self, topic: str, payload: bytes) -> None:
        for pattern, callback in list(self._subscriptions.items()):
            if paho.topic_matches_sub(pattern, topic):
                callback(topic, payload)
