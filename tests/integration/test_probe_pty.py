"""``han2mqtt probe --device`` on a real pseudo-terminal (socat), and ``--host/--port`` on TCP."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import tic
from tests.corpus import by_id, raw
from tests.integration.helpers import clean_env, pty_pair

HAN2MQTT = Path(sys.executable).parent / "han2mqtt"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("socat") is None, reason="socat is not installed (scripts/test.sh installs it)"
    ),
]


@contextmanager
def _meter(write: object, data: bytes) -> Iterator[None]:
    """Write ``data`` over and over, a chunk every 50 ms, until the block ends."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            for start in range(0, len(data), 64):
                if stop.is_set():
                    return
                try:
                    write(data[start : start + 64])  # type: ignore[operator]
                except OSError:  # the probe is done and closed its end
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HAN2MQTT), "probe", *args, "--seconds", "0.6"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )


def test_probe_finds_an_aidon_on_a_pty(tmp_path: Path):
    aidon = raw(by_id("no-aidon-6534-list2"))
    with (
        pty_pair(tmp_path) as (meter_end, port_end),
        meter_end.open("wb", buffering=0) as meter,
        _meter(meter.write, aidon),
    ):
        result = _probe("--device", str(port_end))
    assert result.returncode == 0, result.stderr
    assert "found: HDLC" in result.stdout
    assert "manufacturer: Aidon" in result.stdout
    assert "meter id: 7359992891237028" in result.stdout
    assert f"device: {port_end}\n" in result.stdout
    assert "format: hdlc" in result.stdout


def test_probe_of_a_silent_pty_exits_1(tmp_path: Path):
    with pty_pair(tmp_path) as (_meter_end, port_end):
        result = _probe("--device", str(port_end))
    assert result.returncode == 1
    assert "no meter frame found" in result.stderr


def test_probe_of_a_serial_server_set_8n1_in_front_of_a_linky():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    data = tic.with_parity(tic.wire(tic.HISTORIQUE))

    def serve() -> None:
        connection, _ = server.accept()
        with connection, _meter(connection.sendall, data):
            time.sleep(4)

    thread = threading.Thread(target=serve, daemon=True, name="serial-server")
    thread.start()
    try:
        result = _probe("--host", "127.0.0.1", "--port", str(port))
    finally:
        thread.join(10)
        server.close()
    assert result.returncode == 0, result.stderr
    assert "found: TIC" in result.stdout
    assert "historique mode" in result.stdout
    assert "meter id: 111111111111" in result.stdout
    assert "type: tcp" in result.stdout


def test_probe_needs_a_port():
    result = subprocess.run(
        [str(HAN2MQTT), "probe"], capture_output=True, text=True, env=clean_env(), check=False
    )
    assert result.returncode == 2
    assert "--device, or --host and --port" in result.stderr
