"""What survives a restart: the state file's round trip, atomic writes, and a corrupt file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

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
    assert result.values["energy_import"] == 101.0  # held: never below what was published
    assert result.values["energy_import_hour"] == 1.0
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
