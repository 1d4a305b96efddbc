"""Back-off, circuit breaker and watchdog timing on a fake clock: no test sleeps for real."""

from __future__ import annotations

import asyncio

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
        protocol = SmartMeterFrameProtocol(asyncio.Queue())
        transport = Transport(protocol)
        protocol.connection_made(transport)
        transport.close()
        return transport, protocol

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
        protocol = SmartMeterFrameProtocol(asyncio.Queue())
        transport = Transport(protocol)
        protocol.connection_made(transport)
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
        protocol = SmartMeterFrameProtocol(asyncio.Queue())
        transport = Transport(protocol)
        protocol.connection_made(transport)

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
