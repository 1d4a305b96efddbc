"""TIC frames to readings: the contract's names, kWh, VA never as W, only certain status bits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from han2mqtt import AutoDecoder
from han2mqtt.config import HomeAssistantSettings, MqttSettings
from han2mqtt.energy import EnergyEngine, EnergyParameters
from han2mqtt.errors import LayoutError
from han2mqtt.meters.tic import decode_tic_frame, status_fields
from han2mqtt.model import FieldValue
from han2mqtt.mqtt.discovery import discovery_messages, sensor_class
from han2mqtt.protocol.tic import frames_from_text, parse_frame
from tests import tic

PARIS = ZoneInfo("Europe/Paris")
ACTIVE = ("active_power_import", "active_power_export")


def _reading(text: str) -> dict[str, FieldValue]:
    return decode_tic_frame(parse_frame(frames_from_text(text)[0])).fields


def _standard_with_id() -> str:
    """esphome/issues#2060's frame with an ADSC group in place of the masked one (test only)."""
    lines = tic.text(tic.STANDARD).splitlines()
    return "\n".join([tic.group("ADSC", "021728123456", standard=True), *lines[1:]])


def test_historique_hc_hp_as_the_source_states():
    fields = _reading(tic.text(tic.HISTORIQUE))
    assert fields == {
        "meter_id": "111111111111",
        "active_power_import_total_t1": 52890.47,  # HCHC 052890470 Wh
        "active_power_import_total_t2": 49126.843,  # HCHP 049126843 Wh
        "current_l1": 8,
        "apparent_power_import": 1890,  # PAPP, VA
        "current_tariff": "HP",
    }


def test_a_capture_that_starts_inside_a_frame():
    frames = [parse_frame(f) for f in frames_from_text(tic.text(tic.HISTORIQUE_CUT))]
    with pytest.raises(LayoutError, match="without a meter id"):
        decode_tic_frame(frames[0])  # PTEC … MOTDETAT: its ADCO was before the capture
    fields = decode_tic_frame(frames[1]).fields
    assert fields["meter_id"] == "021528603314"  # text, leading zero kept
    assert fields["active_power_import_total_t1"] == 723.392
    assert fields["active_power_import_total_t2"] == 1742.238
    assert "apparent_power_import" not in fields  # PAPP was not in this frame: absent, not 0


def test_standard_three_phase_values_as_the_source_states():
    reading = decode_tic_frame(parse_frame(frames_from_text(_standard_with_id())[0]))
    fields = reading.fields
    assert fields["meter_id"] == "021728123456"
    assert fields["active_power_import_total"] == 28138.222
    assert fields["active_power_import_total_t1"] == 28138.222
    assert fields["active_power_import_total_t2"] == 0
    assert fields["active_power_import_total_t10"] == 0
    assert (fields["current_l1"], fields["current_l2"], fields["current_l3"]) == (2, 2, 2)
    assert (fields["voltage_l1"], fields["voltage_l2"], fields["voltage_l3"]) == (231, 231, 232)
    assert fields["apparent_power_import"] == 1407
    assert fields["meter_datetime"] == "2021-07-18T11:10:41+02:00"
    assert fields["current_tariff"] == "BASE"
    assert fields["current_tariff_index"] == 1
    assert (fields["dry_contact"], fields["breaker"]) == ("open", "closed")  # STGE 003A0001
    assert "tempo_today" not in fields  # colour bits 0: no announcement
    assert reading.obis["1-0:29.7.0.255"] == 48370  # SINSTS1 as sent, under its code only
    assert reading.units["1-0:9.7.0.255"] == "VA"


@pytest.mark.parametrize("text", [tic.text(tic.HISTORIQUE), _standard_with_id()])
def test_apparent_power_never_fills_active_power(text: str):
    reading = decode_tic_frame(parse_frame(frames_from_text(text)[0]))
    assert not set(ACTIVE) & set(reading.fields)
    code = reading.field_obis["apparent_power_import"]
    klass = sensor_class(code)
    assert (klass.device_class, klass.unit, klass.state_class) == (
        "apparent_power",
        "VA",
        "measurement",
    )
    energy = sensor_class(reading.field_obis["active_power_import_total_t1"])
    assert (energy.device_class, energy.unit) == ("energy", "kWh")


@pytest.mark.parametrize(
    ("stge", "expected"),
    [
        # Tasmota issue NicolasBernaerts/tasmota#24: LTARF "HP BLANC" in the same frame.
        ("423ACD01", {"dry_contact": "open", "breaker": "closed", "tempo_today": "white"}),
        ("0F2A5400", {"dry_contact": "closed", "breaker": "closed", "tempo_today": "red",
                      "tempo_tomorrow": "red"}),
        ("0000000E", {"dry_contact": "closed"}),  # breaker state 7 is not in the spec: absent
        ("0000000", {}),
        ("zz000000", {}),
    ],
)  # fmt: skip
def test_status_register(stge: str, expected: dict[str, object]):
    assert status_fields(stge) == expected


def test_tempo_historique():
    text = "\n".join(
        [
            tic.group("ADCO", "031762120162", standard=False),
            *(
                tic.group(label, f"{value:09d}", standard=False)
                for label, value in zip(
                    ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"),
                    (1, 2, 3, 4, 5, 6000),
                    strict=True,
                )
            ),
            tic.group("PTEC", "HPJR", standard=False),
            tic.group("DEMAIN", "BLAN", standard=False),
        ]
    )
    fields = _reading(text)
    assert [fields[f"active_power_import_total_t{n}"] for n in range(1, 7)] == [
        0.001, 0.002, 0.003, 0.004, 0.005, 6,
    ]  # fmt: skip
    assert (fields["tempo_today"], fields["tempo_tomorrow"]) == ("red", "white")
    assert fields["current_tariff"] == "HPJR"


def test_decoder_counts_dropped_groups_and_decodes_the_rest():
    lines = tic.text(tic.HISTORIQUE).splitlines()
    lines[4] = lines[4][:-1] + "!"  # HCHP's checksum broken, as loose wiring does
    decoder = AutoDecoder()
    reading = decoder.feed(frames_from_text("\n".join(lines))[0])
    assert reading is not None
    assert "active_power_import_total_t2" not in reading.fields
    assert reading.fields["active_power_import_total_t1"] == 52890.47
    assert decoder.stats.groups_dropped == 1
    assert decoder.last_note is not None


def _hc_hp(hc: int, hp: int) -> str:
    return "\n".join(
        [
            tic.group("ADCO", "021528603314", standard=False),
            tic.group("HCHC", f"{hc:09d}", standard=False),
            tic.group("HCHP", f"{hp:09d}", standard=False),
            tic.group("PAPP", "01000", standard=False),
        ]
    )


def test_energy_stage_takes_tic_registers_as_exact():
    engine = EnergyEngine(EnergyParameters(zone=PARIS, tariff=None))
    start = datetime(2024, 3, 4, 10, 0, 1, tzinfo=UTC)
    frames = [(0, 1_000_000, 2_000_000), (1800, 1_000_000, 2_000_400), (3600, 1_000_250, 2_000_400)]
    results = [
        engine.feed(decode_tic_frame(parse_frame(frames_from_text(_hc_hp(hc, hp))[0])),
                    start + timedelta(seconds=second))
        for second, hc, hp in frames
    ]  # fmt: skip
    live = [result.values["energy_import"] for result in results]
    assert live == [3000.0, 3000.4, 3000.65]  # HCHC + HCHP in kWh, frame by frame
    assert "active_power_import" not in results[-1].reading.fields


def test_discovery_of_a_standard_linky():
    reading = decode_tic_frame(parse_frame(frames_from_text(_standard_with_id())[0]))
    assert reading.fields["active_power_import_total_distributor_t1"] == 28138.222  # EASD01
    assert reading.fields["active_power_import_total_distributor_t4"] == 0
    (message,) = discovery_messages(
        "021728123456", reading, MqttSettings(), HomeAssistantSettings()
    )
    components = json.loads(message.payload)["cmps"]
    by_name = {c["name"]: c for c in components.values()}
    tariff = by_name["Current tariff"]
    assert tariff["uniq_id"] == "han2mqtt_021728123456_current_tariff"
    assert tariff["stat_t"] == "han2mqtt/021728123456/current_tariff"
    distributor = by_name["Active power import total distributor t1"]
    assert (distributor["dev_cla"], distributor["stat_cla"], distributor["unit_of_meas"]) == (
        "energy",
        "total_increasing",
        "kWh",
    )
    assert by_name["Breaker"]["ent_cat"] == "diagnostic"
    assert by_name["Apparent power import"]["dev_cla"] == "apparent_power"
    assert not any(c.get("dev_cla") == "power" for c in components.values())
