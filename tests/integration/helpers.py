"""Run the real daemon as a subprocess next to a TCP meter simulator."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from han2mqtt.simulator import load_samples, serve_frames
from tests.conftest import Broker, free_port

SAMPLES = load_samples()
AIDON = SAMPLES[:3]  # Aidon 6534 lists 2, 1 and 3 of meter 7359992891237028
AIDON_ID = "7359992891237028"


class MeterSimulator:
    """``serve_frames`` in a thread of its own, stoppable and restartable on the same port."""

    def __init__(self, frames: list[bytes], interval: float = 0.1) -> None:
        self.frames = frames
        self.interval = interval
        self.port = free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                serve_frames(self.frames, interval=self.interval, port=self.port)
            )
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0.05))
            loop.close()

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None


@contextlib.contextmanager
def pty_pair(directory: Path, port_name: str = "ttyHAN") -> Iterator[tuple[Path, Path]]:
    """``socat`` joining two ptys: ``(meter end the test writes, port end han2mqtt reads)``."""
    meter_end, port_end = directory / "meter", directory / port_name
    socat = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={meter_end}", f"pty,raw,echo=0,link={port_end}"],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (meter_end.exists() and port_end.exists()) and time.monotonic() < deadline:
            time.sleep(0.02)
        yield meter_end, port_end
    finally:
        socat.terminate()
        socat.wait(5)


SERIAL_DAEMON: Final = [
    pytest.mark.integration,
    pytest.mark.broker,
    pytest.mark.serial,
    pytest.mark.skipif(
        shutil.which("socat") is None, reason="socat is not installed (scripts/test.sh installs it)"
    ),
]
"""The marks of a test that runs the daemon on a socat pty and a real broker."""


@contextlib.contextmanager
def daemon_on_pty(
    directory: Path,
    broker: Broker,
    source: dict[str, Any],
    port_name: str = "ttyHAN",
    **sections: Any,
) -> Iterator[Path]:
    """``han2mqtt run`` reading a serial ``source`` on a pty: yields the meter end to write.

    The daemon must then stop cleanly (exit 0) on SIGTERM.
    """
    with pty_pair(directory, port_name) as (meter_end, port_end):
        config = write_config(directory, broker, {**source, "device": str(port_end)}, **sections)
        daemon = start_daemon(config)
        try:
            yield meter_end
        finally:
            code, err = stop_daemon(daemon)
        assert code == 0, err


def write_until(
    meter_end: Path, chunks: tuple[bytes, ...], done: Callable[[], bool], seconds: float
) -> None:
    """Write ``chunks`` to a pty's meter end every 0.3 s until ``done()`` or ``seconds`` pass."""
    fd = os.open(meter_end, os.O_WRONLY | os.O_NOCTTY)
    try:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            for chunk in chunks:
                os.write(fd, chunk)
            time.sleep(0.3)
    finally:
        os.close(fd)


def write_config(directory: Path, broker: Broker, source: dict[str, Any], **sections: Any) -> Path:
    config: dict[str, Any] = {
        "source": {"watchdog": 5, "reconnect_min": 0.1, "reconnect_max": 0.5, **source},
        "meter": {"offline_after": 2},
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"h2m-{broker.port}"},
        "publish": {"info_interval": 1},
        "health": {"heartbeat_file": str(directory / "heartbeat"), "max_age": 30},
        "web": {"port": free_port()},  # never the default 8080: daemons run side by side
        "state": {"dir": str(directory / "state")},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("HAN2MQTT_")}


def start_daemon(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "han2mqtt", "run", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )


def stop_daemon(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"daemon did not stop in 15 s:\n{err}") from None
    return process.returncode, err


def run_until_done(config: Path, timeout: float = 240) -> str:
    """Run the daemon on ``config`` (a recording) until it ends by itself; its stderr.

    A replay that does not end within ``timeout`` is stopped and fails the test; so does an exit
    code other than 0.
    """
    process = start_daemon(config)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _, err = stop_daemon(process)
        raise AssertionError(f"the replay did not end by itself:\n{err}") from None
    assert process.returncode == 0, err
    return err


def han2mqtt(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "han2mqtt", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        check=False,
    )


__all__ = [
    "AIDON",
    "AIDON_ID",
    "SAMPLES",
    "SERIAL_DAEMON",
    "MeterSimulator",
    "daemon_on_pty",
    "han2mqtt",
    "pty_pair",
    "run_until_done",
    "signal",
    "start_daemon",
    "stop_daemon",
    "write_config",
    "write_until",
]
