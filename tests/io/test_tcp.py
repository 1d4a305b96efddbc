"""The TCP path against a real asyncio server on 127.0.0.1: what ser2net and ESP-Link do to us."""

from __future__ import annotations

import asyncio
import socket

import pytest

from han2mqtt import (
    ConnectionManager,
    create_tcp_frame_connection,
    create_tcp_frame_content_connection,
)
from han2mqtt.errors import TransportError
from han2mqtt.io import BackOff
from tests.io.helpers import AIDON_LIST1, content_of, frame, get_n, tcp_meter

KAMSTRUP = frame("no-kamstrup-list1-2018")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _managed(
    queue: asyncio.Queue[bytes], port: int, **options
) -> tuple[ConnectionManager, asyncio.Task[None]]:
    manager = ConnectionManager(
        lambda: create_tcp_frame_content_connection(queue, None, "127.0.0.1", port),
        back_off=BackOff(0.02, 0.1),
        **options,
    )
    return manager, asyncio.create_task(manager.connect_loop())


async def _stop(manager: ConnectionManager, task: asyncio.Task[None]) -> None:
    manager.close()
    async with asyncio.timeout(5):
        await task


async def test_frames_flow_and_keepalive_is_on():
    async def meter(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(AIDON_LIST1 + KAMSTRUP + AIDON_LIST1)
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    async with tcp_meter(meter) as (_, port):
        queue: asyncio.Queue[object] = asyncio.Queue()
        transport, _protocol = await create_tcp_frame_connection(queue, None, "127.0.0.1", port)
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        frames = await get_n(queue, 3)  # type: ignore[arg-type]
        assert all(f.is_valid for f in frames)  # type: ignore[attr-defined]
        transport.close()


async def test_amshan_1x_call_with_none_filter_still_works():
    async def meter(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(AIDON_LIST1)
        await writer.drain()
        await asyncio.sleep(5)

    async with tcp_meter(meter) as (_, port):
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        transport, _ = await create_tcp_frame_content_connection(
            queue, None, None, "127.0.0.1", port
        )
        assert await get_n(queue, 1) == [content_of(AIDON_LIST1)]
        transport.close()


async def test_refused_connection_is_a_transport_error():
    with pytest.raises(TransportError, match="cannot connect"):
        await create_tcp_frame_connection(asyncio.Queue(), None, "127.0.0.1", _free_port())


async def test_peer_closing_mid_frame_leaks_no_half_frame_into_the_next_connection():
    connections = 0

    async def meter(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            writer.write(AIDON_LIST1 + KAMSTRUP[:100])  # then the bridge dies mid-frame
        else:
            writer.write(
                KAMSTRUP[100:] + AIDON_LIST1
            )  # a reader that kept its buffer would join these
        await writer.drain()
        writer.close()

    async with tcp_meter(meter) as (_, port):
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        manager, task = await _managed(queue, port)
        received = await get_n(queue, 2)
        await _stop(manager, task)
    assert received == [content_of(AIDON_LIST1), content_of(AIDON_LIST1)]
    assert queue.empty()


async def test_refusing_peer_then_accepting_peer():
    port = _free_port()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    manager, task = await _managed(queue, port)
    async with asyncio.timeout(5):
        while manager.stats.connection_failures < 3:
            await asyncio.sleep(0.01)

    async def meter(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(AIDON_LIST1)
        await writer.drain()
        await asyncio.sleep(5)

    async with tcp_meter(meter, port):
        assert await get_n(queue, 1) == [content_of(AIDON_LIST1)]
        await _stop(manager, task)
    assert manager.stats.connects == 1


async def test_silent_peer_is_reconnected_by_the_watchdog():
    connections = 0

    async def meter(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections >= 2:
            writer.write(AIDON_LIST1)
            await writer.drain()
        await asyncio.sleep(10)  # half-open: accepts, then says nothing

    async with tcp_meter(meter) as (_, port):
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        manager, task = await _managed(queue, port, watchdog_timeout=0.3)
        assert await get_n(queue, 1) == [content_of(AIDON_LIST1)]
        await _stop(manager, task)
    assert manager.stats.watchdog_timeouts >= 1
    assert connections >= 2


async def test_garbage_between_frames_loses_no_frame():
    stream = (
        b"\x00\xff\x7e\x7e"
        + AIDON_LIST1
        + b"\x7e\xa0\x12noise"
        + KAMSTRUP
        + b"\x55" * 40
        + AIDON_LIST1
    )

    async def meter(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for index in range(0, len(stream), 13):
            writer.write(stream[index : index + 13])
            await writer.drain()
        await asyncio.sleep(5)

    async with tcp_meter(meter) as (_, port):
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        manager, task = await _managed(queue, port)
        received = await get_n(queue, 3)
        await _stop(manager, task)
    assert received == [content_of(AIDON_LIST1), content_of(KAMSTRUP), content_of(AIDON_LIST1)]
