"""``han2mqtt run`` on a port that sends only garbage (reconnected, and named once in the log),
and on one whose good frames do not decode (kept open: the decode errors say why)."""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import corpus
from tests.conftest import Broker
from tests.integration.helpers import start_daemon, stop_daemon, write_config

pytestmark = [pytest.mark.integration, pytest.mark.broker]


class SendingPort:
    """A TCP 'serial server' that sends ``chunk(rng)`` every ``pause`` s on every connection."""

    def __init__(self, chunk: Callable[[random.Random], bytes], pause: float) -> None:
        self.chunk = chunk
        self.pause = pause
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self.connections += 1
            threading.Thread(target=self._send, args=(client,), daemon=True).start()

    def _send(self, client: socket.socket) -> None:
        rng = random.Random(self.connections)
        with client:
            while not self._stop.is_set():
                try:
                    client.sendall(self.chunk(rng))
                except OSError:
                    return
                time.sleep(self.pause)

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        self.server.close()


@pytest.fixture
def garbage_port() -> Iterator[SendingPort]:
    port = SendingPort(lambda rng: rng.randbytes(256), 0.02)  # random bytes, forever
    yield port
    port.close()


def test_a_port_of_garbage_is_reopened_by_the_watchdog_and_logged_once(
    broker: Broker, garbage_port: SendingPort, tmp_path: Path
):
    source = {"type": "tcp", "host": "127.0.0.1", "port": garbage_port.port, "watchdog": 1}
    daemon = start_daemon(write_config(tmp_path, broker, source))
    try:
        deadline = time.monotonic() + 30
        while garbage_port.connections < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    assert garbage_port.connections >= 3, err  # bytes kept flowing, yet it was reconnected
    lost = re.findall(
        rf"no valid frame for 1 s from tcp 127\.0\.0\.1:{garbage_port.port}; "
        r"(\d+) bytes received",
        err,
    )
    assert len(lost) == 1, err  # one line per outage, not one per reconnect
    assert int(lost[0]) > 0


def test_frames_under_a_wrong_key_keep_the_port_open_and_name_the_key(
    broker: Broker, tmp_path: Path
):
    """Good frames that do not decrypt: reopening the port changes nothing, the log says why."""
    item = corpus.by_id("dk-kamstrup-omnipower-enc-testkey")
    frame = bytes.fromhex(item["hex_or_text"])
    port = SendingPort(lambda _: frame, 0.1)
    source = {"type": "tcp", "host": "127.0.0.1", "port": port.port, "watchdog": 1}
    meter = {"encryption_key": "0F" * 16}  # not the meter's key, and no tag check
    daemon = start_daemon(write_config(tmp_path, broker, source, meter=meter))
    try:
        time.sleep(5)  # five watchdog periods of frames that never decode
    finally:
        code, err = stop_daemon(daemon)
        port.close()
    assert code == 0, err
    assert port.connections == 1, err
    assert "no valid frame" not in err, err
    assert "wrong encryption key" in err, err
