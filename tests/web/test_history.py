"""The bounded memories of the status page: the power ring, the hour bars, the meter cap."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta

import pytest

from han2mqtt.commands import demo_settings
from han2mqtt.config import Settings
from han2mqtt.model import MeterReading
from han2mqtt.web.history import HourBars, PowerRing
from han2mqtt.web.view import HISTORY_MINUTES, MAX_METERS
from tests.web.conftest import AIDON, AIDON_ID


def test_ring_keeps_the_newest_samples_in_order():
    ring = PowerRing(5)
    for second in range(12):
        ring.add(float(second), second * 10, None)
    assert len(ring) == 5
    assert ring.since(0) == [(float(s), s * 10.0, None) for s in range(7, 12)]
    assert ring.since(10) == [(10.0, 100.0, None), (11.0, 110.0, None)]
    assert ring.newest() == (11.0, 110.0, None)


def test_ring_keeps_one_sample_a_second_the_latest():
    ring = PowerRing(10)
    ring.add(100.0, 1, 0)
    ring.add(100.4, 2, 0)
    ring.add(100.9, 3, 1)
    ring.add(101.0, 4, 0)
    assert ring.since(0) == [(100.0, 3.0, 1.0), (101.0, 4.0, 0.0)]


def test_ring_accepts_a_clock_that_steps_back():
    ring = PowerRing(3)
    ring.add(100.0, 1, None)
    ring.add(50.0, 2, None)  # a replay restarted, or the clock was set back
    assert [when for when, _, _ in ring.since(0)] == [100.0, 50.0]


def test_ring_needs_room():
    with pytest.raises(ValueError, match="capacity"):
        PowerRing(0)


def test_hour_bars_of_the_newest_day_and_bounded():
    bars = HourBars(keep=30)
    start = datetime.fromisoformat("2026-03-28T00:00:00+01:00")
    for hour in range(40):
        bars.add((start + timedelta(hours=hour)).isoformat(), hour / 10)
    date, hours = bars.day()
    assert date == "2026-03-29"
    assert hours == [(h, (24 + h) / 10) for h in range(16)]
    assert bars.day("2026-03-28")[1][0] == (10, 1.0)  # the 10 oldest were dropped
    bars.add((start + timedelta(hours=39)).isoformat(), 9.0)  # a correction replaces
    assert bars.day()[1][-1] == (15, 9.0)


def test_hour_bars_sum_the_repeated_hour_of_the_autumn_day():
    bars = HourBars()
    bars.add("2026-10-25T02:00:00+02:00", 1.0)
    bars.add("2026-10-25T02:00:00+01:00", 0.5)
    assert bars.day() == ("2026-10-25", [(2, 1.5)])


async def test_history_is_bounded_per_meter_and_in_meters(page):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    page.feed(AIDON * 1500, start=start, step=1.0)  # 75 minutes, one a second
    view = page.page.view
    (meter,) = view.meters.values()
    assert len(meter.history) == HISTORY_MINUTES * 60
    reading = MeterReading({"active_power_import": 1})
    for index in range(MAX_METERS + 10):
        view.on_reading(f"meter{index}", reading, {}, start)
    assert len(view.meters) == MAX_METERS
    assert view.ignored == 11
    history = await page.json("/api/history?minutes=60")
    assert len(history["meters"]) == MAX_METERS


def test_web_settings_default_to_this_machine_only(monkeypatch):
    for name in [n for n in os.environ if n.upper().startswith("HAN2MQTT_")]:
        monkeypatch.delenv(name)
    web = Settings().web
    assert (web.enabled, web.host, web.port) == (True, "127.0.0.1", 8080)
    monkeypatch.setenv("HAN2MQTT_WEB__HOST", "0.0.0.0")  # noqa: S104 - what the image sets
    monkeypatch.setenv("HAN2MQTT_WEB__PORT", "8099")
    web = Settings().web
    assert (web.host, web.port) == ("0.0.0.0", 8099)  # noqa: S104 - ditto


def test_the_demo_serves_the_page_only_when_it_runs_until_stopped():
    assert not demo_settings(None, 1883, 0.5).web.enabled
    assert demo_settings(None, 1883, 0.5, web=True).web.enabled


def test_a_bad_hour_start_is_not_kept():
    bars = HourBars()
    assert not bars.add("x", 1.0)
    assert not bars.add("2026-01-15", 1.0)  # a date, no hour
    assert not bars.add("2026-01-15T12:00:00+01:00", math.nan)
    assert bars.add("2026-01-15T12:00:00+01:00", 1.0)
    assert bars.day() == ("2026-01-15", [(12, 1.0)])


async def test_a_failing_page_never_fails_the_bridge(page, caplog):
    page.feed(AIDON[:1])

    def broken(_meter: str) -> None:
        raise RuntimeError("a bug in the page")

    page.page.view.on_change = broken
    page.feed(AIDON[1:3])  # the bridge goes on publishing
    assert page.bridge.tracker.meters[AIDON_ID].frames == 3
    assert page.page.view.failures == 2
    assert sum("could not be shown" in r.getMessage() for r in caplog.records) == 1
    derived = {"energy_import_last_hour_start": "garbage", "energy_import_last_hour": 1.0}
    page.page.view.on_change = None
    page.page.view.on_reading(AIDON_ID, MeterReading({}), derived, datetime.now(UTC))
    assert (await page.json("/api/state"))["meters"][AIDON_ID]["hours"]["kwh"] == []
