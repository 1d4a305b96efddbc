"""``han2mqtt run`` with the options a deployment uses: MQTT 5 with a client certificate,
environment variables only, and systemd's notify socket with its watchdog."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Broker, Capture, free_port, wait_for_port
from tests.integration.helpers import (
    AIDON_ID,
    MeterSimulator,
    clean_env,
    start_daemon,
    stop_daemon,
    write_config,
)
from tests.tls import make_certificates

pytestmark = [pytest.mark.integration, pytest.mark.broker]

POWER = f"han2mqtt/{AIDON_ID}/active_power_import"


def test_mqtt5_over_tls_with_a_client_certificate(
    broker_factory: Callable[..., Broker],
    capture_factory: Callable[..., Capture],
    meter: MeterSimulator,
    tmp_path: Path,
):
    certs = make_certificates(tmp_path)
    tls_port = free_port()
    broker = broker_factory(
        # The plain listener is the test's; the daemon must use the TLS one, which demands a
        # client certificate signed by the CA.
        f"allow_anonymous true\nlistener {tls_port} 127.0.0.1\ncafile {certs['ca']}\n"
        f"certfile {certs['cert']}\nkeyfile {certs['key']}\nrequire_certificate true"
    )
    wait_for_port(tls_port)
    capture = capture_factory(broker)
    tls = {
        "enabled": True,
        "ca_certs": str(certs["ca"]),
        "certfile": str(certs["client_cert"]),
        "keyfile": str(certs["client_key"]),
    }
    config = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": meter.port},
        mqtt={"port": tls_port, "protocol": "5", "tls": tls},
    )
    daemon = start_daemon(config)
    try:
        capture.wait_for(lambda _m: capture.last(POWER) is not None)
        assert capture.last("han2mqtt/bridge/state") == "online"
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    capture.wait_value("han2mqtt/bridge/state", "offline")


def test_run_with_environment_variables_only(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    capture = capture_factory(broker)
    env = clean_env() | {
        "HAN2MQTT_SOURCE__TYPE": "tcp",
        "HAN2MQTT_SOURCE__HOST": "127.0.0.1",
        "HAN2MQTT_SOURCE__PORT": str(meter.port),
        "HAN2MQTT_MQTT__HOST": broker.host,
        "HAN2MQTT_MQTT__PORT": str(broker.port),
        "HAN2MQTT_MQTT__CLIENT_ID": "env-only",
    }
    assert not (tmp_path / "config.yaml").exists()  # no file anywhere: cwd is empty
    daemon = _daemon([], env, cwd=tmp_path)
    try:
        capture.wait_for(lambda _m: capture.last(POWER) is not None)
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err


def _daemon(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[str]:
    """``han2mqtt run`` with an environment of the test's choosing (no inherited HAN2MQTT_*)."""
    return subprocess.Popen(
        [sys.executable, "-m", "han2mqtt", "run", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


class NotifySocket:
    """systemd's side of sd_notify: a datagram socket that records what the service says."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[tuple[float, str]] = []
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while self._running:
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def said(self, text: str, since: float = 0.0) -> int:
        return sum(1 for when, message in self.messages if message == text and when >= since)

    def close(self) -> None:
        self._running = False
        self._thread.join(2)
        self._socket.close()


def test_systemd_ready_watchdog_only_while_frames_arrive_and_sigint(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    notify = NotifySocket(tmp_path / "notify")
    capture = capture_factory(broker)
    config = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": meter.port},
        health={"max_age": 3},
    )
    env = clean_env() | {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
    daemon = _daemon(["--config", str(config)], env)
    try:
        capture.wait_for(lambda _m: capture.last(POWER) is not None)
        deadline = time.monotonic() + 10
        while notify.said("WATCHDOG=1") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert notify.said("READY=1") == 1
        assert notify.said("WATCHDOG=1") >= 2
        meter.stop()  # the meter goes silent: after health.max_age the pings must stop
        time.sleep(3 + 1.5)
        quiet_from = time.monotonic()
        time.sleep(2.5)
        assert notify.said("WATCHDOG=1", since=quiet_from) == 0
    finally:
        code, err = stop_daemon(daemon, signal.SIGINT)
        notify.close()
    assert code == 0, err
    assert notify.said("STOPPING=1") == 1
    capture.wait_value("han2mqtt/bridge/state", "offline")
