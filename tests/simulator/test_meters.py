"""The simulated meters send frames the decoder reads, with clocks and registers that move."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.autodecoder import AutoDecoder
from han2mqtt.model import MeterReading
from han2mqtt.protocol.stream import ContentReader
from han2mqtt.simulator import METERS, Simulation, load_samples, register_meter
from han2mqtt.simulator.meters import DEFAULT_METERS, ReplayMeter, later

OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 3, 29, 0, 50, tzinfo=OSLO)  # the night summer time begins
LAYOUTS = {"aidon": "aidon", "kaifa": "kaifa", "kamstrup": "kamstrup", "p1": "p1"}


def _readings(name: str, steps: int, step: timedelta) -> list[MeterReading]:
    meter = METERS[name](START)
    reader, decoder = ContentReader(), AutoDecoder()
    readings: list[MeterReading] = []
    moment = START
    for _ in range(steps):
        moment = later(moment, step)
        for frame in meter.advance(moment):
            for content in reader.read(frame):
                reading = decoder.feed(content)
                assert reading is not None
                readings.append(reading)
    assert reader.stats.bad == 0
    return readings


def _import_register(reading: MeterReading) -> float | None:
    fields = reading.fields
    if "active_power_import_total" in fields:
        return float(fields["active_power_import_total"])
    if "active_power_import_total_t1" in fields:
        return float(fields["active_power_import_total_t1"]) + float(
            fields["active_power_import_total_t2"]
        )
    return None


@pytest.mark.parametrize("name", sorted(DEFAULT_METERS))
def test_every_frame_decodes_in_its_vendors_layout(name: str):
    readings = _readings(name, 40, timedelta(minutes=3))
    assert {reading.layout for reading in readings} == {LAYOUTS[name]}
    assert all("active_power_import" in reading.fields for reading in readings)


@pytest.mark.parametrize("name", sorted(DEFAULT_METERS))
def test_registers_rise_with_the_power_and_the_clock_moves(name: str):
    readings = _readings(name, 60, timedelta(minutes=2))  # two hours, over the DST change
    registers = [
        (str(r.fields.get("meter_datetime")), value)
        for r in readings
        if (value := _import_register(r)) is not None
    ]
    assert len(registers) >= 2
    times = [when for when, _ in registers]
    assert len(set(times)) == len(times)  # the clock moves
    values = [value for _, value in registers]
    assert values == sorted(values) and values[-1] > values[0]
    # The hourly lists are stamped on the hour, local time: 01:00 and then 03:00 (summer time).
    if name != "p1":
        stamps = [str(when)[11:] for when in times]
        assert stamps[:2] == ["01:00:00", "03:00:00"]


def test_the_linky_is_served_only_by_name_and_its_registers_follow_the_power():
    assert "linky" in METERS
    assert "linky" not in DEFAULT_METERS  # no clock in its frames: not for a sped-up demo
    readings = _readings("linky", 40, timedelta(minutes=3))  # across 01:00 (HC) and beyond
    assert {reading.layout for reading in readings} == {"tic-historique"}
    assert all("active_power_import" not in reading.fields for reading in readings)
    assert all(float(reading.fields["apparent_power_import"]) >= 0 for reading in readings)
    totals = [value for reading in readings if (value := _import_register(reading)) is not None]
    assert len(totals) == len(readings)
    assert totals == sorted(totals) and totals[-1] > totals[0]


def test_the_registers_hold_the_integral_of_the_power():
    meter = METERS["aidon"](START)
    moment, expected = START, meter.import_wh
    while moment < later(START, timedelta(hours=2)):
        expected += meter.power[0] * 60 / 3600
        moment = later(moment, timedelta(minutes=1))
        meter.advance(moment)
    assert meter.import_wh == pytest.approx(expected)


def test_a_simulation_steps_at_its_speed_and_ends_after_its_duration():
    simulation = Simulation(
        ["aidon"], start=START, speed=1440, interval=0.1, duration=timedelta(hours=1)
    )
    assert simulation.step == timedelta(seconds=144)
    steps = 0
    while simulation.next_frames() is not None:
        steps += 1
    assert steps == 25  # 3600 / 144, the last step cut at the end
    assert simulation.time == later(START, timedelta(hours=1))
    with pytest.raises(ValueError, match="unknown simulated meter 'linky2'"):
        Simulation(["linky2"])


def test_meters_sharing_a_line_send_only_lists_that_name_them():
    alone = Simulation(["aidon"], start=START, interval=2)
    shared = Simulation(["aidon", "kaifa"], start=START, interval=2)
    decoder = AutoDecoder()

    def ids(simulation: Simulation) -> list[str | None]:
        frames = [frame for _ in range(10) for frame in simulation.next_frames() or []]
        contents = [content for frame in frames for content in ContentReader().read(frame)]
        return [decoder.decode(content).meter_id for content in contents]

    assert None in ids(alone)  # list 1 between the list 2s, as the meter sends them
    assert None not in ids(shared)


def test_a_replayed_meter_registers_and_sends_its_frames_in_a_loop():
    frames = load_samples()[:2]
    register_meter("captures", lambda start: ReplayMeter(start, frames))
    try:
        simulation = Simulation(["captures"], start=START, interval=2)
        sent = [frame for _ in range(4) for frame in simulation.next_frames() or []]
    finally:
        del METERS["captures"]
    assert sent == [*frames, *frames]
