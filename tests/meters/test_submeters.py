"""M-Bus devices behind a P1 port become meters of their own, only on exact evidence."""

from __future__ import annotations

import pytest

from han2mqtt import AutoDecoder
from han2mqtt.meters.submeter import kind_of
from han2mqtt.model import MeterReading
from han2mqtt.protocol.crc import crc16_arc
from tests import corpus


def _decode(item_id: str) -> MeterReading:
    return AutoDecoder().decode(corpus.raw(corpus.by_id(item_id)))


@pytest.mark.parametrize(
    ("item_id", "expected"),
    [
        # (meter id, kind, field, value, unit, capture time) as each telegram states them
        (
            "nl-dsmr42-kaifa",
            [
                (
                    "4819243993373755377509728609491464",
                    "gas",
                    "gas_total",
                    981.443,
                    "m³",
                    "2016-11-29T20:00:00",
                )
            ],
        ),
        (
            "nl-dsmr50-iskra",  # channel 2 has a type but no equipment id: not a sub-meter
            [("2222ABCD123456789", "gas", "gas_total", 0.107, "m³", "2017-01-02T16:10:05")],
        ),
        (
            "be-fluvius-v171",  # e-MUCS: gas as 24.2.3, ids as 96.1.1, water on channel 2
            [
                ("7FLO2119033733", "gas", "gas_total", 112.384, "m³", "2020-05-12T13:45:58"),
                ("8SAG1234567890", "water", "water_total", 872.234, "m³", "2020-05-12T13:45:58"),
            ],
        ),
        (
            "nl-dsmr-warmtelink-unpadded-crc",  # a heat meter (device type 4), in GJ
            [("621848012D2C0B0C", "heat", "heat_total", 240.86, "GJ", "2026-02-15T20:05:23")],
        ),
    ],
)
def test_sub_meters_of_real_telegrams(item_id, expected):
    reading = _decode(item_id)
    found = [
        (
            sub.meter_id,
            sub.fields["meter_type"],
            field,
            sub.fields[field],
            sub.units[sub.field_obis[field]],
            sub.fields["meter_datetime"],
        )
        for sub in reading.sub_readings
        for field in sub.field_obis
    ]
    assert found == expected
    for sub in reading.sub_readings:
        assert sub.layout == "p1-mbus"
        code = next(iter(sub.field_obis.values()))
        assert code not in reading.obis  # the electricity meter does not carry it any more
    assert not any(name.endswith("_total") and "gas" in name for name in reading.fields)


def _telegram(lines: str) -> bytes:
    body = ("/ISK5\\2M550T-1012\r\n\r\n1-0:1.7.0(00.111*kW)\r\n" + lines + "!").encode()
    return body + f"{crc16_arc(body):04X}\r\n".encode()


GAS_ID = "0-1:96.1.0(4730303339303031393336393930363139)\r\n"
GAS_READING = "0-1:24.2.1(200426223001S)(00246.138*m3)\r\n"


@pytest.mark.parametrize(
    "lines",
    [
        "0-1:24.1.0(013)\r\n" + GAS_ID + GAS_READING,  # 0x0D: heat *or* cooling
        "0-1:24.1.0(002)\r\n" + GAS_ID + GAS_READING,  # electricity: not a sub-meter kind
        "0-1:24.1.0(0x3)\r\n" + GAS_ID + GAS_READING,  # not a number
        GAS_ID + GAS_READING,  # no device type at all
        "0-1:24.1.0(003)\r\n0-1:96.1.0()\r\n" + GAS_READING,  # no equipment id
        "0-1:24.1.0(003)\r\n" + GAS_ID + "0-1:24.2.1(200426223001S)(00246.138*GJ)\r\n",  # unit
        "0-1:24.1.0(003)\r\n" + GAS_ID + "0-1:24.2.1(200426223001S)(00246.138)\r\n",  # no unit
        "0-1:24.1.0(003)\r\n" + GAS_ID + "0-1:24.2.1(00246.138*m3)\r\n",  # no capture time
        "0-1:24.1.0(003)\r\n" + GAS_ID + "0-1:24.2.1(200426223001S)(00x46.138*m3)\r\n",
        "0-1:24.1.0(007)\r\n" + GAS_ID + "0-1:24.2.1(200426223001S)(00246.138*kWh)\r\n",
    ],
)
def test_a_channel_without_exact_evidence_stays_on_the_electricity_meter(lines):
    reading = AutoDecoder().decode(_telegram(lines))
    assert reading.sub_readings == []
    assert not any(name in reading.fields for name in ("gas_total", "water_total"))
    assert reading.fields["active_power_import"] == 111


def test_a_gas_meter_and_its_hex_id():
    reading = AutoDecoder().decode(_telegram("0-1:24.1.0(003)\r\n" + GAS_ID + GAS_READING))
    (gas,) = reading.sub_readings
    assert gas.meter_id == "G0039001936990619"
    assert gas.fields == {
        "meter_id": "G0039001936990619",
        "meter_type": "gas",
        "gas_total": 246.138,
        "meter_datetime": "2020-04-26T22:30:01",
    }
    assert gas.obis["0-1:24.1.0.255"] == 3


@pytest.mark.parametrize(
    ("sent", "kind"),
    [
        ("003", "gas"),
        ("3", "gas"),
        ("007", "water"),
        ("022", "water"),
        ("004", "heat"),
        ("012", "heat"),
        ("010", "cooling"),
        ("013", None),
        ("", None),
        ("1000", None),
        ("x", None),
    ],
)
def test_device_types(sent, kind):
    found = kind_of(sent)
    assert (None if found is None else found.name) == kind
