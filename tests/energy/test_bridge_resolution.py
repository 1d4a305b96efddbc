"""Kamstrup's register resolution in the bridge: evidence, one log line, persistence, override."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.bridge import Bridge, PrintPublisher
from han2mqtt.config import Settings
from han2mqtt.daemon import _StateKeeper
from han2mqtt.energy.resolution import HOURS_NEEDED
from tests.energy.kamstrup import METER_ID
from tests.energy.test_bridge_energy import _content
from tests.test_bridge import Clock, Printed

OSLO = ZoneInfo("Europe/Oslo")
TOTAL = f"han2mqtt/{METER_ID}/active_power_import_total"
POWER = 3600  # W: 3,600 Wh an hour


def _bridge(**meter: Any) -> tuple[Bridge, Printed]:
    printed = Printed()
    settings = Settings.model_validate({"meter": {"timezone": "Europe/Oslo", **meter}})
    return Bridge(settings, PrintPublisher("han2mqtt", printed.write), Clock()), printed


def _feed(bridge: Bridge, moment: datetime, registers: tuple[int, int] | None = None) -> None:
    received = moment.replace(tzinfo=OSLO).astimezone(UTC) + timedelta(seconds=1)
    bridge.handle_content(_content(moment, POWER, registers), received)


def _hours(bridge: Bridge, count: int, unit_wh: int, first: int = 0) -> list[int]:
    """``count`` hours of a meter drawing 3,600 W whose register counts ``unit_wh`` Wh."""
    sent = []
    for hour in range(first, first + count):
        start = datetime(2024, 5, 6, hour)  # noqa: DTZ001 - the meter's naive local clock
        register = 1_000_000 + hour * POWER // unit_wh
        _feed(bridge, start)
        _feed(bridge, start + timedelta(seconds=5), (register, 0))
        sent.append(register)
        for step in range(1, 360):
            _feed(bridge, start + timedelta(seconds=10 * step))
    return sent


def _last_total(printed: Printed) -> float:
    return float([payload for topic, payload, _ in printed.messages() if topic == TOTAL][-1])


def test_a_meter_counting_watt_hours_is_found_out_and_rescaled(caplog: pytest.LogCaptureFixture):
    bridge, printed = _bridge()
    caplog.set_level(logging.INFO)
    registers = _hours(bridge, HOURS_NEEDED, unit_wh=1)
    assert _last_total(printed) == registers[-1] * 10 / 1000  # the usual 10 Wh until decided
    registers += _hours(bridge, 2, unit_wh=1, first=HOURS_NEEDED)
    assert _last_total(printed) == registers[-1] / 1000
    said = [r.getMessage() for r in caplog.records if "counts energy in" in r.getMessage()]
    assert len(said) == 1
    assert "1 Wh" in said[0]
    assert json.loads(bridge.resolution_state())["decided"] == {METER_ID: 1}
    assert bridge.guard_counts["backwards"] == 0  # the energy stage started afresh


def test_a_meter_counting_ten_watt_hours_keeps_its_values():
    bridge, printed = _bridge()
    registers = _hours(bridge, HOURS_NEEDED + 2, unit_wh=10)
    assert _last_total(printed) == registers[-1] * 10 / 1000
    assert bridge.resolution.decided == {METER_ID: 10}


def test_a_decision_survives_a_restart():
    first, _ = _bridge()
    _hours(first, HOURS_NEEDED + 1, unit_wh=1)
    second, printed = _bridge()
    second.restore_resolution(first.resolution_state())
    (register,) = _hours(second, 1, unit_wh=1, first=10)
    assert _last_total(printed) == register / 1000


@pytest.mark.parametrize("data", [b"", b"[]", b'{"version": 2, "decided": {}}', b"\xff"])
def test_a_damaged_resolution_file_is_an_error(data: bytes):
    bridge, _ = _bridge()
    with pytest.raises(ValueError, match=r"\S"):
        bridge.restore_resolution(data)


def test_the_configured_resolution_applies_from_the_first_frame():
    bridge, printed = _bridge(energy_resolution=1)
    (register,) = _hours(bridge, 1, unit_wh=10)
    assert _last_total(printed) == register / 1000
    assert bridge.resolution.decided == {}


def test_the_state_keeper_writes_and_reads_the_decisions(tmp_path: Path):
    first, _ = _bridge()
    _hours(first, HOURS_NEEDED + 1, unit_wh=1)
    keeper = _StateKeeper(first, tmp_path / "state.json")
    keeper.save()
    assert json.loads((tmp_path / "energy-resolution.json").read_bytes())["decided"] == {
        METER_ID: 1
    }
    second, _ = _bridge()
    _StateKeeper(second, tmp_path / "state.json").load()
    assert second.resolution.decided == {METER_ID: 1}
    (tmp_path / "energy-resolution.json").write_bytes(b"not json")
    third, _ = _bridge()
    _StateKeeper(third, tmp_path / "state.json").load()  # moved aside, never fatal
    assert third.resolution.decided == {}
    assert not (tmp_path / "energy-resolution.json").exists()
