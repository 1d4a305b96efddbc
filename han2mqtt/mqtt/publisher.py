"""The MQTT side: paho-mqtt 2.x driven by the asyncio loop, surviving broker outages.

paho serves as the MQTT protocol engine without a network thread of its own: its socket is
watched by the asyncio loop (paho's ``on_socket_*`` callbacks add and remove the reader and
writer; ``loop_read``, ``loop_write`` and, once a second, ``loop_misc`` do the work), the way
aiomqtt drives it.  Only the blocking part of a connect (DNS, TCP, TLS handshake) runs in a worker
thread; the paho callbacks that fire there hop into the loop with ``call_soon_threadsafe``.
Every paho callback is guarded, so an exception in our code never corrupts paho's state.

Why not paho's own thread (``loop_start``): then every ``publish`` writes a wake-up byte to a
socket pair and the two threads pass the GIL back and forth once per message.  Measured with the
daemon's load (about 24 messages per frame) that costs 23 µs of CPU per message against 8 µs
here, and it held the whole bridge under 1,000 frames/s.

The bridge's last will is ``offline`` on ``<base>/bridge/state``; ``online`` is published on
every connect, ``offline`` before a clean disconnect.

Our bounded queue is the only queue.  paho is handed a QoS 1 or 2 message only while fewer than
its in-flight window (:data:`MAX_INFLIGHT`) are unacknowledged; the rest wait here, in order, and
go out as acknowledgements come back (paho's ``on_publish``).  paho's own queue is never used:
it holds what it cannot send until the next *reconnect*, which silently lost readings while
connected.  While the broker is unreachable, messages wait keyed by topic: a newer message for a
topic replaces the queued one (a stale reading is worth nothing once a newer one exists; counted
as ``replaced``), and when the queue is full the oldest reading (else the oldest retained
message) is dropped (counted as ``dropped``).  While connected, :meth:`MqttPublisher.drain` holds
the producer back until the queue is empty, so nothing is replaced or dropped then.

Every failure is logged once per outage with its cause: refused (and why), reset, closed by the
broker, a TLS error, no CONNACK in time, or no answer within the keep-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from han2mqtt.config import MqttSettings
from han2mqtt.io.reconnect import BackOff
from han2mqtt.mqtt.topics import OFFLINE, ONLINE, Message, bridge_state_topic

__all__ = ["MAX_INFLIGHT", "Handler", "MqttPublisher", "PublisherStats"]

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[str, bytes, bool], None]
"""Receives ``(topic, payload, retained)`` of a subscribed message; retained ones are old news."""
MAX_INFLIGHT = 20
"""QoS 1 and 2 messages handed to paho and not yet acknowledged (paho's default window, and
mosquitto's default receive maximum); an MQTT 5 broker's smaller Receive Maximum wins."""
_STOP_TIMEOUT = 3.0
"""Seconds without progress after which a stop stops waiting for what is still going out."""
_CONNECT_TIMEOUT = 10.0
"""Seconds for TCP connect and TLS handshake (in the worker thread)."""
_CONNACK_TIMEOUT = 10.0
"""Seconds from CONNECT to CONNACK before the attempt is given up (a port that never answers)."""
_STOP_CONNECT_GRACE = 1.0
"""On stop, seconds a connect under way may take to be accepted (a broker answers in ms)."""
_MISC_PERIOD = 1.0
"""``loop_misc`` period: keep-alive pings and the detection of a dead broker."""
_RECONNECT_MIN, _RECONNECT_MAX = 1.0, 60.0
"""Back-off while the broker was never reached (a wrong address should not be hammered)."""
_RECONNECT_KNOWN_MAX = 4.0
"""Back-off cap once the broker was reachable: it is back within seconds of a restart."""
_TLS_READS = 64
"""Bound on extra reads of TLS bytes that are decrypted already (they don't wake the selector)."""
_BAD_CREDENTIALS = frozenset({"Not authorized", "Bad user name or password"})
_TAKEN_OVER = "Session taken over"
"""MQTT 5's reason 0x8E: another client connected with this client id (MQTT 5 §3.14.2.1)."""
_SHORT_CONNECTION = 5.0
"""Seconds: a connection the broker closes sooner than this was taken over, if it recurs."""
_TAKEOVERS_TO_WARN = 3
"""Short connections in a row that name the cause (MQTT 3.1.1 closes without a reason)."""


class _TakeoverWatch:
    """Connections the broker ends within seconds, again and again: one client id used twice.

    Two processes with the same ``mqtt.client_id`` (a replay beside the live bridge) throw each
    other off: the broker closes the older connection when the newer one connects.  MQTT 5 says
    so (reason "Session taken over"); MQTT 3.1.1 only closes the socket, so the pattern decides:
    :data:`_TAKEOVERS_TO_WARN` connections in a row closed by the broker within
    :data:`_SHORT_CONNECTION` seconds.  :meth:`lost` answers True once per such episode.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None
        self._short = 0
        self._warned = False

    def connected(self) -> None:
        """A CONNACK arrived."""
        self._since = self._clock()

    def lost(self, cause: str) -> bool:
        """The connection ended for ``cause``; True when it is time to name the client id."""
        short = self._since is not None and self._clock() - self._since < _SHORT_CONNECTION
        self._since = None
        if cause == _TAKEN_OVER:
            self._short = _TAKEOVERS_TO_WARN
        elif short and cause == "connection closed by the broker":
            self._short += 1
        else:
            self._short, self._warned = 0, False
        if self._short >= _TAKEOVERS_TO_WARN and not self._warned:
            self._warned = True
            return True
        return False


@dataclass(slots=True)
class PublisherStats:
    """Counters for ``bridge/info``; they only grow.

    ``published`` counts messages handed to the broker (our ``online``/``offline`` excluded);
    ``replaced`` queued messages superseded by a newer one on the same topic before they could
    be sent (an outage, or before the first connect); ``dropped`` messages given up because the
    queue was full.
    """

    published: int = 0
    dropped: int = 0
    replaced: int = 0
    connects: int = 0
    disconnects: int = 0
    last_error: str | None = None


def describe_error(exc: BaseException) -> str:
    """A short, human cause for a socket, TLS or DNS error (no errno noise)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or exc).lower().replace("_", " ")  # TLSV13_ALERT_... is an id
        if "certificate required" in reason:
            reason += " (the broker wants a client certificate: mqtt.tls.certfile, keyfile)"
        return f"TLS error: {reason}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class _SocketErrors(logging.Handler):
    """Keeps the last socket error paho reports: its disconnect callback only says "lost"."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if args and isinstance(args[-1], BaseException):
            self.last = args[-1]


class MqttPublisher:
    """Publish :class:`Message` objects to the broker of ``settings``.

    Args:
        settings: the ``mqtt`` configuration section.
        on_connected: called (in the asyncio loop) after every (re)connect, once ``online`` has
            been published: the daemon re-sends discovery and the current state there.
        announce: publish ``online``/``offline`` on ``bridge/state`` and set the last will
            (False for one-shot tools such as ``han2mqtt purge``).
        rng: the back-off's jitter source (tests make it deterministic).
    """

    def __init__(
        self,
        settings: MqttSettings,
        on_connected: Callable[[], None] | None = None,
        *,
        announce: bool = True,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._announce = announce
        self._state_topic = bridge_state_topic(settings.base_topic)
        self.on_connected = on_connected
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._connected_event: asyncio.Event | None = None
        self._lost: asyncio.Event | None = None
        self._drained: asyncio.Event | None = None
        self._queue: OrderedDict[str, Message] = OrderedDict()
        self._inflight: list[paho.MQTTMessageInfo] = []
        """QoS 1 and 2 messages paho holds until acknowledged (it re-sends them on reconnect)."""
        self._window = MAX_INFLIGHT
        self._subscriptions: dict[str, Handler] = {}
        self._connected = False
        self._stopping = False
        self._connecting: asyncio.Future[Any] | None = None
        self._attempt_failed = False
        """This connect attempt's failure is logged already (a refusal, no CONNACK)."""
        self._settle_soon = False
        self._abandoned = False
        """stop() gave up waiting for a connect that hangs."""
        self._tasks: list[asyncio.Task[None]] = []
        self._sock: socket.socket | None = None
        self._fd: int | None = None
        self._handed = 0
        """QoS 0 messages handed to paho since the last :meth:`drain` waited."""
        self._last_info: paho.MQTTMessageInfo | None = None
        self._back_off = BackOff(_RECONNECT_MIN, _RECONNECT_MAX, rng)
        self._socket_errors = _SocketErrors()
        self._takeovers = _TakeoverWatch()
        self._client = self._make_client()
        self.stats = PublisherStats()

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected

    @property
    def queued(self) -> int:
        """Messages waiting in our queue (for the broker, or for room in the in-flight window)."""
        return len(self._queue)

    @property
    def backlog(self) -> int:
        """Messages not yet acknowledged by the broker: queued, and QoS 1/2 in flight."""
        return len(self._queue) + len(self._inflight)

    def _make_client(self) -> paho.Client:
        settings = self._settings
        protocol = paho.MQTTv5 if settings.protocol == "5" else paho.MQTTv311
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=protocol,
        )
        client.connect_timeout = _CONNECT_TIMEOUT
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
            client.will_set(self._state_topic, OFFLINE, qos=1, retain=True)
        # paho's queue stays unbounded and unused: we never hand it more than its window.
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.max_queued_messages_set(0)
        # A logger of our own (not registered, level ERROR): paho reports the socket error
        # behind a lost connection only there.  Its DEBUG lines cost one level check each.
        paho_log = logging.Logger(f"{__name__}.paho", logging.ERROR)  # noqa: LOG001 - one per client, never in the global registry
        paho_log.propagate = False
        paho_log.addHandler(self._socket_errors)
        client.enable_logger(paho_log)
        client.on_connect = self._paho_on_connect
        client.on_disconnect = self._paho_on_disconnect
        client.on_message = self._paho_on_message
        # on_publish is set only while QoS 1/2 messages are in flight: for QoS 0 paho would
        # build a reason code and a properties object per message written (a third of the cost
        # of a publish), and QoS 0 needs no acknowledgement.
        client.on_socket_open = self._paho_on_socket_open
        client.on_socket_close = self._paho_on_socket_close
        client.on_socket_register_write = self._paho_on_register_write
        client.on_socket_unregister_write = self._paho_on_unregister_write
        return client

    # -- the public side (asyncio loop) -------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; a broker that is down is retried forever."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._connected_event = asyncio.Event()
        self._lost = asyncio.Event()
        self._drained = asyncio.Event()
        settings = self._settings
        self._client.connect_async(settings.host, settings.port, settings.keepalive)
        self._tasks = [
            self._loop.create_task(self._connection_loop(), name="mqtt-connection"),
            self._loop.create_task(self._keepalive_loop(), name="mqtt-keepalive"),
        ]

    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109 - a plain bound
        """Wait for the first connection.

        Raises:
            TimeoutError: not connected within ``timeout`` seconds (``stats.last_error`` says
                why, when the broker was reached and refused).
        """
        assert self._connected_event is not None, "start() first"
        async with asyncio.timeout(timeout):
            await self._connected_event.wait()

    def subscribe(self, topic: str, callback: Handler) -> None:
        """Call ``callback(topic, payload, retained)`` for messages matching ``topic``.

        Wildcards are allowed; the subscription is renewed after every reconnect.  Subscribing
        again to the same filter makes the broker send its retained messages again.
        """
        self._subscriptions[topic] = callback
        if self._connected:
            self._client.subscribe(topic, qos=1)

    def publish(self, message: Message) -> None:
        """Publish now if the in-flight window has room, else queue (in order)."""
        if self._connected and not self._queue and self._has_room(message):
            self._hand(message)
            return
        self._enqueue(message)
        self._pump()

    async def drain(self, high_water: int = 2000) -> None:
        """Wait until the broker has taken what waits in our queue (flow control for floods).

        While connected, a producer faster than the broker acknowledges (QoS 1 and 2) waits
        here until the queue is empty, so no reading is replaced or dropped.  paho's outgoing
        packet queue for QoS 0 is unbounded: after ``high_water`` QoS 0 messages, wait until
        the last of them is written to the socket.  Meters are never that fast; replays and
        benchmarks are.
        """
        assert self._drained is not None, "start() first"
        while self._connected and self._queue:
            self._drained.clear()
            await self._drained.wait()
        if self._handed <= high_water:
            return
        self._handed = 0
        info = self._last_info
        while self._connected and info is not None and not info.is_published():
            self._drained.clear()
            await self._drained.wait()

    async def flush(self) -> None:
        """Wait until everything queued or in flight is acknowledged (or written, for QoS 0).

        Bounded by progress, not by a total: it waits as long as the broker keeps taking
        messages, and gives up after a few seconds without any.
        """
        assert self._drained is not None, "start() first"
        last = self._pending()
        deadline = time.monotonic() + _STOP_TIMEOUT
        while self._connected and last:
            self._drained.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), remaining)
            pending = self._pending()
            if pending < last:
                deadline = time.monotonic() + _STOP_TIMEOUT
            last = pending

    async def stop(self) -> None:
        """Send what is queued, publish ``offline``, disconnect, release the socket.

        A connect under way is completed first (bounded): a DISCONNECT queued right behind the
        CONNECT would make the broker drop everything the CONNACK then lets out.  A connect that
        hangs (no TCP or TLS answer, or no CONNACK within a second) is abandoned instead: the
        socket is closed without a word (a broker that got the CONNECT then publishes the will).
        """
        self._stopping = True
        connecting = self._connecting
        if connecting is not None:  # a connect in the worker thread: let it finish
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(connecting), _STOP_CONNECT_GRACE)
            # Still hanging: its daemon thread is left to its timeout; a socket it opens after
            # all is closed on arrival (see _watch).
            self._abandoned = not connecting.done()
        if not self._abandoned and not self._connected and self._client.socket() is not None:
            await self._wait_for_connack()
        if not self._connected:
            self._close_socket()
        if self._connected:
            if self._announce:
                self.publish(Message(self._state_topic, OFFLINE, 1, retain=True))
            await self.flush()
        self._connected = False
        if self._sock is not None:  # watched, so not closed above: say goodbye
            self._client.disconnect()
            assert self._lost is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), _STOP_TIMEOUT)
            self._close_socket()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- our queue and paho's window ----------------------------------------------------------

    def _has_room(self, message: Message) -> bool:
        return message.qos == 0 or len(self._inflight) < self._window

    def _hand(self, message: Message) -> None:
        """Give one message to paho (connected, and its window has room)."""
        client = self._client
        if message.qos:
            client.on_publish = self._paho_on_publish
        info = client.publish(message.topic, message.payload, message.qos, message.retain)
        if message.qos:
            # Success, or "not connected" (the socket died a moment ago): either way paho holds
            # the message now and sends it, again after a reconnect, until acknowledged.
            self._inflight.append(info)
        elif info.rc != paho.MQTT_ERR_SUCCESS:
            self._enqueue(message)  # QoS 0 that paho could not take: ours to keep
            return
        else:
            self._last_info = info
            self._handed += 1
        if message.topic != self._state_topic:
            self.stats.published += 1

    def _pump(self) -> None:
        """Hand queued messages to paho, in order, as far as the in-flight window allows."""
        queue = self._queue
        while queue and self._connected:
            message = next(iter(queue.values()))
            if not self._has_room(message):
                break
            queue.popitem(last=False)
            self._hand(message)

    def _settle(self) -> None:
        """Acknowledgements arrived: forget what is done, hand over what waits."""
        self._settle_soon = False
        if self._inflight:
            self._inflight = [info for info in self._inflight if not info.is_published()]
        if not self._inflight:
            self._client.on_publish = None
        self._pump()
        if self._drained is not None:
            self._drained.set()

    def _pending(self) -> int:
        last = self._last_info
        unwritten = last is not None and not last.is_published()
        return self.backlog + unwritten

    def _enqueue(self, message: Message) -> None:
        if self._queue.pop(message.topic, None) is not None:
            self.stats.replaced += 1
        self._queue[message.topic] = message
        while len(self._queue) > self._settings.queue_size:
            self._queue.pop(self._eviction_candidate())
            self.stats.dropped += 1

    def _eviction_candidate(self) -> str:
        """The oldest reading, else the oldest message.

        Readings are replaced by the next frame anyway; retained messages (discovery,
        availability) are sent once and would be missing until the next change.
        """
        return next((t for t, m in self._queue.items() if not m.retain), next(iter(self._queue)))

    # -- connecting ---------------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        assert self._lost is not None
        while True:
            self._lost.clear()
            if await self._open():
                await self._await_connack()
                await self._lost.wait()
            if self._stopping:
                return
            await asyncio.sleep(self._back_off.next_delay())

    async def _open(self) -> bool:
        """One connect attempt: TCP (and TLS) in a worker thread, then CONNECT is queued."""
        assert self._loop is not None
        self._attempt_failed = False
        self._socket_errors.last = None
        self._connecting = self._in_worker(self._client.reconnect)
        try:
            await self._connecting
        except (OSError, ValueError) as exc:  # refused, unreachable, DNS, TLS, timeout
            self._connect_failed(describe_error(exc))
            return False
        except Exception as exc:  # whatever paho raises, the daemon must retry, not die
            _LOGGER.exception("unexpected error while connecting to the MQTT broker")
            self._connect_failed(repr(exc))
            return False
        finally:
            self._connecting = None
        return True

    async def _await_connack(self) -> None:
        """A broker that accepts TCP but never answers CONNECT: give up after a while."""
        if await self._connack_or_loss(_CONNACK_TIMEOUT) or self._stopping:
            return
        self._connect_failed(f"no CONNACK within {_CONNACK_TIMEOUT:g} s (is this an MQTT port?)")
        self._attempt_failed = True
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # paho reads the end and closes as for a loss

    def _in_worker(self, function: Callable[[], object]) -> asyncio.Future[Any]:
        """``function()`` in a daemon thread of its own.

        Not the loop's default executor: ``asyncio.run`` joins its threads at the end, so a
        connect that hangs (a TLS handshake nobody answers) would hold a stopping daemon for the
        whole connect timeout.
        """
        loop = self._loop
        assert loop is not None
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: object, error: BaseException | None) -> None:
            if future.done():  # cancelled: nobody waits any more
                return
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

        def work() -> None:
            result: object = None
            error: BaseException | None = None
            try:
                result = function()
            except Exception as exc:  # noqa: BLE001 - handed to the loop, which sorts it out
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to tell
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=work, name="mqtt-connect", daemon=True).start()
        return future

    def _connect_failed(self, reason: str) -> None:
        """Log a failed attempt once per outage and cause, not once per attempt."""
        settings = self._settings
        if self.stats.last_error != reason:
            _LOGGER.warning(
                "cannot connect to MQTT broker %s:%s: %s; retrying",
                settings.host,
                settings.port,
                reason,
            )
        self.stats.last_error = reason

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(_MISC_PERIOD)
            if self._connecting is None:  # paho's state belongs to the worker thread then
                self._guarded(self._client.loop_misc)

    async def _wait_for_connack(self) -> None:
        """CONNECT is out: wait (bounded) until the broker accepts it or the connection is lost."""
        await self._connack_or_loss(_STOP_CONNECT_GRACE)

    async def _connack_or_loss(self, patience: float) -> bool:
        """Wait up to ``patience`` s for the CONNACK or the loss of the connection: did one come?"""
        assert self._connected_event is not None
        assert self._lost is not None
        waiters = {
            asyncio.ensure_future(self._connected_event.wait()),
            asyncio.ensure_future(self._lost.wait()),
        }
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=patience, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        return bool(done)

    def _loss_cause(self, reason: str) -> str:
        """What paho's "Unspecified error" was: the socket error it logged, or a clean close."""
        error = self._socket_errors.last
        self._socket_errors.last = None
        if error is not None:
            return describe_error(error)
        if reason == "Keep alive timeout":
            return f"no answer within the keep-alive ({self._settings.keepalive} s)"
        if reason == "Unspecified error":
            return "connection closed by the broker"
        return reason

    # -- the socket in the asyncio loop -------------------------------------------------------

    def _watch(self, sock: socket.socket) -> None:
        if self._client.socket() is not sock or self._loop is None:
            return  # closed again before the hop arrived
        if self._abandoned:  # a connect given up on by stop()
            with contextlib.suppress(OSError):
                sock.close()
            return
        self._forget()
        self._sock, self._fd = sock, sock.fileno()
        self._loop.add_reader(self._fd, self._readable)

    def _unwatch(self, sock: socket.socket) -> None:
        """Paho closes ``sock``: the connection is gone (a stale socket's close is not news)."""
        if sock is not self._sock:
            return
        self._forget()
        if self._lost is not None:
            self._lost.set()

    def _forget(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._sock = self._fd = None

    def _close_socket(self) -> None:
        """On stop, when the broker did not close: stop watching and close it ourselves."""
        sock = self._client.socket()
        self._forget()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _want_write(self, sock: socket.socket) -> None:
        if self._fd is not None and self._loop is not None and self._client.socket() is sock:
            self._loop.add_writer(self._fd, self._writable)

    def _no_write(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        client = self._client
        self._guarded(client.loop_read)
        # TLS decrypts whole records: bytes already decrypted leave the descriptor quiet.
        for _ in range(_TLS_READS):
            sock = client.socket()
            if not isinstance(sock, ssl.SSLSocket) or sock.pending() == 0:
                break
            self._guarded(client.loop_read)
        if self._drained is not None:
            self._drained.set()  # acknowledgements of QoS 1 and 2 arrive here

    def _writable(self) -> None:
        self._guarded(self._client.loop_write)
        if self._drained is not None:
            self._drained.set()

    # -- paho's callbacks (the loop; the worker thread during a connect) ----------------------

    def _in_loop(self, function: Callable[..., object], *args: Any) -> None:  # noqa: ANN401
        """Run ``function`` in the asyncio loop, now if this is the loop's thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            self._guarded(function, *args)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and now
            loop.call_soon_threadsafe(self._guarded, function, *args)

    @staticmethod
    def _guarded(function: Callable[..., object], *args: Any) -> None:  # noqa: ANN401
        try:
            function(*args)
        except Exception:
            _LOGGER.exception("error in MQTT handler %s", getattr(function, "__name__", function))

    def _paho_on_socket_open(self, _c: paho.Client, _u: object, sock: Any) -> None:  # noqa: ANN401
        self._in_loop(self._watch, sock)

    def _paho_on_socket_close(self, _c: paho.Client, _u: object, sock: Any) -> None:  # noqa: ANN401
        self._in_loop(self._unwatch, sock)

    def _paho_on_register_write(self, _c: paho.Client, _u: object, sock: Any) -> None:  # noqa: ANN401
        self._in_loop(self._want_write, sock)

    def _paho_on_unregister_write(self, _c: paho.Client, _u: object, _s: Any) -> None:  # noqa: ANN401
        self._in_loop(self._no_write)

    def _paho_on_connect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: object,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        self._in_loop(
            self._connect_result, reason_code.is_failure, str(reason_code), receive_maximum
        )

    def _paho_on_publish(
        self, _client: paho.Client, _userdata: object, _mid: int, _rc: object, _p: object
    ) -> None:
        # paho calls this *before* it marks the message done: look in the next turn of the loop.
        loop = self._loop
        if self._settle_soon or loop is None or loop.is_closed():
            return
        self._settle_soon = True
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._guarded, self._settle)

    def _paho_on_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: object,
        reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        self._in_loop(self._disconnected, str(reason_code))

    def _paho_on_message(
        self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage
    ) -> None:
        self._in_loop(self._dispatch, message.topic, bytes(message.payload), bool(message.retain))

    # -- what the callbacks mean --------------------------------------------------------------

    def _connect_result(self, failed: bool, reason: str, receive_maximum: object = None) -> None:
        settings = self._settings
        self._handed = 0
        if failed:
            self._attempt_failed = True
            hint = " (check mqtt.username and mqtt.password)" if reason in _BAD_CREDENTIALS else ""
            cause = f"refused the connection: {reason}{hint}"
            if self.stats.last_error != cause:
                _LOGGER.error("MQTT broker %s:%s %s", settings.host, settings.port, cause)
            self.stats.last_error = cause
            return
        self._connected = True
        # Reachable once, it will be again soon: retry within seconds, not tens of seconds.
        self._back_off.cap = _RECONNECT_KNOWN_MAX
        self._back_off.reset()
        self._window = MAX_INFLIGHT
        if isinstance(receive_maximum, int) and receive_maximum > 0:
            self._window = min(MAX_INFLIGHT, receive_maximum)
        self.stats.connects += 1
        self.stats.last_error = None
        self._takeovers.connected()
        _LOGGER.info("connected to MQTT broker %s:%s", settings.host, settings.port)
        if self._announce:  # first of all, ahead of what waited
            self._queue[self._state_topic] = Message(self._state_topic, ONLINE, 1, retain=True)
            self._queue.move_to_end(self._state_topic, last=False)
        for topic in self._subscriptions:
            self._client.subscribe(topic, qos=1)
        self._pump()
        if self._connected_event is not None:
            self._connected_event.set()
        if self.on_connected is not None:
            self.on_connected()

    def _disconnected(self, reason: str) -> None:
        if self._connected_event is not None:
            self._connected_event.clear()
        cause = self._loss_cause(reason)
        if self._connected:
            self.stats.disconnects += 1
            if not self._stopping:
                settings = self._settings
                _LOGGER.warning(
                    "lost the MQTT broker %s:%s (%s); reconnecting",
                    settings.host,
                    settings.port,
                    cause,
                )
                self.stats.last_error = cause
                if self._takeovers.lost(cause):
                    _LOGGER.warning(
                        "the MQTT broker keeps closing this connection within seconds of each "
                        "connect: another client is connected with the same mqtt.client_id "
                        "%r (a replay or a second han2mqtt?); give each its own mqtt.client_id",
                        settings.client_id,
                    )
        elif not self._attempt_failed and not self._stopping:
            if cause in {"connection closed by the broker", "connection reset by peer"}:
                cause += " (a TLS listener and mqtt.tls not enabled? or it refuses this client)"
            self._connect_failed(f"{cause} before CONNACK")
        self._attempt_failed = True
        self._connected = False
        if self._drained is not None:
            self._drained.set()  # nothing more goes out now
        if self._lost is not None:
            self._lost.set()

    def _dispatch(self, topic: str, payload: bytes, retained: bool) -> None:
        for pattern, callback in list(self._subscriptions.items()):
            if paho.topic_matches_sub(_topic_filter(pattern), topic):
                callback(topic, payload, retained)


def _topic_filter(pattern: str) -> str:
    """The filter a subscription matches topics with: ``$share/<group>/`` is not part of it."""
    if pattern.startswith("$share/"):
        return pattern.split("/", 2)[2]
    return pattern
