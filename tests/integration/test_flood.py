"""``han2mqtt run`` flooded by a TCP meter at QoS 1 and 2: every reading reaches a subscriber."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Broker, Capture, free_port
from tests.integration.helpers import AIDON, start_daemon, stop_daemon, write_config

pytestmark = [pytest.mark.integration, pytest.mark.broker]

REPEATS = 500  # 1,500 frames, each a reading of about 20 messages


def _serve_once(stream: bytes, port: int, go: threading.Event) -> threading.Thread:
    """A meter that sends ``stream`` once ``go`` is set, as fast as it is taken, then is silent.

    (Once: the daemon's watchdog reconnects a silent source, which must not get it again.)
    """
    pending = [stream]

    async def send(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.to_thread(go.wait)
        if pending:
            writer.write(pending.pop())
            await writer.drain()
        await asyncio.sleep(3600)

    def main() -> None:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(asyncio.start_server(send, "127.0.0.1", port))
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("qos", [1, 2])
def test_a_flood_at_qos_1_and_2_delivers_every_reading(
    broker_factory: Callable[..., Broker],
    capture_factory: Callable[..., Capture],
    tmp_path: Path,
    qos: int,
):
    # No limit on what the broker queues for the counting subscriber: we count our losses.
    broker = broker_factory("allow_anonymous true\nmax_queued_messages 0")
    capture = capture_factory(broker, ("han2mqtt/+/state", "han2mqtt/bridge/info"))
    port, go = free_port(), threading.Event()
    _serve_once(b"".join(AIDON) * REPEATS, port, go)
    config = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": port},
        mqtt={"qos": qos, "queue_size": 100},
        meter={"offline_after": 300},
    )
    sent = len(AIDON) * REPEATS
    daemon = start_daemon(config)
    try:
        # Connected first: what frames bring before the first connect may be replaced (counted).
        capture.wait_value("han2mqtt/bridge/state", "online")
        go.set()
        started = time.monotonic()
        capture.wait_for(
            lambda _m: (
                sum(1 for t, _, _ in _m if t.endswith("/state") and "/bridge/" not in t) >= sent
            ),
            timeout=120,
        )
        elapsed = time.monotonic() - started
        capture.wait_for(
            lambda _m: (
                json.loads(capture.last("han2mqtt/bridge/info") or "{}").get("decoded") == sent
            )
        )
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    readings = [p for t, p, _ in capture.messages if t.endswith("/state") and "/bridge/" not in t]
    print(f"QoS {qos}: {len(readings)} of {sent} readings in {elapsed:.1f} s")
    assert len(readings) == sent
    info = json.loads(capture.last("han2mqtt/bridge/info") or "{}")
    assert info["mqtt"]["dropped"] == info["mqtt"]["replaced"] == 0
