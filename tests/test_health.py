from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from han2mqtt.errors import TransportError
from han2mqtt.health import check_heartbeat, notify, watchdog_interval, write_heartbeat


def test_notify_sends_a_datagram_to_the_notify_socket(tmp_path: Path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        assert notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert server.recv(100) == b"READY=1"


def test_notify_without_systemd_does_nothing():
    assert notify("READY=1", {}) is False


def test_notify_to_a_dead_socket_is_a_typed_error(tmp_path: Path):
    with pytest.raises(TransportError):
        notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "missing")})


def test_watchdog_interval_is_half_the_watchdog_period():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None


def test_heartbeat_fresh_stale_missing(tmp_path: Path):
    beat = tmp_path / "heartbeat"
    assert check_heartbeat(beat, 60) is not None
    write_heartbeat(beat, when=1000.0)
    assert check_heartbeat(beat, 60, now=1030.0) is None
    reason = check_heartbeat(beat, 60, now=1100.0)
    assert reason is not None
    assert "100 s ago" in reason
