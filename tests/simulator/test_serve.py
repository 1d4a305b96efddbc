"""Simulated meters on a real TCP port: one meter for every client, as behind a serial server."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from han2mqtt.autodecoder import AutoDecoder
from han2mqtt.protocol.stream import ContentReader
from han2mqtt.simulator import Simulation, serve_meters

START = datetime(2026, 12, 6, 21, 30, tzinfo=ZoneInfo("Europe/Oslo"))


async def _registers(port: int, count: int) -> list[float]:
    """Connect, read until ``count`` hourly registers came, disconnect."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    contents, decoder = ContentReader(), AutoDecoder()
    found: list[float] = []
    try:
        while len(found) < count:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk
            for content in contents.read(chunk):
                reading = decoder.decode(content)
                if "active_power_import_total" in reading.fields:
                    found.append(float(reading.fields["active_power_import_total"]))
    finally:
        writer.close()
        await writer.wait_closed()
    return found


async def test_a_client_that_reconnects_finds_the_registers_where_they_were():
    done = asyncio.Event()
    server = await serve_meters(
        lambda: Simulation(["kaifa"], start=START, speed=36000, interval=0.01),  # 6 min a step
        on_done=done.set,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        first = await _registers(port, 2)
        second = await _registers(port, 2)
    finally:
        server.close()
    assert first == sorted(first) and second == sorted(second)
    assert second[0] > first[-1]  # the same meter went on; a new one would start over
    assert not done.is_set()  # no duration: it runs until the server closes
