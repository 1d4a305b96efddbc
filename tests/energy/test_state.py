"""What survives a restart: the state file's round trip, atomic writes, and a corrupt file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from han2mqtt.energy import (
    PRESETS,
    EnergyEngine,
    EnergyParameters,
    decode_state,
    encode_state,
)
from han2mqtt.errors import StateError
from han2mqtt.model import FieldValue
from han2mqtt.statefile import move_aside, read_state, state_directory, write_state
from tests.energy.helpers import OSLO, engine, feed, local, reading

STEP = timedelta(seconds=10)


def _run(target: EnergyEngine, start: datetime, end: datetime, power: int) -> dict[str, FieldValue]:
    moment, values = start, {}
    while moment < end:
        moment += STEP
        values = feed(target, reading(moment, power=power)).values
    return values


def test_restart_in_the_middle_of_an_hour_through_the_state_file(tmp_path):
    parameters = EnergyParameters(zone=OSLO, tariff=PRESETS["no"])
    first = engine(PRESETS["no"])
    feed(first, reading(local(2024, 3, 4, 18), power=3000, register=90.0))
    _run(first, local(2024, 3, 4, 18), local(2024, 3, 4, 19), 3000)
    feed(first, reading(local(2024, 3, 4, 19), power=1000, register=93.0))  # a 3 kWh peak
    feed(first, reading(local(2024, 3, 5, 10), power=2000, register=100.0))
    before = _run(first, local(2024, 3, 5, 10), local(2024, 3, 5, 10, 30), 2000)
    assert before["energy_import"] == 101.0
    assert before["energy_import_hour"] == 1.0
    path = tmp_path / "energy.json"
    write_state(path, encode_state({"meter": first}))
    data = read_state(path)
    assert data is not None
    second = decode_state(data, parameters)["meter"]
    # Down for five minutes (10:30-10:35); the meter kept counting at 2 kW.
    result = feed(second, reading(local(2024, 3, 5, 10, 35), power=2000))
    # The integration point came from the file: the 2 kW it saw is held over the five minutes.
    assert result.values["energy_import"] == 101.167
    assert result.values["energy_import_hour"] == 1.167
    assert json.loads(str(result.values["tariff_peaks"]))[0]["kwh"] == 3.0  # the month's peak
    _run(second, local(2024, 3, 5, 10, 35), local(2024, 3, 5, 11), 2000)
    result = feed(second, reading(local(2024, 3, 5, 11), power=2000, register=102.0))
    # The hour is exact (its opening register came from the file): nothing lost, nothing twice.
    assert result.values["energy_import_last_hour"] == 2.0
    assert result.values["energy_import"] == 102.0
    # No frame came between 19:00 yesterday (93 kWh) and 10:00: the day counts from there.
    assert result.values["energy_import_today"] == 9.0
    peaks = json.loads(str(result.values["tariff_peaks"]))
    assert [peak["kwh"] for peak in peaks] == [3.0, 2.0]


def test_a_restart_at_half_past_continues_the_estimate():
    """Stopped at 14:30 and started again: the half hour before is not lost (was 1.33 kWh)."""
    parameters = EnergyParameters(zone=OSLO)
    first = engine()
    feed(first, reading(local(2026, 10, 20, 14), power=2660, register=200.0))
    _run(first, local(2026, 10, 20, 14), local(2026, 10, 20, 14, 30), 2660)
    second = decode_state(encode_state({"m": first}), parameters)["m"]
    before = _run(second, local(2026, 10, 20, 14, 30), local(2026, 10, 20, 14, 59, 50), 2660)
    assert before["energy_import"] == pytest.approx(202.66, abs=0.01)
    assert before["energy_import_hour"] == pytest.approx(2.66, abs=0.01)
    result = feed(second, reading(local(2026, 10, 20, 15), power=2660, register=202.66))
    assert result.values["energy_import"] == 202.66
    assert result.values["energy_import_last_hour"] == 2.66


def test_the_integration_point_round_trips():
    first = engine()
    feed(first, reading(local(2026, 10, 20, 14), power=1800, register=50.0))
    _run(first, local(2026, 10, 20, 14), local(2026, 10, 20, 14, 20), 1800)
    saved = json.loads(encode_state({"m": first}))["meters"]["m"]["counters"]["import"]["point"]
    assert saved == ["2026-10-20T12:20:00+00:00", pytest.approx(0.6), 1800.0]
    second = decode_state(encode_state({"m": first}), EnergyParameters(zone=OSLO))["m"]
    assert second.counters["import"].point() == first.counters["import"].point()


def test_restart_across_an_hour_boundary_neither_loses_nor_double_counts():
    parameters = EnergyParameters(zone=OSLO)
    first = engine()
    feed(first, reading(local(2024, 3, 5, 0), power=2000, register=100.0))
    _run(first, local(2024, 3, 5, 0), local(2024, 3, 5, 10, 50), 2000)
    second = decode_state(encode_state({"m": first}), parameters)["m"]
    # Down 10:50-11:10: the 11:00 register was missed; the next one comes at 12:00.
    _run(second, local(2024, 3, 5, 11, 10) - STEP, local(2024, 3, 5, 12), 2000)
    result = feed(second, reading(local(2024, 3, 5, 12), power=2000, register=124.0))
    assert result.values["energy_import"] == 124.0
    assert result.values["energy_import_today"] == 24.0  # 12 hours at 2 kW, from the registers


def test_a_corrupt_state_is_a_state_error(tmp_path):
    parameters = EnergyParameters(zone=OSLO)
    for damaged in (
        b"",
        b"{not json",
        b"[]",
        b'{"version": 99, "meters": {}}',
        b'{"version": 1, "meters": {"m": {"guards": []}}}',
        b'{"version": 1, "meters": {"m": {"guards": {"x": [1, "2024-01-01T00:00:00"]}}}}',
        encode_state({"m": engine()}).replace(b'"live": null', b'"live": "12"'),
        b"\xff\xfe",
    ):
        with pytest.raises(StateError):
            decode_state(damaged, parameters)
    path = tmp_path / "energy.json"
    path.write_bytes(b"{not json")
    moved = move_aside(path)
    assert moved is not None
    assert moved.read_bytes() == b"{not json"
    assert not path.exists()
    assert read_state(path) is None


def test_state_file_writes_replace_atomically(tmp_path):
    path = tmp_path / "deeper" / "energy.json"
    write_state(path, b"one")
    write_state(path, b"two")
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["energy.json"]


def test_state_directory_default(tmp_path):
    assert state_directory(tmp_path, {}) == tmp_path
    systemd = {"STATE_DIRECTORY": "/var/lib/han2mqtt:/x"}
    assert str(state_directory(None, systemd)) == "/var/lib/han2mqtt"
    assert str(state_directory(None, {})) == "state"


def test_the_demo_keeps_no_state_file(tmp_path, monkeypatch):
    import asyncio  # noqa: PLC0415

    from han2mqtt.commands import run_demo  # noqa: PLC0415

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert asyncio.run(run_demo(None, interval=0, hours=1.5)) == 0
    assert not (tmp_path / "state").exists()


def test_a_state_file_from_before_the_ledger_still_loads():
    first = engine(ledger=True)
    feed(first, reading(local(2026, 10, 20, 14), power=1800, register=50.0))
    document = json.loads(encode_state({"m": first}))
    saved = document["meters"]["m"]
    del saved["ledger"]
    for counter in saved["counters"].values():
        del counter["point"]
    parameters = EnergyParameters(zone=OSLO, ledger=True)
    second = decode_state(json.dumps(document).encode(), parameters)["m"]
    assert second.ledger is not None
    assert second.ledger.booked is None
    assert second.counters["import"].register is not None


def test_a_restart_in_the_repeated_autumn_hour_keeps_the_clock():
    """Restarted at 02:20 the second time (naive meter clock): still the second 02:20."""
    first = engine()
    moment = datetime(2026, 10, 25, 1, 50, tzinfo=OSLO).astimezone(UTC)
    end = datetime(2026, 10, 25, 2, 20, fold=1, tzinfo=OSLO).astimezone(UTC)
    while moment <= end:
        naive = moment.astimezone(OSLO).replace(tzinfo=None)
        first.feed(reading(naive, power=1000), moment + timedelta(seconds=2))
        moment += STEP
    second = decode_state(encode_state({"m": first}), EnergyParameters(zone=OSLO))["m"]
    assert second.clock_offset == first.clock_offset == timedelta(seconds=-2)
    naive = moment.astimezone(OSLO).replace(tzinfo=None)
    result = second.feed(reading(naive, power=1000), moment + timedelta(seconds=2))
    assert result.values["meter_time"] == "2026-10-25T02:20:10+01:00"


def test_a_file_moved_aside_takes_its_companions_along(tmp_path):
    path = tmp_path / "history.sqlite"
    for name, content in (("history.sqlite", b"db"), ("history.sqlite-wal", b"wal")):
        (tmp_path / name).write_bytes(content)
    moved = move_aside(path, companions=("-wal", "-shm"))  # no -shm: it is skipped, not an error
    assert moved is not None
    assert moved.read_bytes() == b"db"
    assert moved.with_name(moved.name + "-wal").read_bytes() == b"wal"
    assert sorted(p.name for p in tmp_path.iterdir()) == [moved.name, moved.name + "-wal"]
