"""The counter guard for the totals of meters behind a P1 port."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from han2mqtt.energy import EnergyEngine, EnergyParameters, Verdict
from han2mqtt.model import FieldValue, MeterReading

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _reading(field: str, value: float, when: datetime) -> MeterReading:
    code = "0-1:24.2.1.255"
    fields: dict[str, FieldValue] = {"meter_id": "G1", field: value}
    fields["meter_datetime"] = when.isoformat()
    return MeterReading(fields, {code: value}, {code: "m³"}, {field: code}, "p1-mbus")


@pytest.mark.parametrize(
    ("rise", "verdict"),
    [(5.9, None), (6.2, Verdict.TOO_FAST), (-0.5, Verdict.BACKWARDS)],
)
def test_a_gas_register_may_rise_at_most_max_gas_flow(rise: float, verdict: Verdict | None):
    engine = EnergyEngine(EnergyParameters(max_gas_flow=6.0))  # a G4 meter: 6 m³/h
    engine.feed(_reading("gas_total", 100.0, T0), T0)
    later = T0 + timedelta(hours=1)
    result = engine.feed(_reading("gas_total", 100.0 + rise, later), later)
    assert [event.verdict for event in result.events] == ([] if verdict is None else [verdict])
    assert ("gas_total" in result.reading.fields) is (verdict is None)


def test_water_has_no_rate_limit_of_ours_but_never_goes_backwards():
    engine = EnergyEngine(EnergyParameters())
    engine.feed(_reading("water_total", 10.0, T0), T0)
    minute = T0 + timedelta(minutes=1)
    assert engine.feed(_reading("water_total", 900.0, minute), minute).events == ()
    later = minute + timedelta(minutes=1)
    (event,) = engine.feed(_reading("water_total", 899.0, later), later).events
    assert event.verdict is Verdict.BACKWARDS
