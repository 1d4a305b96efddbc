"""A Smarty on a serial port: bare ciphered P1 telegrams through ``han2mqtt run`` to mosquitto."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Broker, Capture
from tests.integration.helpers import SERIAL_DAEMON, daemon_on_pty, write_until
from tests.protocol.test_encrypted_p1 import AUTH, KEY, _telegram, smarty_frame

pytestmark = SERIAL_DAEMON

METER = "K8EG004046395507"
POWER = f"han2mqtt/{METER}/active_power_import"


def test_smarty_frames_on_a_pty_are_published(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    capture = capture_factory(broker)
    source = {"type": "serial", "baudrate": 115200, "format": "apdu"}
    meter = {"encryption_key": KEY.hex(), "authentication_key": AUTH.hex()}
    with daemon_on_pty(tmp_path, broker, source, "ttyP1", meter=meter) as meter_end:
        frame = smarty_frame(_telegram())
        # A frame cut short before each whole one, as a re-plugged adapter gives.
        chunks = (b"\x00\xff\x13" + frame[:40], frame)
        write_until(meter_end, chunks, lambda: capture.last(POWER) is not None, 15)
        assert capture.last(POWER) == "244"
        assert capture.last(f"han2mqtt/{METER}/availability") == "online"
