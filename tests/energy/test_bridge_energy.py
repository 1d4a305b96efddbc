"""The energy stage inside the bridge: guarded registers never reach a topic, derived values do."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.bridge import Bridge, PrintPublisher, tariff_model
from han2mqtt.config import Settings, TariffSettings
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.hdlc import HdlcFrameReader
from tests.energy.kamstrup import METER_ID, kamstrup_frame
from tests.test_bridge import Clock, Printed

OSLO = ZoneInfo("Europe/Oslo")
BASE = f"han2mqtt/{METER_ID}"


def _content(moment: datetime, power: int, registers: tuple[int, int] | None = None) -> bytes:
    return HdlcFrameReader().read(kamstrup_frame(moment, power, registers))[0].payload


def _bridge(**sections: object) -> tuple[Bridge, Printed]:
    printed = Printed()
    settings = Settings.model_validate(
        {"meter": {"timezone": "Europe/Oslo", "main_fuse": 25}, **sections}
    )
    return Bridge(settings, PrintPublisher("han2mqtt", printed.write), Clock()), printed


def _feed(bridge: Bridge, moment: datetime, power: int, registers=None) -> None:
    received = moment.replace(tzinfo=OSLO).astimezone(UTC) + timedelta(seconds=1)
    bridge.handle_content(_content(moment, power, registers), received)


def _hour(bridge: Bridge, hour: int, register: int, power: int = 3600) -> None:
    """List 2 at hour:00:00, list 3 at hour:00:05, then list 2 every 10 s to the next hour."""
    start = datetime(2024, 5, 6, hour)  # noqa: DTZ001 - the meter's naive local clock
    _feed(bridge, start, power)
    _feed(bridge, start + timedelta(seconds=5), power, (register, 0))
    for step in range(1, 360):
        _feed(bridge, start + timedelta(seconds=10 * step), power)


def test_a_register_the_guard_rejects_reaches_no_topic(caplog: pytest.LogCaptureFixture):
    bridge, printed = _bridge()
    _hour(bridge, 10, 10_000)
    _hour(bridge, 11, 10_360)  # 3.6 kWh in the hour: fine
    printed.clear()
    caplog.set_level(logging.WARNING)
    _feed(bridge, datetime(2024, 5, 6, 12, 0, 5), 3600, (10_000, 0))  # noqa: DTZ001 - backwards
    _feed(bridge, datetime(2024, 5, 6, 12, 0, 15), 3600, (9_000, 0))  # noqa: DTZ001 - again
    topics = printed.topics()
    assert f"{BASE}/active_power_import_total" not in topics
    assert f"{BASE}/obis/1-1:1.8.0.255" not in topics
    assert f"{BASE}/active_power_export_total" in topics  # the good register still goes out
    states = [json.loads(p) for t, p, _ in printed.messages() if t == f"{BASE}/state"]
    assert all("active_power_import_total" not in state for state in states)
    assert states[-1]["energy_import"] >= 107.2
    info = json.loads(bridge.info_message().payload)
    assert info["counter_guard"] == {
        "backwards": 2,
        "too_fast": 0,
        "exchanges": 0,
        "repeated": 0,
        "clock_jumps": 0,
    }
    warnings = [r.getMessage() for r in caplog.records if "went backwards" in r.getMessage()]
    assert len(warnings) == 1
    # The merged state re-sent after a reconnect holds the last good register only.
    printed.clear()
    bridge.resend_all()
    resent = {t: p for t, p, _ in printed.messages()}
    assert resent[f"{BASE}/active_power_import_total"] == "103.6"
    assert f"{BASE}/energy_import" in resent


def test_derived_values_in_the_state_json_field_topics_and_listeners():
    bridge, printed = _bridge()
    heard: list[dict[str, FieldValue]] = []

    def listener(meter: str, reading: MeterReading, derived: dict[str, FieldValue], _s: object):
        assert meter == METER_ID
        assert "active_power_import" in reading.fields
        heard.append(derived)

    bridge.listeners.append(listener)
    _hour(bridge, 10, 10_000)
    _feed(bridge, datetime(2024, 5, 6, 11, 0, 5), 3600, (10_360, 0))  # noqa: DTZ001
    messages = {t: p for t, p, _ in printed.messages()}
    state = json.loads(messages[f"{BASE}/state"])
    assert state["meter_time"] == "2024-05-06T11:00:05+02:00"
    assert state["energy_import"] == 103.605  # + 5 s at 3.6 kW
    assert state["energy_import_last_hour"] == 3.6
    assert state["energy_import_last_hour_start"] == "2024-05-06T10:00:00+02:00"
    assert state["power_net"] == 3600
    assert state["phase_load_l1"] == 62.6  # 15.65 A of 25 A
    assert messages[f"{BASE}/energy_import_last_hour"] == "3.6"
    assert messages[f"{BASE}/energy_import_hour"] == "0.005"  # 5 s at 3.6 kW since 11:00
    assert heard[-1]["energy_import_last_hour"] == 3.6
    assert "energy_import_last_hour" not in heard[-2]


def test_discovery_announces_the_derived_sensors():
    bridge, printed = _bridge(tariff={"preset": "no"})
    _hour(bridge, 10, 10_000)
    _feed(bridge, datetime(2024, 5, 6, 11, 0, 5), 3600, (10_360, 0))  # noqa: DTZ001
    discovery = [p for t, p, _ in printed.messages() if t.startswith("homeassistant/device/")]
    components = json.loads(discovery[-1])["cmps"]
    energy = components["energy_import"]
    assert (energy["dev_cla"], energy["stat_cla"], energy["unit_of_meas"]) == (
        "energy",
        "total_increasing",
        "kWh",
    )
    assert energy["stat_t"] == f"{BASE}/energy_import"
    assert energy["uniq_id"] == f"han2mqtt_{METER_ID}_energy_import"
    assert energy["default_entity_id"] == f"sensor.han2mqtt_{METER_ID}_energy_import"
    assert components["energy_import_last_hour"]["dev_cla"] == "energy"
    assert "stat_cla" not in components["energy_import_last_hour"]
    assert components["energy_import_last_hour_start"]["dev_cla"] == "timestamp"
    assert components["tariff_average"]["unit_of_meas"] == "kW"
    assert components["tariff_headroom_power"]["dev_cla"] == "power"
    assert components["tariff_peaks"]["json_attr_t"] == f"{BASE}/tariff_peaks"
    reactive = components["1_1_3_8_0_255"]
    assert "dev_cla" not in reactive
    assert (reactive["stat_cla"], reactive["unit_of_meas"]) == ("total_increasing", "kvarh")


def test_energy_state_round_trip_through_the_bridge():
    bridge, _ = _bridge()
    _hour(bridge, 10, 10_000)
    saved = bridge.energy_state()
    restarted, printed = _bridge()
    restarted.restore_energy(saved)
    _feed(restarted, datetime(2024, 5, 6, 11, 0, 5), 3600, (10_360, 0))  # noqa: DTZ001
    state = json.loads(next(p for t, p, _ in printed.messages() if t == f"{BASE}/state"))
    assert state["energy_import_last_hour"] == 3.6


def test_tariff_presets_and_overrides():
    model = tariff_model(TariffSettings(preset="no", peaks=2, hours=["06-22"]))
    assert model is not None
    assert (model.window, model.peaks, model.distinct_days) == (60, 2, True)
    assert model.tiers[:3] == (2, 5, 10)
    assert model.hours == ((6, 22),)
    flanders = tariff_model(TariffSettings(preset="be", weekdays=["mon", "sun"]))
    assert flanders is not None
    assert (flanders.window, flanders.peaks, flanders.weekdays) == (15, 1, frozenset({0, 6}))
    assert tariff_model(TariffSettings()) is None


def test_derived_values_go_to_their_field_topics_when_they_change():
    bridge, printed = _bridge(tariff={"preset": "no"})
    _hour(bridge, 10, 10_000)
    printed.clear()
    _feed(bridge, datetime(2024, 5, 6, 11, 0, 5), 3600, (10_360, 0))  # noqa: DTZ001
    _feed(bridge, datetime(2024, 5, 6, 11, 0, 15), 3600)  # noqa: DTZ001
    second = printed.messages()[-40:]
    topics = [t for t, _, _ in printed.messages()]
    assert topics.count(f"{BASE}/tariff_tier") == 1  # the same tier: published once
    assert topics.count(f"{BASE}/energy_import_hour") == 2  # it grows: every frame
    states = [json.loads(p) for t, p, _ in second if t == f"{BASE}/state"]
    assert states[-1]["tariff_tier"] == "2-5"  # the state JSON carries every value
    printed.clear()
    bridge.resend_all()
    assert f"{BASE}/tariff_tier" in printed.topics()  # and a resend sends them all again


def test_a_repeated_list_is_counted_and_logged_once(caplog: pytest.LogCaptureFixture):
    bridge, _ = _bridge()
    caplog.set_level(logging.WARNING)
    _hour(bridge, 10, 10_000)
    for second in (5, 15):  # the 10:00 list, sent again twice during the 11:00 hour
        received = datetime(2024, 5, 6, 9, 0, second, tzinfo=UTC)
        bridge.handle_content(
            _content(datetime(2024, 5, 6, 10, 0, 5), 3600, (10_000, 0)),  # noqa: DTZ001
            received,
        )
    info = json.loads(bridge.info_message().payload)
    assert info["counter_guard"]["repeated"] == 2
    warnings = [r.getMessage() for r in caplog.records if "repeated its previous" in r.getMessage()]
    assert len(warnings) == 1


def test_a_meter_clock_that_jumps_is_counted_and_logged_once(caplog: pytest.LogCaptureFixture):
    bridge, _ = _bridge()
    caplog.set_level(logging.WARNING)
    _hour(bridge, 10, 10_000)
    _hour(bridge, 11, 10_360)
    for year in (2000, 2000):  # reset to 2000 (twice: once a jump, then the same clock)
        moment = datetime(year, 1, 1, 0, 0, 5)  # noqa: DTZ001 - the meter's naive clock
        bridge.handle_content(_content(moment, 3600, (10_400, 0)), datetime.now(UTC))
    _hour(bridge, 12, 10_720)  # right again
    info = json.loads(bridge.info_message().payload)
    assert info["counter_guard"]["clock_jumps"] == 2
    warnings = [r.getMessage() for r in caplog.records if "clock jumped" in r.getMessage()]
    assert len(warnings) == 1


def test_closed_intervals_reach_the_interval_listeners():
    bridge, _ = _bridge()
    heard: list[object] = []
    bridge.interval_listeners.append(heard.extend)
    for hour, register in ((10, 10_000), (11, 10_360), (12, 10_720)):
        _hour(bridge, hour, register)
    _feed(bridge, datetime(2024, 5, 6, 13, 0, 5), 3600, (11_080, 0))  # noqa: DTZ001
    hours = [i for i in heard if getattr(i, "minutes", 0) == 60]
    assert [getattr(h, "import_kwh", None) for h in hours] == pytest.approx([3.6, 3.6, 3.6])
    assert all(getattr(h, "meter", None) == METER_ID for h in hours)
    assert not any(getattr(h, "estimated", True) for h in hours)


def test_no_ledger_without_history():
    bridge, _ = _bridge(history={"enabled": False})
    heard: list[object] = []
    bridge.interval_listeners.append(heard.extend)
    for hour, register in ((10, 10_000), (11, 10_360)):
        _hour(bridge, hour, register)
    _feed(bridge, datetime(2024, 5, 6, 12, 0, 5), 3600, (10_720, 0))  # noqa: DTZ001
    assert heard == []
