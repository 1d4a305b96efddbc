"""``tariff_headroom_power`` over a real mosquitto, in the shape evcc's MQTT plugin reads.

The first hour and a half of a Kamstrup day is replayed into ``han2mqtt run``; a subscriber on
the field topic sees what an evcc circuit's ``GetMaxPower`` (docs/tariffs.md) would: a plain
integer of watts per message, no JSON, no unit, never negative, the same number the state JSON
carries for that frame.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Broker, Capture
from tests.energy.kamstrup import METER_ID, day_of_frames
from tests.integration.helpers import start_daemon, stop_daemon, write_config
from tests.integration.test_energy_day import Replay, replay  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.broker]

DAY = datetime(2024, 5, 6)  # noqa: DTZ001 - the meter's naive local clock (Europe/Oslo)
BASE = f"han2mqtt/{METER_ID}"
BUDGET = f"{BASE}/tariff_headroom_power"


@pytest.mark.timeout(90)
def test_the_power_budget_topic_carries_plain_watts(
    broker: Broker,
    capture_factory: Callable[..., Capture],
    replay: Callable[[bytes], Replay],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
):
    frames, _ = day_of_frames(DAY)
    meter = replay(b"".join(frames[: 90 * 6 + 3]))  # to 01:30, with the lists 3 of 00:00, 01:00
    capture = capture_factory(broker, (BUDGET, f"{BASE}/state", "han2mqtt/bridge/state"))
    config = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": meter.port, "watchdog": 60},
        meter={"timezone": "Europe/Oslo"},
        mqtt={"queue_size": 10_000},
        homeassistant={"discovery": False},
        publish={"obis": False},
        tariff={"preset": "no"},
    )
    daemon = start_daemon(config)
    last = f'"meter_time":"{(DAY + timedelta(hours=1, minutes=30)).isoformat()}+02:00"'
    try:
        capture.wait_value("han2mqtt/bridge/state", "online", timeout=30)
        meter.go.set()
        capture.wait_for(lambda m: any(last in p for t, p, _ in m if t.endswith("/state")), 60)
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    budgets = [p for t, p, _ in capture.messages if t == BUDGET]
    assert len(budgets) > 100  # every frame of a counting window changes it
    assert all(re.fullmatch(r"0|[1-9][0-9]*", payload) for payload in budgets), budgets[:5]
    assert any(int(payload) > 0 for payload in budgets)
    states = [json.loads(p) for t, p, _ in capture.messages if t == f"{BASE}/state"]
    assert budgets[-1] == str(states[-1]["tariff_headroom_power"])
