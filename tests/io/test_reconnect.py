"""Back-off, circuit breaker and watchdog timing on a fake clock: no test sleeps for real."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from han2mqtt.errors import TransportError
from han2mqtt.io import (
    BackOff,
    CircuitBreaker,
    ConnectionManager,
    ConnectionState,
    SmartMeterFrameProtocol,
    StreamProtocol,
)
from tests.io.helpers import FakeClock


def test_back_off_doubles_up_to_the_cap_with_equal_jitter():
    high = BackOff(base=1, cap=60, rng=lambda: 1.0)
    assert [high.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    low = BackOff(base=1, cap=60, rng=lambda: 0.0)
    assert [low.next_delay() for _ in range(3)] == [0.5, 1, 2]
    high.reset()
    assert high.next_delay() == 1


def test_back_off_rejects_nonsense():
    with pytest.raises(ValueError, match="base"):
        BackOff(base=0)


def test_circuit_breaker_opens_on_short_lived_connections_only():
    breaker = CircuitBreaker(max_drops=3, window=60, cooldown=300, min_lifetime=10)
    breaker.record(0, 100)  # long-lived: not a drop
    for t in (200, 201, 202):
        breaker.record(t, t + 1)
    assert breaker.is_open(204)
    assert not breaker.is_open(203 + 300)
    assert breaker.trips == 1


def test_circuit_breaker_forgets_drops_outside_the_window():
    breaker = CircuitBreaker(max_drops=3, window=60, cooldown=300, min_lifetime=10)
    for t in (0, 100, 200):
        breaker.record(t, t + 1)
    assert not breaker.is_open(202)


class Transport(asyncio.Transport):
    def __init__(self, protocol: StreamProtocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)


def _connection(*, closed: bool = False) -> tuple[Transport, SmartMeterFrameProtocol]:
    """A connection as a factory returns it; ``closed``: one the peer drops at once."""
    protocol = SmartMeterFrameProtocol(asyncio.Queue())
    transport = Transport(protocol)
    protocol.connection_made(transport)
    if closed:
        transport.close()
    return transport, protocol


async def _run_until(manager: ConnectionManager, predicate, limit: int = 10_000) -> None:
    task = asyncio.create_task(manager.connect_loop())
    for _ in range(limit):
        await asyncio.sleep(0)
        if predicate():
            break
    manager.close()
    async with asyncio.timeout(5):
        await task
    assert manager.state is ConnectionState.CLOSED


async def test_failed_connects_wait_with_growing_back_off():
    clock = FakeClock()

    async def refuse():
        raise TransportError("connection refused")

    manager = ConnectionManager(refuse, back_off=BackOff(1, 8, rng=lambda: 1.0), clock=clock)
    await _run_until(manager, lambda: len(clock.sleeps) >= 6)
    assert clock.sleeps[:6] == [1, 2, 4, 8, 8, 8]
    assert manager.stats.connection_failures >= 6
    assert manager.stats.last_error == "connection refused"


async def test_peer_that_drops_every_connection_opens_the_circuit():
    clock = FakeClock()
    states: list[ConnectionState] = []

    async def accept_and_drop():
        return _connection(closed=True)

    manager = ConnectionManager(
        accept_and_drop,
        back_off=BackOff(1, 1, rng=lambda: 0.0),
        circuit_breaker=CircuitBreaker(max_drops=3, window=60, cooldown=300, min_lifetime=10),
        clock=clock,
        on_state_change=states.append,
    )
    await _run_until(manager, lambda: ConnectionState.CIRCUIT_OPEN in states)
    assert states.count(ConnectionState.CONNECTED) == 3
    # the back-off wait after the third drop, then the rest of the 300 s cool-down
    assert clock.sleeps[-2:] == [0.5, 299.5]
    assert manager.stats.circuit_trips == 1


async def test_silent_connection_is_dropped_by_the_watchdog_on_the_fake_clock():
    clock = FakeClock()
    transports: list[Transport] = []

    async def accept_silently():
        transport, protocol = _connection()
        transports.append(transport)
        return transport, protocol

    manager = ConnectionManager(
        accept_silently,
        back_off=BackOff(1, 1, rng=lambda: 0.0),
        watchdog_timeout=30,
        clock=clock,
    )
    await _run_until(manager, lambda: manager.stats.watchdog_timeouts >= 2)
    assert manager.stats.watchdog_timeouts >= 2
    assert transports[0].closed
    assert sum(s for s in clock.sleeps if s == 7.5) >= 30  # checked every timeout/4
    assert manager.stats.last_error == "no data for 30 s"


async def test_data_keeps_the_watchdog_quiet():
    clock = FakeClock()

    async def accept_chatty():
        transport, protocol = _connection()

        async def chatter() -> None:
            while not transport.closed:
                protocol.data_received(b"\x00")
                await asyncio.sleep(0)

        accept_chatty.task = asyncio.create_task(chatter())  # type: ignore[attr-defined]
        return transport, protocol

    manager = ConnectionManager(accept_chatty, watchdog_timeout=30, clock=clock)
    await _run_until(manager, lambda: clock.now > 1000, limit=20_000)
    assert manager.stats.watchdog_timeouts == 0
    assert manager.stats.connects == 1
    await accept_chatty.task  # type: ignore[attr-defined]


async def test_close_while_waiting_returns_promptly():
    clock = FakeClock()

    async def refuse():
        raise TransportError("no")

    manager = ConnectionManager(refuse, back_off=BackOff(1000, 1000), clock=clock)
    task = asyncio.create_task(manager.connect_loop())
    await asyncio.sleep(0)
    manager.close()
    async with asyncio.timeout(1):
        await task


async def _returns_within(task: asyncio.Task[None], seconds: float) -> None:
    """Fail unless ``task`` ends by itself within ``seconds``.

    Unlike ``asyncio.timeout`` around ``await task``, this never cancels the task on expiry; a
    cancellation could make a stuck manager look prompt.
    """
    await asyncio.wait({task}, timeout=seconds)
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pytest.fail(f"connect_loop() still running after {seconds} s")
    task.result()


async def _never() -> None:
    """A connect that never completes: the peer drops our SYNs (a powered-off ser2net box)."""
    await asyncio.get_running_loop().create_future()


async def test_close_during_a_hanging_connect_cancels_it_and_returns_promptly():
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def drop_syns():
        started.set()
        try:
            await _never()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    # the default connect timeout (30 s) must not be what ends the wait
    manager = ConnectionManager(drop_syns, clock=FakeClock())
    await _close_while_connecting(manager, started)
    assert cancelled.is_set()
    assert manager.state is ConnectionState.CLOSED
    assert manager.stats.connection_failures == 0


async def _close_while_connecting(manager: ConnectionManager, started: asyncio.Event) -> None:
    """Run the manager, close it once its factory has begun, and expect it to return at once."""
    task = asyncio.create_task(manager.connect_loop())
    async with asyncio.timeout(1):
        await started.wait()
    manager.close()
    await _returns_within(task, 0.5)


async def test_transport_of_a_connect_that_completes_despite_close_is_closed():
    transports: list[Transport] = []
    started = asyncio.Event()

    async def finish_anyway():
        protocol = SmartMeterFrameProtocol(asyncio.Queue())
        transport = Transport(protocol)
        transports.append(transport)
        started.set()
        # the connect completes in the same instant as the cancel: the manager gets a live transport
        with contextlib.suppress(asyncio.CancelledError):
            await _never()
        protocol.connection_made(transport)
        return transport, protocol

    manager = ConnectionManager(finish_anyway, clock=FakeClock())
    await _close_while_connecting(manager, started)
    assert transports[0].closed
    assert manager.stats.connects == 0


async def test_connect_timeout_counts_as_a_failure_and_backs_off():
    clock = FakeClock()
    attempts = 0

    async def drop_syns():
        nonlocal attempts
        attempts += 1
        await _never()

    manager = ConnectionManager(
        drop_syns,
        back_off=BackOff(1, 8, rng=lambda: 1.0),
        connect_timeout=0.02,
        clock=clock,
    )
    task = asyncio.create_task(manager.connect_loop())
    async with asyncio.timeout(5):
        while manager.stats.connection_failures < 3:
            await asyncio.sleep(0.01)
    manager.close()
    await _returns_within(task, 0.5)
    assert clock.sleeps[:3] == [1, 2, 4]  # the usual back-off, on the manager's clock
    assert attempts >= 3
    assert manager.stats.last_error == "connect timed out after 0.02 s"


async def test_connect_timeout_none_waits_for_the_factory():
    gate = asyncio.get_running_loop().create_future()

    async def slow_accept():
        await gate
        return _connection()

    manager = ConnectionManager(slow_accept, connect_timeout=None, clock=FakeClock())
    task = asyncio.create_task(manager.connect_loop())
    await asyncio.sleep(0.05)
    assert manager.stats.connection_failures == 0
    gate.set_result(None)
    async with asyncio.timeout(1):
        while manager.stats.connects == 0:
            await asyncio.sleep(0)
    manager.close()
    await _returns_within(task, 1)


async def test_cancelling_the_manager_task_during_a_connect_propagates():
    started = asyncio.Event()

    async def drop_syns():
        started.set()
        await _never()

    manager = ConnectionManager(drop_syns, clock=FakeClock())
    task = asyncio.create_task(manager.connect_loop())
    async with asyncio.timeout(1):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(1):
            await task
    assert task.cancelled()


async def test_close_before_the_loop_starts_is_not_lost():
    calls = 0

    async def refuse():
        nonlocal calls
        calls += 1
        raise TransportError("no")

    manager = ConnectionManager(refuse, clock=FakeClock())
    task = asyncio.create_task(manager.connect_loop())
    manager.close()  # e.g. SIGTERM during start-up, before the task ran once
    await _returns_within(task, 1)
    assert calls == 0
    assert manager.state is ConnectionState.CLOSED


def _log(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == "han2mqtt.io.reconnect"
    ]


async def test_repeated_connect_failures_warn_once_then_remind_every_ten_minutes(caplog):
    caplog.set_level(logging.DEBUG, logger="han2mqtt.io.reconnect")
    clock = FakeClock()

    async def refuse():
        raise TransportError("connection refused")

    manager = ConnectionManager(refuse, back_off=BackOff(1, 60, rng=lambda: 1.0), clock=clock)
    # failures at t = 0, 1, 3, 7, 15, 31, 63, then every 60 s: 123, ..., 603 (16th), 1203 (26th)
    await _run_until(manager, lambda: manager.stats.connection_failures >= 27)
    log = _log(caplog)
    assert [message for level, message in log if level >= logging.WARNING] == [
        "cannot connect: connection refused; reconnecting in 1.0 s",
        "still cannot connect after 16 attempts: connection refused; reconnecting in 60.0 s",
        "still cannot connect after 26 attempts: connection refused; reconnecting in 60.0 s",
    ]
    debug = [message for level, message in log if level == logging.DEBUG]
    assert len(debug) == 24
    assert debug[0] == "cannot connect: connection refused; reconnecting in 2.0 s"


async def test_success_resets_the_failure_log_and_each_new_reason_warns_once(caplog):
    caplog.set_level(logging.DEBUG, logger="han2mqtt.io.reconnect")
    script = ["refused", "unreachable", "refused", "unreachable", "accept", "refused", "refused"]

    async def scripted():
        step = script.pop(0) if script else "refused"
        if step != "accept":
            raise TransportError(step)
        return _connection(closed=True)

    manager = ConnectionManager(
        scripted, back_off=BackOff(1, 1, rng=lambda: 1.0), clock=FakeClock()
    )
    await _run_until(manager, lambda: manager.stats.connection_failures >= 6)
    assert _log(caplog) == [
        (logging.WARNING, "cannot connect: refused; reconnecting in 1.0 s"),
        (logging.WARNING, "cannot connect: unreachable; reconnecting in 1.0 s"),
        (logging.DEBUG, "cannot connect: refused; reconnecting in 1.0 s"),
        (logging.DEBUG, "cannot connect: unreachable; reconnecting in 1.0 s"),
        (logging.INFO, "meter connection established"),
        (logging.WARNING, "meter connection lost (closed by peer); reconnecting in 1.0 s"),
        (logging.WARNING, "cannot connect: refused; reconnecting in 1.0 s"),
        (logging.DEBUG, "cannot connect: refused; reconnecting in 1.0 s"),
    ]
