"""DSMR 2.2/3.0 gas: the channel profile's value is on the line after its header."""

from __future__ import annotations

import pytest

from han2mqtt import AutoDecoder
from han2mqtt.model import MeterReading
from han2mqtt.protocol.crc import crc16_arc
from han2mqtt.protocol.p1 import P1TelegramReader
from tests import corpus

ISKRA_MT382 = (
    "/ISk5\\2MT382-1000\r\n"
    "\r\n"
    "0-0:96.1.1(4B384547303034303436333935353037)\r\n"
    "1-0:1.8.1(00185.000*kWh)\r\n"
    "1-0:1.8.2(00084.000*kWh)\r\n"
    "1-0:2.8.1(00013.000*kWh)\r\n"
    "1-0:2.8.2(00019.000*kWh)\r\n"
    "0-0:96.14.0(0001)\r\n"
    "1-0:1.7.0(0000.98*kW)\r\n"
    "1-0:2.7.0(0000.00*kW)\r\n"
    "0-0:17.0.0(0999.00*kW)\r\n"
    "0-0:96.3.10(1)\r\n"
    "0-0:96.13.1()\r\n"
    "0-0:96.13.0()\r\n"
    "0-1:96.1.0(3238313031353431303034303232323131)\r\n"
    "0-1:24.1.0(03)\r\n"
    "0-1:24.3.0(121030140000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n"
    "(00612.327)\r\n"
    "0-1:24.4.0(1)\r\n"
    "!\r\n"
)
"""Iskra MT382, DSMR 2.2: no CRC, the gas value on the line right after the header."""
KAMSTRUP_162 = (
    "/KMP5 KA6U001585575011\r\n"
    "\r\n"
    "0-0:96.1.1(204B413655303031353835353735303131)\r\n"
    "1-0:1.8.1(08153.408*kWh)\r\n"
    "1-0:1.8.2(06548.174*kWh)\r\n"
    "1-0:2.8.1(00000.000*kWh)\r\n"
    "1-0:2.8.2(00000.000*kWh)\r\n"
    "0-0:96.14.0(0002)\r\n"
    "1-0:1.7.0(0000.26*kW)\r\n"
    "1-0:2.7.0(0000.00*kW)\r\n"
    "0-0:17.0.0(999*A)\r\n"
    "0-0:96.3.10(1)\r\n"
    "0-0:96.13.1()\r\n"
    "0-0:96.13.0()\r\n"
    "0-1:24.1.0(3)\r\n"
    "0-1:96.1.0(3238303131303038313130343139303133)\r\n"
    "0-1:24.3.0(120517020000)(08)(60)(1)(0-1:24.2.1)(m3)\r\n"
    "(04690.918)\r\n"
    "0-1:24.4.0(1)\r\n"
    "!\r\n"
)
"""Kamstrup 162/382 with a KMP gas meter (status 08), DSMR 2.2."""
XEMEX = (
    "/XMX5XMXABCE000018914\r\n"
    "\r\n"
    "0-0:96.1.1(31333631353032382020202020202020)\r\n"
    "1-0:1.8.1(00001.457*kWh)\r\n"
    "1-0:1.8.2(00002.814*kWh)\r\n"
    "1-0:2.8.1(00000.000*kWh)\r\n"
    "1-0:2.8.2(00000.000*kWh)\r\n"
    "0-0:96.14.0(0001)\r\n"
    "1-0:1.7.0(0000.27*kW)\r\n"
    "1-0:2.7.0(0000.00*kW)\r\n"
    "0-0:17.0.0(0999.00*kW)\r\n"
    "0-0:96.3.10(1)\r\n"
    "0-0:96.13.1()\r\n"
    "0-0:96.13.0()\r\n"
    "0-2:24.1.0(3)\r\n"
    "0-2:96.1.0(3238313031353431303034303232323131)\r\n"
    "0-2:24.3.0(130104140000)(00)(60)(1)(0-2:24.2.1)(m3)\r\n"
    "\r\n"
    "(00124.477)\r\n"
    "0-2:24.4.0(1)\r\n"
    "!\r\n"
)
"""Xemex, DSMR 2.2: the gas meter on channel 2 and a blank line between header and value."""


def _with_crc(text: str) -> bytes:
    body = text.encode("ascii").rsplit(b"!", 1)[0] + b"!"
    return body + f"{crc16_arc(body):04X}\r\n".encode()


def _read(raw: bytes) -> MeterReading:
    reader = P1TelegramReader()
    (telegram,) = reader.read(raw) + reader.flush()
    assert telegram.is_valid
    return AutoDecoder().decode(telegram.raw)


@pytest.mark.parametrize(
    ("text", "channel", "value", "manufacturer"),
    [
        (ISKRA_MT382, 1, 612.327, "Iskraemeco"),
        (KAMSTRUP_162, 1, 4690.918, "Kamstrup"),
        (XEMEX, 2, 124.477, "Xemex"),
    ],
)
@pytest.mark.parametrize("crc", [False, True], ids=["no-crc", "crc"])
def test_gas_value_on_the_next_line_is_the_reading(text, channel, value, manufacturer, crc):
    raw = _with_crc(text) if crc else text.encode("ascii")
    reading = _read(raw)
    (gas,) = reading.sub_readings  # the gas meter is a meter of its own
    for code in (f"0-{channel}:24.3.0.255", f"0-{channel}:24.2.1.255"):
        assert gas.obis[code] == value, code
        assert gas.units[code] == "m³", code
    assert gas.fields["gas_total"] == value
    assert gas.fields["meter_type"] == "gas"
    assert reading.fields["meter_manufacturer"] == manufacturer
    assert gas.obis[f"0-{channel}:24.4.0.255"] == 1  # the valve line after it is intact


def test_the_corpus_dsmr30_telegram_publishes_its_gas_reading_not_the_header_count():
    reading = _read(corpus.raw(corpus.by_id("nl-dsmr30-iskra-nocrc")))
    (gas,) = reading.sub_readings
    assert gas.obis["0-1:24.3.0.255"] == 1.001
    assert gas.obis["0-1:24.2.1.255"] == 1.001
    assert gas.units["0-1:24.2.1.255"] == "m³"
    assert gas.fields["gas_total"] == 1.001
    assert gas.fields["meter_datetime"] == "2009-02-12T16:00:00"  # the profile's capture time
    assert reading.fields["active_power_import"] == 1190


_HEADER = "0-1:24.3.0(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n"


@pytest.mark.parametrize(
    "lines",
    [
        _HEADER,  # the value line is missing
        _HEADER + "(000x1.001)\r\n",  # not a number
        "0-1:24.3.0(090212160000)(00)(60)(2)(0-1:24.2.1)(m3)\r\n(00001.001)\r\n",  # 2 announced
        _HEADER + "(00001.001)(00001.002)\r\n",  # 2 sent
        "0-1:24.3.0(090212160000)(00)(60)(1)(0-2:24.2.1)(m3)\r\n(00001.001)\r\n",  # other channel
        "0-1:24.3.0(090212160000)(00)(60)(1)(m3)\r\n(00001.001)\r\n",  # header incomplete
        _HEADER + "garbage\r\n(00001.001)\r\n",  # a value line that follows no object line
    ],
)
def test_a_profile_that_is_not_exactly_the_dsmr22_layout_publishes_no_gas_value(lines):
    text = "/ISk5\\2MT382-1000\r\n\r\n1-0:1.7.0(0000.98*kW)\r\n" + lines + "!\r\n"
    reading = _read(text.encode("ascii"))
    assert "0-1:24.3.0.255" not in reading.obis
    assert "0-1:24.2.1.255" not in reading.obis
    assert "0-2:24.2.1.255" not in reading.obis
    assert reading.sub_readings == []
    assert reading.fields["active_power_import"] == 980


def test_value_lines_after_an_object_of_unknown_layout_are_not_read_as_its_value():
    text = "/ISk5\\2MT382-1000\r\n\r\n1-0:1.7.0(0000.98*kW)\r\n0-0:96.99.9(12)\r\n(34)\r\n!\r\n"
    reading = _read(text.encode("ascii"))
    assert "0-0:96.99.9.255" not in reading.obis
    assert reading.fields["active_power_import"] == 980
