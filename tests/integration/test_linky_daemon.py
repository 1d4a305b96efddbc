"""A Linky on a serial port (socat pty) through the daemon to a real broker and HA discovery."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import tic
from tests.conftest import Broker, Capture
from tests.integration.helpers import pty_pair, start_daemon, stop_daemon, write_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.broker,
    pytest.mark.serial,
    pytest.mark.skipif(
        shutil.which("socat") is None, reason="socat is not installed (scripts/test.sh installs it)"
    ),
]

BASE = "han2mqtt"
METER = "111111111111"


def test_a_linky_on_a_pty_publishes_apparent_power_and_registers(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    lines = tic.text(tic.HISTORIQUE).splitlines()
    broken = list(lines)
    broken[8] = "PAPP 01890 4"  # a bad PAPP checksum: that group alone is dropped
    frames = tic.with_parity(tic.wire(tic.HISTORIQUE) + b"".join(tic.frames_from_text(
        "\n".join(broken))))  # fmt: skip
    # A pty takes no parity setting: read it at 8N1, with the parity bit in bit 7 as a real
    # 7E1 line read at 8N1 gives it.
    source = {"type": "serial", "device": "", "format": "tic", "parity": "N", "bytesize": 8}
    with pty_pair(tmp_path) as (meter_end, port_end):
        source["device"] = str(port_end)
        capture = capture_factory(broker)
        daemon = start_daemon(write_config(tmp_path, broker, source))
        try:
            fd = os.open(meter_end, os.O_WRONLY | os.O_NOCTTY)
            try:
                deadline = time.monotonic() + 20
                discovery = f"homeassistant/device/han2mqtt_{METER}/config"
                while capture.last(discovery) is None and time.monotonic() < deadline:
                    os.write(fd, frames)
                    time.sleep(0.3)
            finally:
                os.close(fd)
            papp = [
                p for t, p, _ in capture.messages if t == f"{BASE}/{METER}/apparent_power_import"
            ]
            assert set(papp) == {"1890"}  # the frame whose PAPP failed published no value for it
            assert capture.last(f"{BASE}/{METER}/active_power_import_total_t1") == "52890.47"
            assert capture.last(f"{BASE}/{METER}/current_tariff") == "HP"
            assert capture.last(f"{BASE}/{METER}/active_power_import") is None
            components = json.loads(capture.last(discovery) or "{}")["cmps"]
            apparent = next(c for c in components.values() if c["name"] == "Apparent power import")
            assert (apparent["dev_cla"], apparent["unit_of_meas"]) == ("apparent_power", "VA")
            assert not any(c.get("dev_cla") == "power" for c in components.values())
        finally:
            code, err = stop_daemon(daemon)
        assert code == 0, err
