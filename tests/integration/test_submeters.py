"""A DSMR telegram with gas and water behind the P1 port, as Home Assistant sees it.

The real daemon reads the telegram from a TCP meter and publishes to a real mosquitto; the test
reads only what a user's Home Assistant would: the discovery messages and the state topics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests import corpus
from tests.conftest import Broker
from tests.integration.helpers import MeterSimulator, start_daemon, stop_daemon, write_config

pytestmark = [pytest.mark.integration, pytest.mark.broker]

ELECTRICITY = "1SAG3101021605"
GAS, WATER = "7FLO2119033733", "8SAG1234567890"


@pytest.fixture
def fluvius() -> Iterator[MeterSimulator]:
    """A Belgian e-MUCS meter: gas on channel 1 (24.2.3), water on channel 2 (24.2.1)."""
    simulator = MeterSimulator([corpus.raw(corpus.by_id("be-fluvius-v171"))], interval=0.2)
    simulator.start()
    yield simulator
    simulator.stop()


def test_gas_and_water_are_devices_of_their_own_via_the_electricity_meter(
    tmp_path, broker: Broker, fluvius: MeterSimulator, capture_factory
):
    capture = capture_factory(broker, ("han2mqtt/#", "homeassistant/#"))
    config = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": fluvius.port},
        meter={"timezone": "Europe/Brussels"},
    )
    daemon = start_daemon(config)
    try:
        for meter in (ELECTRICITY, GAS, WATER):
            capture.wait_value(f"han2mqtt/{meter}/availability", "online")
        capture.wait_for(lambda _m: capture.last(f"han2mqtt/{WATER}/water_total") is not None)
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    assert capture.last(f"han2mqtt/{GAS}/gas_total") == "112.384"
    assert capture.last(f"han2mqtt/{WATER}/water_total") == "872.234"
    gas_state = json.loads(capture.last(f"han2mqtt/{GAS}/state") or "{}")
    assert gas_state["gas_total"] == 112.384
    assert gas_state["meter_time"] == "2020-05-12T13:45:58+02:00"  # the capture time, local
    assert "active_power_import" not in gas_state

    def device(meter: str) -> dict[str, Any]:
        topic = f"homeassistant/device/han2mqtt_{meter.lower()}/config"
        found: dict[str, Any] = json.loads(capture.last(topic) or "{}")
        return found

    for meter, klass in ((GAS, "gas"), (WATER, "water")):
        payload = device(meter)
        assert payload["dev"]["via_device"] == f"han2mqtt_{ELECTRICITY.lower()}"
        assert payload["dev"]["mdl"] == klass
        (total,) = [c for c in payload["cmps"].values() if c.get("dev_cla") == klass]
        assert (total["unit_of_meas"], total["stat_cla"]) == ("m³", "total_increasing")
        assert total["stat_t"] == f"han2mqtt/{meter}/{klass}_total"
        assert {"t": f"han2mqtt/{meter}/availability"} in payload["avty"]
    electricity = device(ELECTRICITY)
    assert "via_device" not in electricity["dev"]
    sent = {c.get("stat_t", "") for c in electricity["cmps"].values()}
    assert not any("24.2" in topic for topic in sent)  # the gas no longer hangs on it
