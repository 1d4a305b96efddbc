"""Topic layout and discovery payloads (pure functions) on real decoded frames."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from han2mqtt import AutoDecoder
from han2mqtt.config import HomeAssistantSettings, MqttSettings, PublishSettings, Settings
from han2mqtt.model import MeterReading
from han2mqtt.mqtt.discovery import discovery_messages, is_ours, removal_messages
from han2mqtt.mqtt.topics import (
    field_topic,
    format_value,
    messages_for_reading,
    obis_topic,
    state_topic,
    topic_segment,
)
from tests import corpus

ENTITY_ID = re.compile(r"^sensor\.[a-z0-9_]+$")
WHEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _reading(item_id: str) -> MeterReading:
    return AutoDecoder().decode(corpus.content(corpus.by_id(item_id)) or b"")


def test_every_topic_family_per_conventions():
    reading = _reading("no-aidon-doc-1p-list2")
    messages = {
        m.topic: m
        for m in messages_for_reading(
            reading, "7359992890941742", WHEN, MqttSettings(), PublishSettings()
        )
    }
    state = json.loads(messages["han2mqtt/7359992890941742/state"].payload)
    assert state["active_power_import"] == 1362
    assert state["current_l1"] == 9.3
    assert state["timestamp"] == "2025-01-02T03:04:05+00:00"
    assert messages["han2mqtt/7359992890941742/active_power_import"].payload == "1362"
    assert messages["han2mqtt/7359992890941742/voltage_l1"].payload == "250.0"
    assert messages["han2mqtt/7359992890941742/obis/1-0:1.7.0.255"].payload == "1362"
    assert not any(m.retain for m in messages.values())


def test_tariff_peaks_is_a_list_in_the_state_and_json_text_on_its_topic():
    peaks = '[{"start":"2025-01-02T03:00:00+01:00","kwh":4.2}]'
    messages = {
        m.topic: m.payload
        for m in messages_for_reading(
            _reading("no-aidon-doc-1p-list2"),
            "m",
            WHEN,
            MqttSettings(),
            PublishSettings(),
            derived={"tariff_peaks": peaks, "power_net": 1362},
        )
    }
    state = json.loads(messages["han2mqtt/m/state"])
    assert state["tariff_peaks"] == [{"start": "2025-01-02T03:00:00+01:00", "kwh": 4.2}]
    assert state["power_net"] == 1362
    assert messages["han2mqtt/m/tariff_peaks"] == peaks


def test_families_can_be_switched_off_and_retained():
    reading = _reading("no-aidon-doc-1p-list2")
    mqtt = MqttSettings.model_validate({"retain": {"state": True}})
    messages = messages_for_reading(
        reading, "m", WHEN, mqtt, PublishSettings(fields=False, obis=False)
    )
    assert [(m.topic, m.retain) for m in messages] == [("han2mqtt/m/state", True)]


def test_topic_segments_and_values_are_safe():
    assert topic_segment("a/b+c#d e\x00") == "a_b_c_d_e_"
    assert format_value(9.3) == "9.3"
    assert format_value(2.076) == "2.076"
    assert format_value(163777.25) == "163777.25"


def test_device_discovery_for_the_energy_dashboard():
    reading = _reading("no-aidon-6534-list3")
    (message,) = discovery_messages(
        "7359992891237028", reading, MqttSettings(), HomeAssistantSettings()
    )
    assert message.topic == "homeassistant/device/han2mqtt_7359992891237028/config"
    assert message.retain
    payload = json.loads(message.payload)
    assert payload["dev"]["mf"] == "Aidon"
    assert payload["dev"]["mdl"] == "6534"
    assert payload["dev"]["sn"] == "7359992891237028"
    assert payload["o"]["name"] == "han2mqtt"
    assert payload["avty"] == [
        {"t": "han2mqtt/bridge/state"},
        {"t": "han2mqtt/7359992891237028/availability"},
    ]
    assert payload["avty_mode"] == "all"
    components = payload["cmps"].values()
    unique_ids = [c["uniq_id"] for c in components]
    assert len(unique_ids) == len(set(unique_ids))
    assert all(ENTITY_ID.match(c["default_entity_id"]) for c in components)
    assert not any("object_id" in c or "obj_id" in c for c in components)
    by_entity = {c["default_entity_id"]: c for c in components}
    energy = by_entity["sensor.han2mqtt_7359992891237028_active_power_import_total"]
    assert (energy["dev_cla"], energy["stat_cla"], energy["unit_of_meas"]) == (
        "energy",
        "total_increasing",
        "kWh",
    )
    assert energy["stat_t"] == "han2mqtt/7359992891237028/active_power_import_total"
    power = by_entity["sensor.han2mqtt_7359992891237028_active_power_import"]
    assert (power["dev_cla"], power["stat_cla"], power["unit_of_meas"]) == (
        "power",
        "measurement",
        "W",
    )
    voltage = by_entity["sensor.han2mqtt_7359992891237028_voltage_l1"]
    assert (voltage["dev_cla"], voltage["unit_of_meas"]) == ("voltage", "V")
    current = by_entity["sensor.han2mqtt_7359992891237028_current_l2"]
    assert (current["dev_cla"], current["unit_of_meas"]) == ("current", "A")
    meter_id = by_entity["sensor.han2mqtt_7359992891237028_meter_id"]
    assert meter_id["ent_cat"] == "diagnostic"


def test_unique_ids_come_from_meter_and_obis_code_and_never_change():
    first = json.loads(
        discovery_messages(
            "m1", _reading("no-aidon-6534-list2"), MqttSettings(), HomeAssistantSettings()
        )[0].payload
    )
    later = json.loads(
        discovery_messages(
            "m1", _reading("no-aidon-6534-list3"), MqttSettings(), HomeAssistantSettings()
        )[0].payload
    )
    for key, component in first["cmps"].items():
        assert later["cmps"][key]["uniq_id"] == component["uniq_id"]
    assert first["cmps"]["1_0_1_7_0_255"]["uniq_id"] == "han2mqtt_m1_1_0_1_7_0_255"


def test_unknown_obis_objects_get_sensors_on_their_obis_topic():
    reading = _reading("dk-kamstrup-ct-plain-gh216")
    payload = json.loads(
        discovery_messages("ct", reading, MqttSettings(), HomeAssistantSettings())[0].payload
    )
    unknown = payload["cmps"]["1_1_0_0_1_255"]
    assert unknown["stat_t"] == "han2mqtt/ct/obis/1-1:0.0.1.255"
    assert ENTITY_ID.match(unknown["default_entity_id"])


def test_entity_mode_for_older_consumers():
    reading = _reading("no-aidon-doc-1p-list2")
    messages = discovery_messages(
        "m", reading, MqttSettings(), HomeAssistantSettings(mode="entity")
    )
    topics = [m.topic for m in messages]
    assert "homeassistant/sensor/han2mqtt_m/active_power_import/config" in topics
    payload = json.loads(messages[0].payload)
    assert "p" not in payload
    assert payload["dev"]["ids"] == ["han2mqtt_m"]


def test_purge_recognises_only_our_discovery_topics():
    ha = HomeAssistantSettings()
    assert is_ours("homeassistant/device/han2mqtt_123/config", ha)
    assert is_ours("homeassistant/sensor/han2mqtt_123/voltage_l1/config", ha)
    assert not is_ours("homeassistant/sensor/zigbee2mqtt_lamp/light/config", ha)
    assert not is_ours("homeassistant/status", ha)
    assert [(m.topic, m.payload, m.retain) for m in removal_messages(["a"])] == [("a", "", True)]


def test_settings_defaults_are_consistent():
    assert Settings().homeassistant.discovery


def test_reading_topics_are_the_topic_functions_also_for_unsafe_meter_ids():
    reading = _reading("no-aidon-doc-1p-list2")
    meter = "id/with+odd#chars"
    topics = {
        m.topic
        for m in messages_for_reading(reading, meter, WHEN, MqttSettings(), PublishSettings())
    }
    expected = {state_topic("han2mqtt", meter)}
    expected |= {field_topic("han2mqtt", meter, name) for name in reading.fields}
    expected |= {obis_topic("han2mqtt", meter, code) for code in reading.obis}
    assert topics == expected
    assert all("/id_with_odd_chars/" in topic for topic in topics)
