"""Kamstrup's register resolution decided from the meter's own evidence (energy/resolution.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt.energy.resolution import (
    HOURS_NEEDED,
    Decision,
    ResolutionJudge,
    assumed_resolution,
    rescaled,
)
from han2mqtt.model import MeterReading

START = datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC)
METER = "5706567274389702"


def feed(
    judge: ResolutionJudge,
    *,
    hours: int,
    load: float = 1500.0,
    actual: int = 10,
    assumed: int = 10,
    step: int = 10,
    wobble: float = 0.0,
) -> list[Decision]:
    """A meter drawing ``load`` W (± ``wobble``), power every ``step`` s, register every hour.

    The register counts whole units of ``actual`` Wh and is decoded as if they were ``assumed``.
    """
    decisions = []
    energy_wh = 1_234_567.0
    moment = START
    for second in range(0, hours * 3600 + 1, step):
        moment = START + timedelta(seconds=second)
        power = load * (1 + wobble * ((second // step) % 3 - 1))
        if second:
            energy_wh += power * step / 3600
        register = None
        if second % 3600 == 0:
            register = int(energy_wh // actual) * assumed / 1000  # kWh as decoded
        decision = judge.observe(METER, assumed, moment, power, register)
        if decision is not None:
            decisions.append(decision)
    return decisions


@pytest.mark.parametrize(("actual", "assumed"), [(1, 10), (10, 10), (10, 1), (1, 1)])
def test_several_agreeing_hours_decide_the_true_resolution(actual: int, assumed: int):
    judge = ResolutionJudge()
    decisions = feed(judge, hours=HOURS_NEEDED + 2, actual=actual, assumed=assumed)
    assert decisions == [Decision(METER, actual, assumed, HOURS_NEEDED)]
    assert judge.resolution(METER) == actual
    assert judge.factor(METER, assumed) == actual / assumed
    assert judge.decided == {METER: actual}


def test_until_enough_hours_agree_the_assumption_stands():
    judge = ResolutionJudge()
    assert not feed(judge, hours=HOURS_NEEDED - 1, actual=1)
    assert judge.resolution(METER) is None
    assert judge.factor(METER, 10) == 1.0


def test_a_low_load_says_nothing():
    judge = ResolutionJudge()
    assert not feed(judge, hours=12, load=150.0, actual=1)  # 0.15 kWh an hour
    assert judge.resolution(METER) is None


def test_sparse_power_says_nothing():
    judge = ResolutionJudge()
    assert not feed(judge, hours=12, step=120, actual=1)
    assert judge.resolution(METER) is None


def test_a_doubtful_hour_discards_the_evidence_so_far():
    judge = ResolutionJudge()
    feed(judge, hours=HOURS_NEEDED - 1, actual=1)
    evidence = judge._evidence[METER]
    assert evidence.agreeing == HOURS_NEEDED - 1
    assert evidence.register is not None
    # an hour whose register rose 3 times what the power says (decoded x10): fits neither
    moment = START + timedelta(hours=HOURS_NEEDED - 1)
    doubtful = evidence.register + 1.5 * 10 * 3
    for second in range(10, 3601, 10):
        register = doubtful if second == 3600 else None
        judge.observe(METER, 10, moment + timedelta(seconds=second), 1500.0, register)
    assert judge.resolution(METER) is None
    assert judge._evidence[METER].agreeing == 0


def test_configured_resolution_overrides_evidence():
    judge = ResolutionJudge(configured=1)
    assert not feed(judge, hours=6, actual=10)
    assert judge.factor(METER, 10) == 0.1
    assert judge.decided == {}


def test_decisions_from_before_a_restart_are_kept():
    judge = ResolutionJudge(decided={METER: 1, "other": 7})
    assert judge.factor(METER, 10) == 0.1
    assert judge.decided == {METER: 1}  # a resolution that is none is dropped
    assert not feed(judge, hours=6, actual=1)


def test_the_decoded_assumption_follows_the_kamstrup_layout():
    assert assumed_resolution("6841131BN243101040") == 10
    assert assumed_resolution("6841131BN245101092") == 1  # Swedish firmware: Wh
    assert assumed_resolution(None) == 10


@settings(max_examples=60, deadline=None)
@given(
    actual=st.sampled_from([1, 10]),
    assumed=st.sampled_from([1, 10]),
    load=st.floats(min_value=0, max_value=9000),
    wobble=st.floats(min_value=0, max_value=0.5),
    hours=st.integers(min_value=1, max_value=8),
)
def test_never_a_wrong_decision(actual: int, assumed: int, load: float, wobble: float, hours: int):
    judge = ResolutionJudge()
    decisions = feed(
        judge, hours=hours, load=load, actual=actual, assumed=assumed, step=30, wobble=wobble
    )
    assert all(decision.resolution == actual for decision in decisions)


def test_rescaled_registers_are_exact_decimals_and_nothing_else_changes():
    reading = MeterReading(
        {"active_power_import_total": 12345.67, "active_power_import": 1500, "meter_id": METER},
        {"1-1:1.8.0.255": 12345670, "1-1:1.7.0.255": 1500},
        {},
        {"active_power_import_total": "1-1:1.8.0.255", "active_power_import": "1-1:1.7.0.255"},
        "kamstrup",
    )
    smaller = rescaled(reading, 0.1)
    assert smaller.fields["active_power_import_total"] == 1234.567
    assert smaller.obis["1-1:1.8.0.255"] == 1234567
    assert smaller.fields["active_power_import"] == 1500
    assert rescaled(reading, 1.0) is reading


def test_registers_sent_in_every_frame_are_judged_by_the_hour():
    """Danish Kamstrup lists carry the registers in every 10 s frame."""
    judge = ResolutionJudge()
    energy_wh = 5_000_000.0
    decisions = []
    for second in range(0, (HOURS_NEEDED + 1) * 3600 + 1, 10):
        if second:
            energy_wh += 2000 * 10 / 3600
        register = int(energy_wh) * 10 / 1000  # counts 1 Wh, decoded as 10 Wh
        moment = START + timedelta(seconds=second)
        decision = judge.observe(METER, 10, moment, 2000.0, register)
        if decision is not None:
            decisions.append(decision)
    assert decisions == [Decision(METER, 1, 10, HOURS_NEEDED)]


def test_a_clock_going_back_opens_a_new_window():
    judge = ResolutionJudge()
    judge.observe(METER, 10, START, 1000.0, 100.0)
    judge.observe(METER, 10, START - timedelta(minutes=5), 1000.0, 100.0)
    assert judge._evidence[METER].register_time == START - timedelta(minutes=5)
