"""A Smarty on a serial port: bare ciphered P1 telegrams through ``han2mqtt run`` to mosquitto."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Broker, Capture
from tests.integration.helpers import pty_pair, start_daemon, stop_daemon, write_config
from tests.protocol.test_encrypted_p1 import AUTH, KEY, _telegram, smarty_frame

pytestmark = [
    pytest.mark.integration,
    pytest.mark.broker,
    pytest.mark.serial,
    pytest.mark.skipif(
        shutil.which("socat") is None, reason="socat is not installed (scripts/test.sh installs it)"
    ),
]

METER = "K8EG004046395507"
POWER = f"han2mqtt/{METER}/active_power_import"


def test_smarty_frames_on_a_pty_are_published(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    with pty_pair(tmp_path, "ttyP1") as (meter_end, port_end):
        capture = capture_factory(broker)
        source = {"type": "serial", "device": str(port_end), "baudrate": 115200, "format": "apdu"}
        meter = {"encryption_key": KEY.hex(), "authentication_key": AUTH.hex()}
        daemon = start_daemon(write_config(tmp_path, broker, source, meter=meter))
        try:
            fd = os.open(meter_end, os.O_WRONLY | os.O_NOCTTY)
            try:
                frame = smarty_frame(_telegram())
                deadline = time.monotonic() + 15
                while capture.last(POWER) is None and time.monotonic() < deadline:
                    # A frame cut short before each whole one, as a re-plugged adapter gives.
                    os.write(fd, b"\x00\xff\x13" + frame[:40])
                    os.write(fd, frame)
                    time.sleep(0.3)
            finally:
                os.close(fd)
            assert capture.last(POWER) == "244"
            assert capture.last(f"han2mqtt/{METER}/availability") == "online"
        finally:
            code, err = stop_daemon(daemon)
        assert code == 0, err
