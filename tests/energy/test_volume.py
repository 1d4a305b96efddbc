"""The gas and water ledger: each captured reading's increase booked over the time it was used.

DSMR 4 gas meters report once an hour, stamped with the hour the reading was taken; DSMR 5
every five minutes (stamped a second after, ``223001S``).  The numbers below are the register
values a meter would send; every expected interval is their difference.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.energy.ledger import LedgerInterval
from han2mqtt.energy.volume import VolumeLedger
from han2mqtt.money import gas_costs

BRUSSELS = ZoneInfo("Europe/Brussels")


def local(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 5) -> datetime:
    return datetime(2020, month, day, hour, minute, second, tzinfo=BRUSSELS)


def hours_of(out: list[LedgerInterval]) -> dict[datetime, LedgerInterval]:
    return {i.start.astimezone(BRUSSELS): i for i in out if i.minutes == 60}


def quarters_of(out: list[LedgerInterval]) -> dict[datetime, LedgerInterval]:
    return {i.start.astimezone(BRUSSELS): i for i in out if i.minutes == 15}


def test_dsmr4_hourly_readings_land_in_the_hour_they_were_used():
    ledger = VolumeLedger("G1", BRUSSELS, "gas")
    registers = {13: 112.384, 14: 112.584, 15: 113.084, 16: 113.184}
    out: list[LedgerInterval] = []
    for hour, value in registers.items():
        for _ in range(3):  # the telegram repeats the reading until the next one
            out += ledger.feed(local(12, hour), value)
    hours = hours_of(out)
    assert list(hours) == [local(12, 13), local(12, 14), local(12, 15)]
    assert hours[local(12, 13)].import_kwh == pytest.approx(0.2)  # 13:00-14:00, not 14:00-15:00
    assert hours[local(12, 14)].import_kwh == pytest.approx(0.5)
    assert not any(hour.estimated for hour in hours.values())  # readings on both boundaries
    assert all(hour.kind == "gas" and hour.export_kwh is None for hour in hours.values())
    quarters = quarters_of(out)
    assert len(quarters) == 12
    assert all(q.estimated for q in quarters.values())  # spread evenly: the flow is not known
    assert quarters[local(12, 14, 30)].import_kwh == pytest.approx(0.125)


def test_dsmr5_readings_every_five_minutes_make_exact_quarters():
    ledger = VolumeLedger("G1", BRUSSELS, "gas")
    out: list[LedgerInterval] = []
    value = 100.0
    for step in range(25):  # 13:00:01 .. 15:00:01, the meter stamping a second late
        moment = local(12, 13) + timedelta(minutes=5 * step, seconds=1)
        out += ledger.feed(moment, value)
        value += 0.001 * step
    quarters = quarters_of(out)
    assert len(quarters) == 8
    assert not any(q.estimated for q in quarters.values())
    first = sum(0.001 * step for step in range(3))  # the increases after 13:00, 13:05, 13:10
    assert quarters[local(12, 13)].import_kwh == pytest.approx(first)
    hours = hours_of(out)
    assert [h.import_kwh for h in hours.values()] == pytest.approx(
        [sum(0.001 * s for s in range(12)), sum(0.001 * s for s in range(12, 24))]
    )
    assert not any(h.estimated for h in hours.values())


def test_the_first_reading_inside_an_interval_leaves_it_absent_and_a_gap_is_spread():
    ledger = VolumeLedger("W1", BRUSSELS, "water")
    out = ledger.feed(local(12, 13, 7), 10.0)
    out += ledger.feed(local(12, 14), 10.5)  # 13:07-14:00: 13:00 and 13:00-13:15 seen in part
    assert quarters_of(out).keys() == {local(12, 13, 15), local(12, 13, 30), local(12, 13, 45)}
    assert hours_of(out) == {}
    out = ledger.feed(local(12, 16), 11.5)  # two hours without a reading (a restart)
    hours = hours_of(out)
    assert [h.import_kwh for h in hours.values()] == pytest.approx([0.5, 0.5])
    assert all(h.estimated for h in hours.values())  # the span reached beyond each hour


def test_a_register_going_back_starts_over():
    ledger = VolumeLedger("G1", BRUSSELS, "gas")
    ledger.feed(local(12, 13), 500.0)
    assert ledger.feed(local(12, 14), 3.0) == []  # a new meter: nothing booked across it
    out = ledger.feed(local(12, 15), 3.2)
    assert hours_of(out)[local(12, 14)].import_kwh == pytest.approx(0.2)


def test_autumn_dst_keeps_both_two_o_clock_hours():
    ledger = VolumeLedger("G1", BRUSSELS, "gas")
    start = datetime(2020, 10, 25, 0, tzinfo=BRUSSELS).astimezone(UTC)
    out: list[LedgerInterval] = []
    for hour in range(5):  # 00:00 .. 04:00 local, 25 hours that day: 02:00 twice
        out += ledger.feed(start + timedelta(hours=hour), 10.0 + hour)
    hours = [i for i in out if i.minutes == 60]
    assert len(hours) == 4
    assert [h.start.astimezone(BRUSSELS).strftime("%H:%M%z") for h in hours] == [
        "00:00+0200",
        "01:00+0200",
        "02:00+0200",
        "02:00+0100",
    ]


def test_gas_costs_of_today_and_the_month_and_the_state_round_trip():
    ledger = VolumeLedger("G1", BRUSSELS, "gas")
    ledger.feed(local(11, 22), 100.0)  # seen from 22:00 on 11 May: the month is not whole
    ledger.feed(local(11, 23), 100.5)
    ledger.feed(local(12, 0), 101.0)
    ledger.feed(local(12, 1), 101.25)
    costs = gas_costs(ledger, 1.2, local(12, 1))
    assert costs == {"cost_gas_today": pytest.approx(0.25 * 1.2)}
    saved = json.loads(json.dumps(ledger.dump()))
    restored = VolumeLedger("G1", BRUSSELS, "gas")
    restored.load(saved)
    restored.feed(local(12, 2), 101.75)
    assert gas_costs(restored, 1.2, local(12, 2)) == {"cost_gas_today": pytest.approx(0.75 * 1.2)}
    for day in range(12, 32):  # to June: the month is whole from its first quarter
        restored.feed(local(day, 23), 102.0 + day)
    restored.feed(local(1, 0, month=6), 140.0)
    restored.feed(local(1, 6, month=6), 141.0)
    june = gas_costs(restored, 2.0, local(1, 6, month=6))
    assert june == {"cost_gas_today": pytest.approx(2.0), "cost_gas_month": pytest.approx(2.0)}
    water = VolumeLedger("W1", BRUSSELS, "water")
    assert gas_costs(water, 1.0, local(12, 1)) == {}


def test_the_bridge_costs_gas_without_the_history_and_counts_no_repeated_lists(tmp_path):
    """A Fluvius telegram every 5 minutes from 23:00: the gas meter's costs, and no fault."""
    from han2mqtt.bridge import Bridge, PrintPublisher  # noqa: PLC0415
    from han2mqtt.config import Settings  # noqa: PLC0415
    from tests.integration.test_gas_ledger import GAS, START, gas_at, telegram  # noqa: PLC0415

    printed: list[str] = []
    settings = Settings.model_validate(
        {
            "meter": {"timezone": "Europe/Brussels"},
            "history": {"enabled": False},
            "prices": {"gas": 2.0},
            "state": {"dir": str(tmp_path)},
        }
    )
    bridge = Bridge(settings, PrintPublisher("han2mqtt", printed.append))
    moment = START
    while moment <= START + timedelta(hours=2, minutes=30):
        bridge.handle_content(telegram(moment, 5), moment)
        moment += timedelta(minutes=5)
    states = [line for line in printed if line.startswith(f"han2mqtt/{GAS}/state ")]
    last = json.loads(states[-1].split(" ", 1)[1])
    used = gas_at(START + timedelta(hours=2, minutes=30)) - gas_at(START + timedelta(hours=1))
    assert last["cost_gas_today"] == pytest.approx(used * 2.0, rel=1e-9)
    assert last["cost_gas_month"] == last["cost_gas_today"]
    assert not any(key.startswith(("price_", "cost_hour")) for key in last)
    assert bridge.guard_counts["repeated"] == 0  # a sub-meter repeats its reading by design
    device = f"homeassistant/device/han2mqtt_{GAS.lower()}/config "
    (*_, discovery) = [line for line in printed if line.startswith(device)]
    components = json.loads(discovery[len(device) :].removesuffix(" (retained)\n"))["cmps"]
    for name in ("cost_gas_today", "cost_gas_month"):
        found = components[name]
        assert (found["dev_cla"], found["stat_cla"], found["unit_of_meas"]) == (
            "monetary",
            "total",
            "EUR",
        )


def test_a_restart_through_the_state_file_loses_no_gas_hour():
    """The gas meter's ledger lives in ``energy.json``: the hour open at the stop closes whole."""
    from han2mqtt.energy import EnergyEngine, EnergyParameters  # noqa: PLC0415
    from han2mqtt.energy.state import decode_state, encode_state  # noqa: PLC0415
    from han2mqtt.model import MeterReading  # noqa: PLC0415

    parameters = EnergyParameters(zone=BRUSSELS, ledger=True)

    def gas(moment: datetime, value: float) -> MeterReading:
        fields: dict[str, Any] = {
            "meter_id": "G1",
            "meter_type": "gas",
            "gas_total": value,
            "meter_datetime": moment.replace(tzinfo=None).isoformat(),
        }
        return MeterReading(fields=fields)

    first = EnergyEngine(parameters, "G1")
    first.feed(gas(local(12, 13), 10.0), local(12, 13, 0, 30))
    first.feed(gas(local(12, 13, 30), 10.2), local(12, 13, 30, 30))  # stopped here
    engines = decode_state(encode_state({"G1": first}), parameters)
    result = engines["G1"].feed(gas(local(12, 14), 10.5), local(12, 14, 0, 30))
    (hour,) = [i for i in result.intervals if i.minutes == 60]
    assert hour.start == local(12, 13).astimezone(UTC)
    assert hour.import_kwh == pytest.approx(0.5)
    assert (hour.kind, hour.estimated) == ("gas", False)
