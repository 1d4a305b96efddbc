"""Live counters and interval energy, on hand-computed cases (Europe/Oslo, meter clock naive)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from han2mqtt.energy import EnergyEngine, EnergyResult, Verdict
from tests.energy.helpers import EXPORT_CODE, IMPORT_CODE, engine, feed, local, reading

STEP = timedelta(seconds=10)


def run(
    target: EnergyEngine,
    start: datetime,
    end: datetime,
    power: int | None = None,
    export_power: int | None = None,
) -> EnergyResult:
    """Frames every 10 s after ``start`` up to ``end`` (exclusive); returns the last result."""
    moment = start + STEP
    while True:
        result = feed(target, reading(moment, power=power, export_power=export_power))
        moment += STEP
        if moment >= end:
            return result


def test_register_plus_integral_by_hand():
    target = engine()
    start = local(2024, 5, 6, 10, 0, 0)
    result = feed(target, reading(start, power=1200, register=100.0))
    assert result.values["energy_import"] == 100.0
    assert result.values["meter_time"] == "2024-05-06T10:00:00+02:00"
    moment = start
    for _ in range(180):  # 30 minutes at 1200 W: 0.6 kWh
        moment += STEP
        result = feed(target, reading(moment, power=1200))
    assert result.values["energy_import"] == 100.6
    assert result.values["energy_import_hour"] == 0.6
    assert "energy_import_last_hour" not in result.values


def test_estimate_ahead_of_the_register_holds_until_passed():
    target = engine()
    feed(target, reading(local(2024, 5, 6, 10), power=3600, register=100.0))
    run(target, local(2024, 5, 6, 10), local(2024, 5, 6, 11), power=3600)  # 0.01 kWh a frame
    # The meter used 3.5 kWh in the hour, the estimate says 3.6: the counter holds at 103.59,
    # the value it had already published at 10:59:50.
    result = feed(target, reading(local(2024, 5, 6, 11), power=3600, register=103.5))
    assert result.values["energy_import"] == 103.59
    assert result.values["energy_import_last_hour"] == 3.5
    assert result.values["energy_import_last_hour_start"] == "2024-05-06T10:00:00+02:00"
    assert result.values["energy_import_hour"] == 0.0
    result = run(target, local(2024, 5, 6, 11), local(2024, 5, 6, 11, 1, 40), power=3600)
    assert result.values["energy_import"] == 103.59  # 103.5 + 0.09: still held
    result = feed(target, reading(local(2024, 5, 6, 11, 1, 40), power=3600))
    assert result.values["energy_import"] == 103.6  # 103.5 + 0.1 passes it
    assert result.values["energy_import_hour"] == 0.1


def _power(index: int) -> int:
    """A power that varies from frame to frame between 500 and 3,000 W."""
    return 500 + (index * 7919) % 2500


def test_a_day_of_hourly_registers_with_varying_power():
    target = engine()
    day = local(2024, 5, 6)
    true_energy = 5000.0  # kWh, what the meter has counted (power held between frames)
    registers: dict[int, float] = {}
    live_before: dict[int, float] = {}
    hour_before: dict[int, float] = {}
    last_hours: dict[int, tuple[float, str]] = {}
    previous_live = 0.0
    for index in range(24 * 360 + 1):
        moment = day + index * STEP
        power = _power(index)
        register = None
        if moment.minute == 0 and moment.second == 0:
            register = registers[index // 360] = round(true_energy, 3)  # Wh resolution
        result = feed(target, reading(moment, power=power, register=register))
        values = result.values
        if "energy_import" in values:
            live = float(values["energy_import"])
            assert live >= previous_live  # never decreasing
            previous_live = live
        if (index + 1) % 360 == 0:  # the last frame before the next hour
            live_before[(index + 1) // 360] = previous_live
            hour_before[(index + 1) // 360] = float(values["energy_import_hour"])
        if "energy_import_last_hour" in values:
            last_hours[index // 360] = (
                float(values["energy_import_last_hour"]),
                str(values["energy_import_last_hour_start"]),
            )
        true_energy += power * 10 / 3_600_000
    assert sorted(last_hours) == list(range(1, 25))
    for hour in range(1, 25):
        consumption = registers[hour] - registers[hour - 1]
        tolerance = max(0.01 * consumption, 0.01)
        assert abs(live_before[hour] - registers[hour]) <= tolerance, hour
        assert abs(hour_before[hour] - consumption) <= tolerance, hour
        assert last_hours[hour][0] == round(consumption, 3)
        start = (day + timedelta(hours=hour - 1)).isoformat() + "+02:00"
        assert last_hours[hour][1] == start
    assert abs(float(values["energy_import_today"]) - 0.0) < 1e-9  # midnight: a new day began
    assert values["energy_import_last_hour_start"] == "2024-05-06T23:00:00+02:00"


def test_today_counts_from_midnight_and_only_when_midnight_is_known():
    target = engine()
    result = feed(target, reading(local(2024, 5, 6, 23), power=1000, register=9.0))
    assert "energy_import_today" not in result.values  # started at 23:00: today is not known
    run(target, local(2024, 5, 6, 23), local(2024, 5, 7, 0), power=1000)
    result = feed(target, reading(local(2024, 5, 7, 0), power=1000, register=10.0))
    assert result.values["energy_import_today"] == 0.0
    run(target, local(2024, 5, 7, 0), local(2024, 5, 7, 1), power=1000)
    feed(target, reading(local(2024, 5, 7, 1), power=2000, register=11.0))
    result = run(target, local(2024, 5, 7, 1), local(2024, 5, 7, 1, 30, 10), power=2000)
    assert result.values["energy_import_today"] == 2.0  # 1 kWh by register + 1 kWh since 01:00
    assert result.values["energy_import_hour"] == 1.0


def test_a_register_that_goes_backwards_is_not_published():
    target = engine()
    feed(target, reading(local(2024, 5, 6, 10), power=1000, register=100.0))
    run(target, local(2024, 5, 6, 10), local(2024, 5, 6, 11), power=1000)
    result = feed(target, reading(local(2024, 5, 6, 11), power=1000, register=99.5))
    assert result.events[0].verdict is Verdict.BACKWARDS
    assert result.events[0].previous == 100.0
    assert "active_power_import_total" not in result.reading.fields
    assert IMPORT_CODE not in result.reading.obis
    assert "active_power_import_total" not in result.reading.field_obis
    assert result.values["energy_import"] == 101.0  # the estimate, not the bad register
    assert "energy_import_last_hour" not in result.values
    run(target, local(2024, 5, 6, 11), local(2024, 5, 6, 12), power=1000)
    result = feed(target, reading(local(2024, 5, 6, 12), power=1000, register=102.0))
    assert result.events == ()
    assert result.reading.fields["active_power_import_total"] == 102.0
    assert result.values["energy_import"] == 102.0


def test_a_register_that_jumps_10_mwh_is_not_published():
    target = engine()
    feed(target, reading(local(2024, 5, 6, 10), power=1000, register=100.0, export_register=5.0))
    run(target, local(2024, 5, 6, 10), local(2024, 5, 6, 11), power=1000)
    result = feed(
        target, reading(local(2024, 5, 6, 11), power=1000, register=10100.0, export_register=5.0)
    )
    assert [event.verdict for event in result.events] == [Verdict.TOO_FAST]
    assert "active_power_import_total" not in result.reading.fields
    assert IMPORT_CODE not in result.reading.obis
    assert result.reading.obis[EXPORT_CODE] == 5000.0  # the good register still goes out
    assert result.values["energy_import"] == 101.0
    # 50 kW for one hour is possible; 50.1 kWh is not.
    assert feed(target, reading(local(2024, 5, 6, 12), register=150.0)).events == ()
    result = feed(target, reading(local(2024, 5, 6, 13), register=200.1))
    assert result.events[0].verdict is Verdict.TOO_FAST


def test_a_meter_exchange_is_accepted_after_three_agreeing_registers():
    target = engine()
    feed(target, reading(local(2024, 5, 6, 10), power=1000, register=12000.0))
    verdicts = []
    for hour, register in ((11, 3.0), (12, 4.0), (13, 5.0)):
        result = feed(target, reading(local(2024, 5, 6, hour), power=1000, register=register))
        verdicts.append([event.verdict for event in result.events])
    assert verdicts == [[Verdict.BACKWARDS], [Verdict.BACKWARDS], [Verdict.EXCHANGE]]
    assert result.reading.fields["active_power_import_total"] == 5.0
    assert result.values["energy_import"] == 5.0  # the new meter's count: HA sees a reset
    result = feed(target, reading(local(2024, 5, 6, 14), power=1000, register=6.0))
    assert result.events == ()
    assert result.values["energy_import"] == 6.0
    assert result.values["energy_import_last_hour"] == 1.0


def test_rejected_registers_that_disagree_with_each_other_are_no_exchange():
    target = engine()
    feed(target, reading(local(2024, 5, 6, 10), register=100.0))
    for hour, register in ((11, 3.0), (12, 90.0), (13, 2.0)):
        result = feed(target, reading(local(2024, 5, 6, hour), register=register))
        assert result.events[0].verdict is Verdict.BACKWARDS


def test_a_missing_hour_gives_no_last_hour_for_the_hours_it_bounds():
    target = engine()
    published = {}
    for hour, register in ((10, 100.0), (11, 101.0), (13, 103.5), (14, 104.0)):
        result = feed(target, reading(local(2024, 5, 6, hour), power=1000, register=register))
        published[hour] = result.values.get("energy_import_last_hour")
    assert published == {10: None, 11: 1.0, 13: None, 14: 0.5}


def test_kamstrup_hourly_list_stamped_after_the_hour_closes_the_hour():
    target = engine()
    feed(target, reading(local(2024, 5, 6, 10, 0, 15), power=0))
    feed(target, reading(local(2024, 5, 6, 10, 0, 25), power=0, register=100.0))
    feed(target, reading(local(2024, 5, 6, 10, 0, 35), power=3600))
    moment = local(2024, 5, 6, 10, 0, 35)
    while moment < local(2024, 5, 6, 11, 0, 15):
        moment += STEP
        feed(target, reading(moment, power=3600))
    # Sent at 11:00:25 with the value at 11:00:00 (the frame before it had no register).
    result = feed(target, reading(local(2024, 5, 6, 11, 0, 25), power=3600, register=103.6))
    assert result.values["energy_import_last_hour"] == 3.6
    assert result.values["energy_import_last_hour_start"] == "2024-05-06T10:00:00+02:00"
    # 25 s at 3.6 kW since 11:00:00, and the exact register as the hour's base
    assert result.values["energy_import_hour"] == pytest.approx(0.025)
    assert result.values["energy_import"] == pytest.approx(103.625)


def test_power_net_and_phase_load():
    target = engine(main_fuse=25)
    result = feed(target, reading(local(2024, 5, 6, 10), power=0, export_power=1500))
    assert result.values["power_net"] == -1500
    assert "phase_load_l1" not in result.values
    result = feed(target, reading(local(2024, 5, 6, 10, 0, 2), power=1362, currents=(5.0, -2.5)))
    assert "power_net" not in result.values  # list 1: no export power, no net power
    assert result.values["phase_load_l1"] == 20.0
    assert result.values["phase_load_l2"] == 10.0
    assert "phase_load_l3" not in result.values
    assert "phase_load_l1" not in feed(engine(), reading(None, currents=(5.0,))).values


def test_frames_without_meter_time_run_on_the_meter_clock_offset():
    target = engine()
    first = feed(target, reading(local(2024, 5, 6, 10), power=3600, register=100.0))
    assert "meter_time" in first.values
    base = first.values["meter_time"]
    assert base == "2024-05-06T10:00:00+02:00"
    # 100 s later by the receive clock, no meter time: 0.1 kWh at 3.6 kW.
    from datetime import UTC, datetime  # noqa: PLC0415

    received = datetime(2024, 5, 6, 8, 1, 41, tzinfo=UTC)
    result = target.feed(reading(None, power=3600), received)
    assert "meter_time" not in result.values
    assert result.values["energy_import"] == 100.1


def test_export_counter_runs_on_export_power():
    target = engine()
    feed(target, reading(local(2024, 5, 6, 12), power=0, export_power=2000, export_register=7.0))
    run(target, local(2024, 5, 6, 12), local(2024, 5, 6, 12, 30), power=0, export_power=2000)
    result = feed(target, reading(local(2024, 5, 6, 12, 30), power=0, export_power=2000))
    assert result.values["energy_export"] == 8.0
    assert result.values["energy_export_hour"] == 1.0
    assert "energy_import" not in result.values  # no import register yet
    assert result.values["energy_import_hour"] == 0.0


def test_a_first_register_older_than_the_first_power_sample_rescales_the_hour():
    # Power from 10:00:00 on (no meter time: the receive time), then a register whose meter time
    # lies before it: the hour's energy so far stays what the power said, not the register.
    from datetime import UTC  # noqa: PLC0415

    target = engine()
    start = datetime(2024, 5, 6, 8, tzinfo=UTC)  # 10:00 in Oslo
    target.feed(reading(None, power=3600), start)
    target.feed(reading(None, power=3600), start + timedelta(seconds=100))
    result = target.feed(
        reading(local(2024, 5, 6, 9, 59), power=3600, register=500.0),
        start + timedelta(seconds=110),
    )
    assert result.values["energy_import_hour"] == 0.1
    assert result.values["energy_import"] == 500.0


def test_p1_tariff_registers_are_summed_and_guarded():
    from han2mqtt.model import MeterReading  # noqa: PLC0415

    def telegram(moment: datetime, t1: float, t2: float, power: int) -> MeterReading:
        fields: dict[str, int | float | str] = {
            "meter_datetime": moment.isoformat() + "+02:00",
            "active_power_import": power,
            "active_power_import_total_t1": t1,
            "active_power_import_total_t2": t2,
        }
        obis: dict[str, int | float | str] = {
            "1-0:1.8.1.255": t1,
            "1-0:1.8.2.255": t2,
            "1-0:1.7.0.255": power,
        }
        field_obis = {
            "active_power_import_total_t1": "1-0:1.8.1.255",
            "active_power_import_total_t2": "1-0:1.8.2.255",
        }
        return MeterReading(fields, obis, {}, field_obis, "p1")

    target = engine()
    result = feed(target, telegram(local(2024, 5, 6, 10), 100.0, 50.0, 3600))
    assert result.values["energy_import"] == 150.0
    result = feed(target, telegram(local(2024, 5, 6, 10, 0, 10), 100.01, 50.0, 3600))
    assert result.values["energy_import"] == 150.01
    result = feed(target, telegram(local(2024, 5, 6, 10, 0, 20), 99.0, 50.0, 3600))
    assert [event.verdict for event in result.events] == [Verdict.BACKWARDS]
    assert "active_power_import_total_t1" not in result.reading.fields
    assert "1-0:1.8.1.255" not in result.reading.obis
    assert result.values["energy_import"] == 150.02  # the estimate, not 149


def test_a_repeated_list_is_no_register_and_never_doubles_an_hour():
    """Aidon resends the previous hour's list (clock and registers) instead of the new one."""
    target = engine()
    feed(target, reading(local(2024, 5, 6, 14), power=2000, register=100.0))
    run(target, local(2024, 5, 6, 14), local(2024, 5, 6, 15), power=2000)
    # 15:00: the 14:00 list again, received at 15:00:01.
    received = datetime(2024, 5, 6, 13, 0, tzinfo=UTC)
    again = target.feed(reading(local(2024, 5, 6, 14), power=2000, register=100.0), received)
    assert again.repeated
    assert "meter_time" not in again.values  # its clock is an hour old: not the frame's time
    assert again.reading.fields["active_power_import_total"] == 100.0  # published as sent
    assert again.values["energy_import"] == pytest.approx(102.0, abs=0.01)
    # A frame without a clock right after is placed by the receive time, not an hour back.
    plain = target.feed(reading(None, power=2000), received + STEP)
    assert plain.values["energy_import"] == pytest.approx(102.0, abs=0.01)
    assert plain.values["energy_import_hour"] == pytest.approx(0.0, abs=0.01)
    run(target, local(2024, 5, 6, 15), local(2024, 5, 6, 16), power=2000)
    result = feed(target, reading(local(2024, 5, 6, 16), power=2000, register=104.0))
    assert not result.repeated
    assert result.values["energy_import"] == 104.0
    assert result.values["energy_import_hour"] == 0.0


def test_a_clockless_meter_may_send_the_same_registers_twice():
    target = engine()
    first = target.feed(reading(None, register=5.0), datetime(2024, 5, 6, 12, tzinfo=UTC))
    second = target.feed(reading(None, register=5.0), datetime(2024, 5, 6, 13, tzinfo=UTC))
    assert not first.repeated
    assert not second.repeated
