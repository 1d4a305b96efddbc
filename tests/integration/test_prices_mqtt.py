"""``prices.source: mqtt``: prices pushed on a topic reach the meter's state (real mosquitto)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Broker, Capture
from tests.integration.helpers import MeterSimulator, start_daemon, stop_daemon, write_config

pytestmark = [pytest.mark.integration, pytest.mark.broker]

AIDON_ID = "7359992891237028"
TOPIC = "nodered/prices"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def _publish(broker: Broker, payload: str) -> None:
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(TOPIC, payload, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def _state(capture: Capture) -> dict[str, object]:
    last = capture.last(f"han2mqtt/{AIDON_ID}/state")
    return {} if last is None else json.loads(last)


def test_a_price_pushed_on_the_topic_prices_the_meter_now(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    capture = capture_factory(broker, (f"han2mqtt/{AIDON_ID}/state", "han2mqtt/bridge/info"))
    config = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": meter.port},
        prices={"source": "mqtt", "topic": TOPIC, "area": "SE3", "vat": 0.25},
    )
    daemon = start_daemon(config)
    try:
        capture.wait_for(lambda _m: "meter_time" in _state(capture), timeout=30)
        assert "price_spot" not in _state(capture)  # no price yet: absent, not 0
        # A Node-RED flow's list: every hour of the meter's day and the next at 1.5 per kWh.
        meter_time = datetime.fromisoformat(str(_state(capture)["meter_time"]))
        midnight = meter_time.astimezone(STOCKHOLM).replace(hour=0, minute=0, second=0)
        hours = [midnight + timedelta(hours=h) for h in range(-24, 48)]
        _publish(broker, json.dumps([{"start": h.isoformat(), "price": 1.5} for h in hours]))
        capture.wait_for(lambda _m: _state(capture).get("price_spot") == 1.5, timeout=30)
        assert _state(capture)["price_import"] == 1.5 * 1.25
        _publish(broker, "not a price")
        capture.wait_for(
            lambda _m: '"malformed":1' in (capture.last("han2mqtt/bridge/info") or ""), timeout=30
        )
        assert _state(capture).get("price_spot") == 1.5  # the last good price stays
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    assert err.count("prices: mqtt failed") == 1
