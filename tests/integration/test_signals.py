"""Stop signals at every moment of a real daemon's life: a prompt exit 0, no retained ``online``.

SIGTERM (docker stop, systemd), SIGINT and SIGHUP all mean a clean stop.  Before, SIGHUP killed
the daemon without its clean stop, a SIGTERM in the first fraction of a second (before the event
loop's handlers existed) killed it the same way, and a stop while the MQTT connect hung took 6.5
(TLS: over 10) seconds.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from han2mqtt.stopsignals import STOP_SIGNALS
from tests.conftest import Broker, Capture
from tests.integration.helpers import MeterSimulator, start_daemon, write_config
from tests.tls import make_certificates

pytestmark = [pytest.mark.integration, pytest.mark.broker]

STATE = "han2mqtt/bridge/state"
PROMPT = 3.0
"""Seconds from the signal to the exit that count as prompt (a clean stop takes well under 1 s)."""


def _handles_stop_signals(pid: int) -> bool:
    """Whether han2mqtt's handlers for SIGTERM, SIGINT and SIGHUP are in place (``SigCgt``).

    Python itself handles SIGINT from its start; the three together are ours.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    wanted = sum(1 << (signum - 1) for signum in STOP_SIGNALS)
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16) & wanted == wanted
    return False


def _wait_for_handlers(process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while not _handles_stop_signals(process.pid):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "no signal handlers after 20 s"
        time.sleep(0.001)


def _signal_and_wait(process: subprocess.Popen[str], signum: int) -> tuple[int, float, str]:
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"no exit 15 s after signal {signum}:\n{err}") from None
    return process.returncode, time.monotonic() - sent, err


@pytest.mark.parametrize(
    ("signum", "moment"),
    [
        (signal.SIGTERM, 0.0),  # the instant han2mqtt handles signals at all
        (signal.SIGTERM, 0.1),  # loading the configuration and the daemon's modules
        (signal.SIGTERM, 0.3),
        (signal.SIGTERM, 0.6),  # connecting
        (signal.SIGTERM, "running"),
        (signal.SIGHUP, 0.0),
        (signal.SIGHUP, 0.3),
        (signal.SIGHUP, "running"),
        (signal.SIGINT, 0.0),
        (signal.SIGINT, "running"),
    ],
)
def test_a_stop_signal_at_any_moment_is_a_clean_exit(
    broker: Broker,
    capture_factory: Callable[..., Capture],
    meter: MeterSimulator,
    tmp_path: Path,
    signum: int,
    moment: str | float,
):
    capture = capture_factory(broker, (STATE,))
    config = write_config(
        tmp_path, broker, {"type": "tcp", "host": "127.0.0.1", "port": meter.port}
    )
    process = start_daemon(config)
    if moment == "running":
        capture.wait_value(STATE, "online")
    else:
        assert isinstance(moment, float)
        _wait_for_handlers(process)
        time.sleep(moment)
    code, took, err = _signal_and_wait(process, signum)
    assert code == 0, err
    assert took < PROMPT, f"{took:.1f} s"
    assert "Traceback" not in err
    # The broker never keeps "online" for a daemon that is gone: offline was published (or the
    # daemon stopped before it ever said online).
    time.sleep(0.2)
    assert capture.last(STATE) in (None, "offline"), capture.messages
    if moment == "running":
        assert capture.last(STATE) == "offline"


class SilentListener:
    """A TCP port that accepts connections and never sends a byte (a hung broker or TLS proxy)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted = threading.Event()
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)
            self.accepted.set()

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent() -> Iterator[SilentListener]:
    listener = SilentListener()
    yield listener
    listener.close()


@pytest.mark.parametrize("tls", [False, True], ids=["connack", "tls-handshake"])
def test_a_stop_during_a_connect_that_hangs_is_prompt(
    broker: Broker, meter: MeterSimulator, silent: SilentListener, tmp_path: Path, tls: bool
):
    mqtt: dict[str, object] = {"host": "127.0.0.1", "port": silent.port}
    if tls:
        certificates = make_certificates(tmp_path)
        mqtt["tls"] = {"enabled": True, "ca_certs": str(certificates["ca"])}
    config = write_config(
        tmp_path, broker, {"type": "tcp", "host": "127.0.0.1", "port": meter.port}, mqtt=mqtt
    )
    process = start_daemon(config)
    assert silent.accepted.wait(15), "the daemon never connected"
    time.sleep(0.3)  # CONNECT (or the TLS ClientHello) is out, the answer never comes
    code, took, err = _signal_and_wait(process, signal.SIGTERM)
    assert code == 0, err
    assert took < PROMPT, f"stopping took {took:.1f} s"
    assert "Traceback" not in err
