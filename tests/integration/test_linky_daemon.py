"""A Linky on a serial port (socat pty) through the daemon to a real broker and HA discovery."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests import tic
from tests.conftest import Broker, Capture
from tests.integration.helpers import SERIAL_DAEMON, daemon_on_pty, write_until

pytestmark = SERIAL_DAEMON

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
    source = {"type": "serial", "format": "tic", "parity": "N", "bytesize": 8}
    capture = capture_factory(broker)
    with daemon_on_pty(tmp_path, broker, source) as meter_end:
        discovery = f"homeassistant/device/han2mqtt_{METER}/config"
        write_until(meter_end, (frames,), lambda: capture.last(discovery) is not None, 20)
        papp = [p for t, p, _ in capture.messages if t == f"{BASE}/{METER}/apparent_power_import"]
        assert set(papp) == {"1890"}  # the frame whose PAPP failed published no value for it
        assert capture.last(f"{BASE}/{METER}/active_power_import_total_t1") == "52890.47"
        assert capture.last(f"{BASE}/{METER}/current_tariff") == "HP"
        assert capture.last(f"{BASE}/{METER}/active_power_import") is None
        components = json.loads(capture.last(discovery) or "{}")["cmps"]
        apparent = next(c for c in components.values() if c["name"] == "Apparent power import")
        assert (apparent["dev_cla"], apparent["unit_of_meas"]) == ("apparent_power", "VA")
        assert not any(c.get("dev_cla") == "power" for c in components.values())
