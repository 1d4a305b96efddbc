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


def test_the_heartbeat_never_follows_a_link_planted_at_its_temporary_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    beat = tmp_path / "heartbeat"
    # The predictable name the old code used (and truncated, through the link).
    (tmp_path / "heartbeat.tmp").symlink_to(victim)
    write_heartbeat(beat, when=1000.0)
    assert victim.read_text() == "precious\n"
    assert check_heartbeat(beat, 60, now=1001.0) is None
    # Even a link at the random name itself (pinned here) is refused, not followed.
    monkeypatch.setattr("han2mqtt.health.secrets.token_hex", lambda _n: "0123456789abcdef")
    planted = tmp_path / ".heartbeat.0123456789abcdef.tmp"
    planted.symlink_to(victim)
    with pytest.raises(FileExistsError):
        write_heartbeat(beat, when=2000.0)
    assert victim.read_text() == "precious\n"
    assert planted.is_symlink()  # not ours: left alone
    assert check_heartbeat(beat, 60, now=1001.0) is None  # the last good heartbeat stays
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".heartbeat.0123456789abcdef.tmp",
        "heartbeat",
        "heartbeat.tmp",
        "victim",
    ]


def test_a_link_at_the_heartbeat_path_is_replaced_not_followed(tmp_path: Path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    beat = tmp_path / "heartbeat"
    beat.symlink_to(victim)
    write_heartbeat(beat, when=1000.0)
    assert victim.read_text() == "precious\n"
    assert not beat.is_symlink()
    assert check_heartbeat(beat, 60, now=1001.0) is None


def test_a_heartbeat_file_that_names_another_file_is_refused_at_load(tmp_path: Path):
    from han2mqtt.config import Settings  # noqa: PLC0415

    other = tmp_path / "notes.txt"
    other.write_text("my notes\n")
    with pytest.raises(ValueError, match="not a han2mqtt heartbeat"):
        Settings.model_validate({"health": {"heartbeat_file": str(other)}})
    beat = tmp_path / "heartbeat"
    write_heartbeat(beat, when=1000.0)  # an earlier run's heartbeat is ours to replace
    settings = Settings.model_validate({"health": {"heartbeat_file": str(beat)}})
    assert settings.health.heartbeat_file == beat
