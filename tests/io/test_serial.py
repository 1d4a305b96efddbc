"""The serial path on real pseudo-terminals made by socat: unplug the adapter, plug it back."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from han2mqtt import ConnectionManager, create_serial_frame_content_connection
from han2mqtt.errors import TransportError
from han2mqtt.io import BackOff, ConnectionState
from tests.io.helpers import AIDON_LIST1, content_of, frame, get_n

pytestmark = [
    pytest.mark.serial,
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("socat") is None, reason="socat is not installed (scripts/test.sh installs it)"
    ),
]


class PtyPair:
    """``socat`` joining two ptys: ``meter`` (the test writes) and ``port`` (han2mqtt reads)."""

    def __init__(self, directory: Path) -> None:
        self.meter = directory / "meter"
        self.port = directory / "ttyHAN"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(
            ["socat", f"pty,raw,echo=0,link={self.meter}", f"pty,raw,echo=0,link={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        async with asyncio.timeout(5):
            while not (self.meter.exists() and self.port.exists()):
                await asyncio.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(5)
            self.process = None

    def send(self, data: bytes) -> None:
        fd = os.open(self.meter, os.O_WRONLY | os.O_NOCTTY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _state(manager: ConnectionManager) -> ConnectionState:
    """The manager's state, read through a call (it changes behind mypy's back)."""
    return manager.state


@pytest.fixture
async def pty(tmp_path: Path):
    pair = PtyPair(tmp_path)
    await pair.start()
    yield pair
    pair.stop()


async def test_frames_flow_over_a_pty(pty: PtyPair):
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    transport, _ = await create_serial_frame_content_connection(
        queue, None, url=str(pty.port), baudrate=2400
    )
    pty.send(AIDON_LIST1 + frame("no-kamstrup-list1-2018"))
    received = await get_n(queue, 2)
    assert received[0] == content_of(AIDON_LIST1)
    transport.close()


async def test_settings_the_device_refuses_are_a_transport_error(pty: PtyPair):
    # A pseudo-terminal has no parity: the termios error is translated, not leaked.
    with pytest.raises(TransportError, match="cannot open serial port"):
        await create_serial_frame_content_connection(
            asyncio.Queue(), None, url=str(pty.port), parity="E"
        )


async def test_missing_device_is_a_transport_error(tmp_path: Path):
    with pytest.raises(TransportError, match="cannot open serial port"):
        await create_serial_frame_content_connection(
            asyncio.Queue(), None, url=str(tmp_path / "nope")
        )


async def test_unplugged_adapter_is_retried_until_it_comes_back(pty: PtyPair):
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    manager = ConnectionManager(
        lambda: create_serial_frame_content_connection(queue, None, url=str(pty.port)),
        back_off=BackOff(0.05, 0.2),
    )
    task = asyncio.create_task(manager.connect_loop())
    async with asyncio.timeout(5):
        while _state(manager) is not ConnectionState.CONNECTED:
            await asyncio.sleep(0.02)
    pty.send(AIDON_LIST1)
    assert await get_n(queue, 1) == [content_of(AIDON_LIST1)]

    pty.stop()  # the USB adapter is pulled out
    async with asyncio.timeout(5):
        while manager.stats.connection_failures < 2:
            await asyncio.sleep(0.02)
    assert _state(manager) in (ConnectionState.WAITING, ConnectionState.CONNECTING)
    assert not task.done()

    await pty.start()  # and plugged in again
    async with asyncio.timeout(5):
        while _state(manager) is not ConnectionState.CONNECTED:
            await asyncio.sleep(0.02)
    pty.send(AIDON_LIST1)
    assert await get_n(queue, 1) == [content_of(AIDON_LIST1)]
    manager.close()
    async with asyncio.timeout(5):
        await task
    assert manager.stats.connects == 2


@pytest.mark.broker
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root, to run the daemon as nobody with setpriv (root may open any device)",
)
async def test_a_port_this_user_may_not_open_gets_a_hint_once_per_outage(pty: PtyPair, broker):
    device = pty.port.resolve()  # /dev/pts/N (the link sits in root's private tmp directory)
    device.chmod(0o000)
    # A state directory nobody may write in (the daemon checks it at start); pytest's own
    # temporary directories are root's alone.
    state = Path(tempfile.mkdtemp(prefix="h2m-nobody-", dir="/tmp"))
    state.chmod(0o777)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HAN2MQTT_SOURCE__TYPE": "serial",
        "HAN2MQTT_SOURCE__DEVICE": str(device),
        "HAN2MQTT_SOURCE__RECONNECT_MIN": "0.05",
        "HAN2MQTT_SOURCE__RECONNECT_MAX": "0.1",
        "HAN2MQTT_MQTT__HOST": broker.host,
        "HAN2MQTT_MQTT__PORT": str(broker.port),
        "HAN2MQTT_MQTT__CLIENT_ID": f"h2m-nobody-{broker.port}",
        "HAN2MQTT_STATE__DIR": str(state),
        "HAN2MQTT_WEB__ENABLED": "false",
    }
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    process = subprocess.Popen(
        [*nobody, sys.executable, "-m", "han2mqtt", "run"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd="/",
    )
    await asyncio.sleep(4)  # dozens of attempts at 0.05-0.1 s
    process.terminate()
    _, err = process.communicate(timeout=15)
    shutil.rmtree(state, ignore_errors=True)
    assert process.returncode == 0, err
    denied = [line for line in err.splitlines() if "Permission denied" in line]
    assert denied, err
    assert len(denied) == 1, err  # once per outage, not per attempt
    (line,) = denied
    assert f"cannot open serial port {device}" in line
    assert "the device belongs to group" in line
    assert f'--group-add "$(stat -c %g {device})"' in line
