"""Clean shutdown under asyncio debug mode: no pending tasks, no unclosed transports."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, gc
    from han2mqtt import ConnectionManager, create_tcp_frame_content_connection
    from han2mqtt.io import BackOff

    FRAME = bytes.fromhex(
        "7EA02A410883130413E6E7000F40000000000101020309060100010700FF060000067D02020F00161B1C057E"
    )

    async def meter(reader, writer):
        writer.write(FRAME)
        await writer.drain()
        try:
            await reader.read()
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(meter, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        queue = asyncio.Queue()
        manager = ConnectionManager(
            lambda: create_tcp_frame_content_connection(queue, None, "127.0.0.1", port),
            back_off=BackOff(0.01, 0.05),
            watchdog_timeout=5,
        )
        task = asyncio.create_task(manager.connect_loop())
        await asyncio.wait_for(queue.get(), 5)
        manager.close()
        await asyncio.wait_for(task, 5)
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not pending, pending
        print("clean")

    asyncio.run(main(), debug=True)
    gc.collect()
    """
)


# A real TCP connect that completes although close() cancelled it (a factory that ignores its
# cancellation, or a connect finishing in the same instant): its transport must still be closed.
RACE_SCRIPT = textwrap.dedent(
    """
    import asyncio, contextlib, gc
    from han2mqtt import ConnectionManager, create_tcp_frame_content_connection

    async def meter(reader, writer):
        try:
            await reader.read()
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(meter, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        queue = asyncio.Queue()
        connected = asyncio.Event()

        async def stubborn():
            connection = await create_tcp_frame_content_connection(queue, None, "127.0.0.1", port)
            connected.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.get_running_loop().create_future()
            return connection

        manager = ConnectionManager(stubborn, connect_timeout=None)
        task = asyncio.create_task(manager.connect_loop())
        await asyncio.wait_for(connected.wait(), 5)
        manager.close()
        done, _ = await asyncio.wait({task}, timeout=1)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise SystemExit("connect_loop() did not return after close()")
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not pending, pending
        print("clean")

    asyncio.run(main(), debug=True)
    gc.collect()
    """
)


def _run_in_dev_mode(script: str) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"
    for symptom in ("Task was destroyed", "unclosed", "Traceback", "was never awaited"):
        assert symptom not in result.stderr, result.stderr


@pytest.mark.integration
def test_no_pending_tasks_or_unclosed_transports_in_debug_mode():
    _run_in_dev_mode(SCRIPT)


@pytest.mark.integration
def test_connect_completing_despite_close_leaks_no_transport_in_debug_mode():
    _run_in_dev_mode(RACE_SCRIPT)
