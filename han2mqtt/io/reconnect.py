"""Keep a meter connection alive forever: back-off, circuit breaker, data-silence watchdog.

A meter port is a flaky thing: USB adapters are unplugged, ser2net and ESP-Link bridges restart,
Wi-Fi drops, TCP connections go half-open and silent.  :class:`ConnectionManager` reconnects after
every loss with capped, jittered exponential back-off; stops hammering a peer that drops every
connection right after accepting it (circuit breaker); and treats a connection that delivers no
bytes for ``watchdog_timeout`` seconds as lost, or with a ``progress`` counter (the daemon's
decoded frames) one that delivers no *decoded frame*: a port that sends only garbage is
reopened.  A connection attempt that hangs (a peer dropping SYNs) fails after ``connect_timeout``
seconds, and :meth:`ConnectionManager.close` interrupts it at once.  Repeated identical failures
are logged once at WARNING, then at DEBUG.  Time comes from
an injectable :class:`Clock`, so tests check the timing without sleeping.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from han2mqtt.errors import TransportError
from han2mqtt.io.stream import StreamProtocol

__all__ = [
    "BackOff",
    "CircuitBreaker",
    "Clock",
    "ConnectionManager",
    "ConnectionState",
    "ConnectionStats",
    "SystemClock",
]

_LOGGER = logging.getLogger(__name__)

ConnectionFactory = Callable[[], Awaitable[tuple[asyncio.BaseTransport, StreamProtocol]]]

REMINDER_INTERVAL = 600.0
"""Seconds (on the manager's clock) between WARNING reminders while the same failure repeats."""
_MAX_REASONS = 16
"""Distinct failure reasons remembered per outage; keeps odd, ever-changing messages bounded."""


class Clock(Protocol):
    """Monotonic time and sleeping, as the manager sees them."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep()``."""
        await asyncio.sleep(seconds)


class BackOff:
    """Capped exponential back-off with "equal jitter": half fixed, half random.

    The n-th consecutive failure waits between ``d/2`` and ``d`` seconds, ``d = min(cap, base·2ⁿ)``,
    so many clients restarted together do not reconnect in lock-step.
    """

    def __init__(
        self, base: float = 1.0, cap: float = 60.0, rng: Callable[[], float] = random.random
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("back-off needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._rng: Callable[[], float] = rng
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; counts one more failure."""
        ceiling: float = min(self.cap, self.base * float(2**self.failures))
        self.failures = min(self.failures + 1, 32)
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        """A connection proved healthy: start from the base delay again."""
        self.failures = 0


class CircuitBreaker:
    """Opens after ``max_drops`` short-lived connections within ``window`` seconds.

    A connection that drops before ``min_lifetime`` seconds is "short-lived": the peer accepts and
    immediately closes (a bridge whose serial side is gone, a busy single-client server).  While
    open, the manager waits ``cooldown`` seconds before trying again.
    """

    def __init__(
        self,
        max_drops: int = 5,
        window: float = 120.0,
        cooldown: float = 300.0,
        min_lifetime: float = 10.0,
    ) -> None:
        self.max_drops = max_drops
        self.window = window
        self.cooldown = cooldown
        self.min_lifetime = min_lifetime
        self._drops: list[float] = []
        self.open_until: float | None = None
        self.trips = 0

    def record(self, connected_at: float, lost_at: float) -> None:
        """Record a lost connection; long-lived ones clear the history."""
        if lost_at - connected_at >= self.min_lifetime:
            self.reset()
            return
        self._drops = [t for t in self._drops if lost_at - t < self.window]
        self._drops.append(lost_at)
        if len(self._drops) >= self.max_drops:
            self.open_until = lost_at + self.cooldown
            self._drops.clear()
            self.trips += 1

    def is_open(self, now: float) -> bool:
        """True while the cool-down runs."""
        if self.open_until is not None and now >= self.open_until:
            self.open_until = None
        return self.open_until is not None

    def reset(self) -> None:
        """Forget the history."""
        self._drops.clear()
        self.open_until = None


class ConnectionState(enum.Enum):
    """Where the manager is."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    WAITING = "waiting"
    CIRCUIT_OPEN = "circuit open"
    CLOSED = "closed"


@dataclass(slots=True)
class ConnectionStats:
    """Counters for diagnostics; they only grow."""

    connects: int = 0
    connection_failures: int = 0
    disconnects: int = 0
    watchdog_timeouts: int = 0
    circuit_trips: int = 0
    last_error: str | None = None
    history: list[str] = field(default_factory=list)


class ConnectionManager:
    """Connect with ``connection_factory`` and reconnect forever, until :meth:`close`.

    Args:
        connection_factory: zero-argument callable returning an awaitable of
            ``(transport, protocol)``, e.g. ``lambda: create_tcp_frame_connection(q, None, h, p)``.
        back_off: delays between attempts.
        circuit_breaker: protection against peers that drop every connection at once.
        watchdog_timeout: seconds without a byte after which a connection counts as lost
            (None: no watchdog). Meters push every 2-10 s, so 30-60 s is a good value.
        progress: a counter that grows with every good frame (checksums and length right); the
            watchdog then waits for it instead of bytes, so a port that delivers only noise is
            reconnected too, while one whose frames fail to decode (a wrong key) is not: reopening
            it would change nothing.  A stall is logged once at WARNING (naming ``source`` and the
            bytes that did arrive), then at DEBUG (with a reminder every
            :data:`REMINDER_INTERVAL`) until a good frame arrives again.
        source: how the logs name the source (``tcp 192.0.2.7:8899``).
        stable_after: seconds a connection must live to reset the back-off.
        connect_timeout: seconds one connection attempt may take before it counts as failed
            (None: unbounded). A peer that drops SYNs otherwise holds a TCP connect for minutes.
            Measured on the event loop's time, not ``clock``: it bounds real network I/O.
        clock: time source; :class:`SystemClock` unless testing.
        on_state_change: called with the new state at every change.
    """

    def __init__(  # noqa: PLR0913 - every knob has a default
        self,
        connection_factory: ConnectionFactory,
        *,
        back_off: BackOff | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        watchdog_timeout: float | None = None,
        stable_after: float = 60.0,
        connect_timeout: float | None = 30.0,
        clock: Clock | None = None,
        on_state_change: Callable[[ConnectionState], None] | None = None,
        progress: Callable[[], int] | None = None,
        source: str = "the meter",
    ) -> None:
        self._factory = connection_factory
        self.back_off = back_off or BackOff()
        self.circuit_breaker = circuit_breaker or CircuitBreaker()
        self.watchdog_timeout = watchdog_timeout
        self._stable_after = stable_after
        self.connect_timeout = connect_timeout
        self._clock: Clock = clock or SystemClock()
        self._on_state_change = on_state_change
        self._progress = progress
        self._source = source
        self._stall_warned_at: float | None = None
        """When the current stall (no decoded frame) was last logged at WARNING; None: no stall."""
        self._closing = False
        self._wakeup: asyncio.Event | None = None
        self._transport: asyncio.BaseTransport | None = None
        self.state = ConnectionState.CLOSED
        self.retry_at: float | None = None
        self.protocol: StreamProtocol | None = None
        self.stats = ConnectionStats()
        # The current outage, for logging: failed attempts since the last connection, the reasons
        # already logged at WARNING, and when the last WARNING about it was written.
        self._outage_attempts = 0
        self._outage_reasons: set[str] = set()
        self._outage_warned_at = 0.0

    def _set_state(
        self, state: ConnectionState, message: str | None = None, level: int | None = None
    ) -> None:
        if state is self.state and message is None:
            return
        self.state = state
        if message:
            if level is None:
                level = logging.INFO if state is ConnectionState.CONNECTED else logging.WARNING
            _LOGGER.log(level, "%s", message)
        if self._on_state_change is not None:
            self._on_state_change(state)

    async def connect_loop(self) -> None:
        """Run until :meth:`close`; connection errors never escape.

        A :meth:`close` that came before this coroutine first ran still counts: it returns at once.
        """
        # The event is made here, not in __init__, so that it belongs to the loop that runs us;
        # ``_closing`` is deliberately not reset, or a SIGTERM during start-up would be lost.
        self._wakeup = asyncio.Event()
        if self._closing:
            self._wakeup.set()
        try:
            while not self._closing:
                if await self._wait_for_circuit():
                    continue
                await self._attempt()
        finally:
            self._close_transport()
            self._set_state(ConnectionState.CLOSED)

    async def _wait_for_circuit(self) -> bool:
        now = self._clock.monotonic()
        if not self.circuit_breaker.is_open(now):
            return False
        until = self.circuit_breaker.open_until or now
        self.retry_at = until
        self._set_state(
            ConnectionState.CIRCUIT_OPEN,
            f"meter connection keeps dropping; pausing {until - now:.0f} s",
        )
        await self._sleep(until - now)
        return True

    async def _attempt(self) -> None:
        self._set_state(ConnectionState.CONNECTING)
        try:
            connection = await self._connect()
        except (TransportError, OSError) as exc:
            self.stats.connection_failures += 1
            self.stats.last_error = str(exc)
            await self._wait_before_retry(f"cannot connect: {exc}", str(exc))
            return
        if connection is not None:
            await self._serve(*connection)

    async def _connect(self) -> tuple[asyncio.BaseTransport, StreamProtocol] | None:
        """Run the factory until it finishes, ``connect_timeout`` passes or :meth:`close` is called.

        Returns None when closing.  The factory runs as a task of its own so that neither a
        timeout nor close() has to wait for the kernel to give up on an unanswered SYN.
        """
        assert self._wakeup is not None
        connecting = asyncio.ensure_future(self._factory())
        waker = asyncio.ensure_future(self._wakeup.wait())
        done: set[asyncio.Future[Any]] = set()
        try:
            done, _ = await asyncio.wait(
                {connecting, waker},
                timeout=self.connect_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waker.cancel()
            connecting.cancel()
            # return_exceptions: collect the cancelled inner tasks without swallowing a
            # cancellation of our own task, which carries on after this block.
            await asyncio.gather(connecting, waker, return_exceptions=True)
            if connecting not in done and (late := _result(connecting)) is not None:
                # Cancelled (close(), timeout, our own cancellation), yet the connect completed in
                # the same instant or ignored the cancel: nobody will serve it, so do not leak it.
                late[0].close()
        if connecting in done:
            # Finished first: a connection to serve even if close() came meanwhile (_serve then
            # ends it at once), or the factory's own error.
            return connecting.result()
        if self._closing:
            return None
        raise TransportError(f"connect timed out after {self.connect_timeout:g} s")

    async def _serve(self, transport: asyncio.BaseTransport, protocol: StreamProtocol) -> None:
        self._transport, self.protocol = transport, protocol
        self.stats.connects += 1
        connected_at = self._clock.monotonic()
        self.retry_at = None
        self._outage_attempts = 0
        self._outage_reasons.clear()
        # Within a stall every reconnect is part of one story, told once.
        quiet = logging.DEBUG if self._stall_warned_at is not None else None
        self._set_state(ConnectionState.CONNECTED, "meter connection established", quiet)
        reason, stalled = await self._until_lost(protocol)
        self._close_transport()
        self.stats.disconnects += 1
        lost_at = self._clock.monotonic()
        if lost_at - connected_at >= self._stable_after:
            self.back_off.reset()
        trips = self.circuit_breaker.trips
        self.circuit_breaker.record(connected_at, lost_at)
        self.stats.circuit_trips += self.circuit_breaker.trips - trips
        if not self._closing:
            self.stats.last_error = reason
            level = self._stall_level(lost_at) if stalled else None
            await self._wait_before_retry(f"meter connection lost ({reason})", reason, level)

    async def _until_lost(self, protocol: StreamProtocol) -> tuple[str, bool]:
        """Wait until the connection ends, the watchdog fires, or the manager closes.

        Returns the reason, and whether it was the watchdog.
        """
        waiters: dict[asyncio.Future[Any], str] = {
            asyncio.ensure_future(protocol.done): "closed by peer",
        }
        assert self._wakeup is not None
        waiters[asyncio.ensure_future(self._wakeup.wait())] = "closing"
        watchdog: asyncio.Future[str] | None = None
        if self.watchdog_timeout is not None:
            watchdog = asyncio.ensure_future(self._watch(protocol, self.watchdog_timeout))
            waiters[watchdog] = "watchdog"
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        first = next(iter(done))
        reason = waiters[first]
        if reason == "closed by peer" and first.exception() is not None:
            reason = f"error: {first.exception()}"
        if watchdog is not None and first is watchdog:
            self.stats.watchdog_timeouts += 1
            return watchdog.result(), True
        return reason, False

    async def _watch(self, protocol: StreamProtocol, silence: float) -> str:
        """Return the reason once ``silence`` seconds pass (on the manager's clock) idle.

        Idle: without a new byte, or with a ``progress`` counter, without a good frame.
        """
        progress = self._progress
        count = progress if progress is not None else (lambda: protocol.bytes_received)
        last_count, last_bytes = count(), protocol.bytes_received
        last_change = self._clock.monotonic()
        step = max(silence / 4, 0.01)
        while True:
            await self._clock.sleep(step)
            now = self._clock.monotonic()
            if count() != last_count:
                last_count, last_bytes, last_change = count(), protocol.bytes_received, now
                self._end_stall()
            elif now - last_change >= silence:
                if progress is None:
                    return f"no data for {silence:g} s"
                received = protocol.bytes_received - last_bytes
                return (
                    f"no valid frame for {silence:g} s from {self._source}; "
                    f"{received} bytes received"
                )

    def _stall_level(self, now: float) -> int:
        """WARNING for a stall's first watchdog loss (and a reminder now and then), else DEBUG."""
        warned = self._stall_warned_at
        if warned is None or now - warned >= REMINDER_INTERVAL:
            self._stall_warned_at = now
            return logging.WARNING
        return logging.DEBUG

    def _end_stall(self) -> None:
        if self._stall_warned_at is not None:
            self._stall_warned_at = None
            _LOGGER.info("valid frames again from %s", self._source)

    async def _wait_before_retry(self, why: str, reason: str, level: int | None = None) -> None:
        """Back off after a failure; ``why`` is the whole story, ``reason`` the bare error.

        ``level`` overrides the once-per-reason rule (the watchdog keeps its own).
        """
        delay = self.back_off.next_delay()
        now = self._clock.monotonic()
        self.retry_at = now + delay
        self.stats.history = [*self.stats.history[-19:], why]
        message = f"{why}; reconnecting in {delay:.1f} s"
        self._outage_attempts += 1
        if level is None:
            level, message = self._outage_level(why, reason, now, delay)
        if level == logging.WARNING:
            self._outage_warned_at = now
        self._set_state(ConnectionState.WAITING, message, level)
        await self._sleep(delay)

    def _outage_level(self, why: str, reason: str, now: float, delay: float) -> tuple[int, str]:
        """The level (and text) of a failure's log line within the current outage.

        A peer that keeps refusing would otherwise write one WARNING per retry: warn once per
        reason and outage, then only remind every REMINDER_INTERVAL; the rest goes to DEBUG.
        """
        if why not in self._outage_reasons:
            if len(self._outage_reasons) >= _MAX_REASONS:
                self._outage_reasons.clear()
            self._outage_reasons.add(why)
            return logging.WARNING, f"{why}; reconnecting in {delay:.1f} s"
        if now - self._outage_warned_at >= REMINDER_INTERVAL:
            return logging.WARNING, (
                f"still cannot connect after {self._outage_attempts} attempts: {reason}; "
                f"reconnecting in {delay:.1f} s"
            )
        return logging.DEBUG, f"{why}; reconnecting in {delay:.1f} s"

    async def _sleep(self, seconds: float) -> None:
        """Sleep on the manager's clock; :meth:`close` cuts it short."""
        assert self._wakeup is not None
        sleeper = asyncio.ensure_future(self._clock.sleep(max(seconds, 0)))
        waker = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    def _close_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def close(self) -> None:
        """Stop: close the connection and make :meth:`connect_loop` return."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        self._close_transport()


def _result(
    future: asyncio.Future[tuple[asyncio.BaseTransport, StreamProtocol]],
) -> tuple[asyncio.BaseTransport, StreamProtocol] | None:
    """The connection a finished factory returned, or None if it failed or was cancelled."""
    if not future.done() or future.cancelled() or future.exception() is not None:
        return None
    return future.result()
