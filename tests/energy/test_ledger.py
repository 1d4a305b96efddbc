"""The quarter-hour ledger on simulated meters whose registers are known exactly.

A meter here counts the energy of its power held between frames (as the ledger integrates it) but
its registers run a few percent ahead of that power, so scaling shows; registers are rounded to
the Wh as Aidon sends them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.energy import EnergyParameters, decode_state, encode_state
from han2mqtt.energy.clock import next_day_start
from han2mqtt.energy.ledger import Ledger, LedgerInterval
from tests.energy.helpers import engine, reading

OSLO = ZoneInfo("Europe/Oslo")
STEP = timedelta(seconds=10)
DRIFT = 1.04
"""The registers count 4 % more than the power says (meters' power and energy differ a little)."""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local Oslo wall time as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=OSLO).astimezone(UTC)


def power_at(moment: datetime) -> float:
    """A power between 400 and 3,400 W that changes every frame."""
    return 400.0 + (int(moment.timestamp()) * 7919) % 3000


@dataclass
class Meter:
    """A simulated meter: what it has counted, and the ledger fed with its frames."""

    ledger: Ledger = field(default_factory=lambda: Ledger("m", OSLO))
    counted: dict[str, float] = field(default_factory=lambda: {"import": 1000.0, "export": 5.0})
    registers: dict[datetime, dict[str, float]] = field(default_factory=dict)
    out: list[LedgerInterval] = field(default_factory=list)

    def register_now(self, moment: datetime) -> dict[str, float]:
        values = {d: round(v, 3) for d, v in self.counted.items()}
        self.registers[moment] = values
        return values

    def run(
        self,
        start: datetime,
        end: datetime,
        *,
        hourly: bool = True,
        every_frame: bool = False,
        power: Callable[[datetime], float] = power_at,
        skip: Callable[[datetime], bool] = lambda _: False,
    ) -> None:
        """Frames every 10 s in [start, end); registers at the hours, or in every frame."""
        moment = start
        while moment < end:
            watts = power(moment)
            registers: dict[str, float] = {}
            if every_frame or (hourly and moment.minute == 0 and moment.second == 0):
                registers = self.register_now(moment)
            if not skip(moment):
                powers = {"import": watts, "export": 20.0}
                self.out += self.ledger.feed(moment, powers, registers, moment)
            self.counted["import"] += watts * DRIFT * 10 / 3_600_000
            self.counted["export"] += 20.0 * 10 / 3_600_000
            moment += STEP

    def intervals(self, minutes: int) -> dict[datetime, LedgerInterval]:
        return {i.start: i for i in self.out if i.minutes == minutes}


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    while start < end:
        yield start
        start += timedelta(hours=1)


def _register_hour(meter: Meter, start: datetime, direction: str = "import") -> float:
    return (
        meter.registers[start + timedelta(hours=1)][direction] - meter.registers[start][direction]
    )


def test_hourly_registers_make_exact_hours_of_estimated_quarters():
    meter = Meter()
    meter.run(utc(2026, 5, 6, 9, 40), utc(2026, 5, 6, 13, 5))
    hours, quarters = meter.intervals(60), meter.intervals(15)
    assert sorted(hours) == list(_hours(utc(2026, 5, 6, 10), utc(2026, 5, 6, 13)))
    for start, hour in hours.items():
        assert not hour.estimated
        assert hour.import_kwh == pytest.approx(_register_hour(meter, start), abs=1e-9)
        assert hour.export_kwh == pytest.approx(_register_hour(meter, start, "export"), abs=1e-9)
        parts = [quarters[start + timedelta(minutes=m)] for m in (0, 15, 30, 45)]
        assert all(part.estimated for part in parts)
        assert sum(p.import_kwh or 0 for p in parts) == pytest.approx(hour.import_kwh, abs=1e-9)
    # 09:40-10:00, before the first register: the quarters power covered, from the estimate;
    # the hour itself is absent (the ledger saw only part of it), never a partial value.
    assert utc(2026, 5, 6, 9) not in hours
    assert {utc(2026, 5, 6, 9, 45)} <= quarters.keys()
    assert utc(2026, 5, 6, 9, 30) not in quarters  # 09:40-09:45: too little of it seen


def test_registers_in_every_frame_make_exact_quarters():
    meter = Meter()
    meter.run(utc(2026, 5, 6, 10), utc(2026, 5, 6, 11, 1), hourly=False, every_frame=True)
    quarters = meter.intervals(15)
    assert len(quarters) == 4
    for start, quarter in quarters.items():
        assert not quarter.estimated
        end = start + timedelta(minutes=15)
        expected = meter.registers[end]["import"] - meter.registers[start]["import"]
        assert quarter.import_kwh == pytest.approx(expected, abs=1e-9)
    assert not meter.intervals(60)[utc(2026, 5, 6, 10)].estimated


@pytest.mark.parametrize(
    ("day", "quarters", "hours"),
    [((2026, 3, 29), 92, 23), ((2026, 10, 25), 100, 25), ((2026, 10, 26), 96, 24)],
)
def test_dst_days_have_92_and_100_quarters(day, quarters, hours):
    meter = Meter()
    start = utc(*day)
    end = next_day_start(start, OSLO)
    meter.run(start - timedelta(minutes=5), end + timedelta(minutes=5))
    inside = [i for i in meter.out if start <= i.start < end]
    assert len([i for i in inside if i.minutes == 15]) == quarters
    assert len([i for i in inside if i.minutes == 60]) == hours
    total = sum(i.import_kwh or 0 for i in inside if i.minutes == 60)
    expected = meter.registers[end]["import"] - meter.registers[start]["import"]
    assert total == pytest.approx(expected, abs=1e-9)


def test_a_missing_register_closes_the_hour_from_power_and_the_next_splits_the_rest():
    meter = Meter()
    missing = utc(2026, 10, 20, 15)
    meter.run(utc(2026, 10, 20, 13, 59), missing)
    # The 15:00 list is replaced by a repeat of the 14:00 one (the engine drops it): no register.
    meter.run(missing, missing + timedelta(seconds=10), hourly=False)
    meter.run(missing + timedelta(seconds=10), utc(2026, 10, 20, 16, 5))
    hours = meter.intervals(60)
    first, second = hours[utc(2026, 10, 20, 14)], hours[missing]
    assert first.estimated
    assert second.estimated
    both = meter.registers[utc(2026, 10, 20, 16)]["import"]
    both -= meter.registers[utc(2026, 10, 20, 14)]["import"]
    assert (first.import_kwh or 0) + (second.import_kwh or 0) == pytest.approx(both, abs=1e-9)
    assert 0.9 < (first.import_kwh or 0) / (second.import_kwh or 1) < 1.1  # never doubled


def test_a_gap_longer_than_the_power_hold_is_left_to_the_next_register():
    meter = Meter()
    away = (utc(2026, 5, 6, 10, 20), utc(2026, 5, 6, 10, 50))
    meter.run(utc(2026, 5, 6, 9, 59), utc(2026, 5, 6, 11, 1), skip=lambda m: away[0] <= m < away[1])
    hour = meter.intervals(60)[utc(2026, 5, 6, 10)]
    assert not hour.estimated  # registers bracket it, whatever power saw in between
    assert hour.import_kwh == pytest.approx(_register_hour(meter, utc(2026, 5, 6, 10)), abs=1e-9)
    quarters = [q for q in meter.intervals(15).values() if q.start.hour == 8]
    assert len(quarters) == 4
    assert all(q.estimated and (q.import_kwh or 0) > 0 for q in quarters)
    # The quarters nobody saw get the hour's mean power: the 10:30 one as much as its share.
    mean = (hour.import_kwh or 0) / 4
    assert quarters[2].import_kwh == pytest.approx(mean, rel=0.05)


def test_a_restart_inside_an_hour_gives_what_an_uninterrupted_run_gives():
    whole = Meter()
    whole.run(utc(2026, 5, 6, 9, 59), utc(2026, 5, 6, 12, 1))
    first = Meter()
    first.run(utc(2026, 5, 6, 9, 59), utc(2026, 5, 6, 10, 30))
    second = Meter(counted=first.counted, registers=first.registers, out=first.out)
    second.ledger.load(first.ledger.dump())
    second.run(utc(2026, 5, 6, 10, 30), utc(2026, 5, 6, 12, 1))
    assert second.out == whole.out


def test_a_meter_exchange_starts_the_registers_over_without_a_negative_interval():
    meter = Meter()
    meter.run(utc(2026, 5, 6, 9, 59), utc(2026, 5, 6, 12))
    meter.counted = {"import": 0.0, "export": 0.0}  # the new meter
    moment = utc(2026, 5, 6, 12)
    meter.out += meter.ledger.feed(moment, {"import": 1000.0}, {"import": 0.0}, moment, {"import"})
    meter.run(moment + STEP, utc(2026, 5, 6, 13, 1))
    assert all((i.import_kwh or 0) >= 0 for i in meter.out)
    hours = meter.intervals(60)
    assert hours[utc(2026, 5, 6, 11)].estimated
    assert hours[utc(2026, 5, 6, 11)].import_kwh == pytest.approx(1.9, rel=0.2)  # from power
    assert hours[utc(2026, 5, 6, 12)].import_kwh == pytest.approx(
        meter.registers[utc(2026, 5, 6, 13)]["import"], abs=1e-9
    )


def test_a_meter_without_export_data_has_no_export_values():
    ledger = Ledger("m", OSLO)
    out: list[LedgerInterval] = []
    moment = utc(2026, 5, 6, 10)
    while moment <= utc(2026, 5, 6, 11, 3):
        registers = {"import": 1.0} if moment.minute == 0 and moment.second == 0 else {}
        out += ledger.feed(moment, {"import": 500.0}, registers, moment)
        moment += STEP
    assert out
    assert all(i.export_kwh is None for i in out)


# -- through the energy stage: naive meter clocks, repeated lists, restarts ----------------------


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(OSLO).replace(tzinfo=None)


REPEATED = utc(2026, 10, 25, 17)


def test_the_engine_keeps_the_repeated_autumn_hour_apart_through_a_restart():
    """A naive clock repeats 02:00-03:00 on 25 October; a restart at 14:30 and a repeated list."""
    parameters = EnergyParameters(zone=OSLO, ledger=True)
    target = engine(ledger=True)
    start, end = utc(2026, 10, 25), utc(2026, 10, 26)
    counted, registers, out = 4000.0, {}, []  # type: ignore[var-annotated]
    moment = start - timedelta(minutes=1)
    while moment < end + timedelta(minutes=3):
        watts = power_at(moment)
        register = None
        if moment.minute == 0 and moment.second == 0:
            register = registers[moment] = round(counted, 3)
        if moment == utc(2026, 10, 25, 14, 30):  # restart through the state file
            target = decode_state(encode_state({"m": target}), parameters)["m"]
        frame = reading(_naive(moment), power=int(watts), register=register)
        if moment == REPEATED:  # the 16:00 list again, in place of 17:00's
            earlier = moment - timedelta(hours=1)
            frame = reading(_naive(earlier), power=int(watts), register=registers[earlier])
        result = target.feed(frame, moment + timedelta(seconds=1))
        assert result.repeated == (moment == REPEATED)
        out += result.intervals
        counted += int(watts) * DRIFT * 10 / 3_600_000
        moment += STEP
    hours = [i for i in out if i.minutes == 60 and start <= i.start < end]
    quarters = [i for i in out if i.minutes == 15 and start <= i.start < end]
    assert len(hours) == 25
    assert len(quarters) == 100
    assert all(i.meter == "m" for i in out)
    twice = [h for h in hours if h.start.astimezone(OSLO).hour == 2]
    assert len(twice) == 2
    assert twice[0].start != twice[1].start
    for hour in hours:
        opening, closing = registers[hour.start], registers[hour.start + timedelta(hours=1)]
        if hour.start in {REPEATED - timedelta(hours=1), REPEATED}:
            assert hour.estimated  # closed from power; the 18:00 register split the rest
            assert hour.import_kwh == pytest.approx(closing - opening, rel=0.1)
            continue
        assert hour.import_kwh == pytest.approx(closing - opening, abs=1e-9)
        assert not hour.estimated
    day = sum(h.import_kwh or 0 for h in hours)
    assert day == pytest.approx(registers[end] - registers[start], abs=1e-9)


@pytest.mark.parametrize("jump", [timedelta(days=-400), timedelta(days=365 * 70)])
def test_a_meter_clock_that_jumps_starts_the_ledger_over(jump: timedelta):
    """A clock reset (to 2000) or a wrong year: neither stalls the ledger nor books across it."""
    meter = Meter()
    meter.run(utc(2026, 5, 6, 9, 59), utc(2026, 5, 6, 11, 1))
    before = len(meter.out)
    wrong = utc(2026, 5, 6, 11, 1) + jump
    meter.out += meter.ledger.feed(wrong, {"import": 500.0}, {"import": 1.0}, wrong)
    assert len(meter.out) == before  # nothing booked across the jump
    assert meter.ledger.jumps == 1
    meter.run(utc(2026, 5, 6, 11, 1) + STEP, utc(2026, 5, 6, 13, 1))  # the clock is right again
    assert meter.ledger.jumps == 2
    hours = meter.intervals(60)
    assert hours[utc(2026, 5, 6, 12)].import_kwh == pytest.approx(
        _register_hour(meter, utc(2026, 5, 6, 12)), abs=1e-9
    )
    assert all(i.start.year == 2026 for i in meter.out)


def test_the_engine_gives_exact_quarters_for_registers_in_every_frame():
    """DSMR P1: a register in every telegram (10 s), stamped with the telegram's clock."""
    target = engine(ledger=True)
    counted, out = 500.0, list[LedgerInterval]()
    moment = utc(2026, 11, 2, 10)
    registers: dict[datetime, float] = {}
    while moment <= utc(2026, 11, 2, 11) + STEP:
        watts = power_at(moment)
        register = registers[moment] = round(counted, 3)
        frame = reading(_naive(moment), power=int(watts), register=register)
        out += target.feed(frame, moment + timedelta(seconds=1)).intervals
        counted += int(watts) * 10 / 3_600_000
        moment += STEP
    quarters = [i for i in out if i.minutes == 15]
    assert len(quarters) == 4
    for quarter in quarters:
        assert not quarter.estimated
        end = quarter.start + timedelta(minutes=15)
        expected = registers[end] - registers[quarter.start]
        assert quarter.import_kwh == pytest.approx(expected, abs=1e-9)
    (hour,) = [i for i in out if i.minutes == 60]
    assert not hour.estimated


def test_hourly_registers_sent_late_still_anchor_the_ledger():
    """Registers stamped 3 minutes after the hour (later than the energy stage snaps)."""
    meter = Meter()
    late = timedelta(minutes=3)
    moment = utc(2026, 5, 6, 9, 50)
    while moment < utc(2026, 5, 6, 14, 5):
        watts = power_at(moment)
        registers = {}
        if (moment - late).minute == 0 and moment.second == 0:
            registers = meter.register_now(moment)
        meter.out += meter.ledger.feed(moment, {"import": watts}, registers, moment)
        meter.counted["import"] += watts * DRIFT * 10 / 3_600_000
        moment += STEP
    hours = meter.intervals(60)
    assert sorted(hours) == list(_hours(utc(2026, 5, 6, 10), utc(2026, 5, 6, 14)))
    assert all(hour.estimated for hour in hours.values())
    for start in _hours(utc(2026, 5, 6, 11), utc(2026, 5, 6, 14)):
        # Anchored to the registers (which run 4 % ahead of the power), not the power alone.
        expected = meter.registers[start + late + timedelta(hours=1)]["import"]
        expected -= meter.registers[start + late]["import"]
        assert hours[start].import_kwh == pytest.approx(expected, rel=0.02), start


def test_a_span_across_the_hour_leaves_both_hours_estimated():
    """P1 silent 10:55-11:05: no register at 11:00, so neither hour is bracketed by registers."""
    meter = Meter()
    silent = (utc(2026, 5, 6, 10, 55), utc(2026, 5, 6, 11, 5))
    meter.run(
        utc(2026, 5, 6, 10),
        utc(2026, 5, 6, 12) + STEP,
        hourly=False,
        every_frame=True,
        skip=lambda m: silent[0] <= m < silent[1],
    )
    hours = meter.intervals(60)
    assert hours[utc(2026, 5, 6, 10)].estimated
    assert hours[utc(2026, 5, 6, 11)].estimated
    both = meter.registers[utc(2026, 5, 6, 12)]["import"]
    both -= meter.registers[utc(2026, 5, 6, 10)]["import"]
    total = sum(h.import_kwh or 0 for h in hours.values())
    assert total == pytest.approx(both, abs=1e-9)
    quarters = meter.intervals(15)
    assert not quarters[utc(2026, 5, 6, 10)].estimated
    assert quarters[utc(2026, 5, 6, 10, 45)].estimated
