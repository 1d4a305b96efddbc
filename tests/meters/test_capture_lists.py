"""Self-describing lists (Swiss VSE push lists): each value paired with its capture object."""

from __future__ import annotations

import logging

import pytest

from han2mqtt import AutoDecoder
from han2mqtt.bridge import Bridge, PrintPublisher
from han2mqtt.config import Settings
from han2mqtt.errors import LayoutError
from han2mqtt.model import MeterReading
from han2mqtt.protocol.stream import ContentReader
from tests import encoder as enc

KEY = bytes.fromhex("5AD84A5F4BBAE78A3C0DB4B0DB7E5B6D")
AUTH = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
STAMP = enc.date_time(2026, 3, 1, 12, 0, 5)

W, VAR, WH, VARH, A, V = 27, 29, 30, 32, 33, 35


def definition(class_id: int, code: str, attribute: int = 2, index: int = 0) -> bytes:
    return enc.structure(enc.u16(class_id), enc.obis(code), enc.i8(attribute), enc.u16(index))


def capture_list(columns: list[tuple[bytes, bytes]]) -> bytes:
    """structure { array of capture-object definitions, array of values }."""
    return enc.structure(
        enc.array(*(column[0] for column in columns)), enc.array(*(column[1] for column in columns))
    )


def scaled(value: bytes, scaler: int, unit: int) -> bytes:
    return enc.structure(value, enc.scaler_unit(scaler, unit))


def e450(power: int = 1523, energy: int = 12345678) -> bytes:
    """Landis+Gyr E450 (VSE list): every register value with its scaler-unit."""
    return capture_list(
        [
            (definition(8, "0-0:1.0.0.255"), enc.octets(STAMP)),
            (definition(1, "0-0:96.1.0.255"), enc.octets(b"36123456")),
            (definition(3, "1-0:1.7.0.255"), scaled(enc.u32(power), 0, W)),
            (definition(3, "1-0:2.7.0.255"), scaled(enc.u32(0), 0, W)),
            (definition(3, "1-0:1.8.0.255"), scaled(enc.u32(energy), 0, WH)),
            (definition(3, "1-0:2.8.0.255"), scaled(enc.u32(2002), 0, WH)),
            (definition(3, "1-0:32.7.0.255"), scaled(enc.u16(2312), -1, V)),
            (definition(3, "1-0:52.7.0.255"), scaled(enc.u16(2298), -1, V)),
            (definition(3, "1-0:31.7.0.255"), scaled(enc.u16(254), -2, A)),
            (definition(3, "1-0:51.7.0.255"), scaled(enc.u16(12), -2, A)),
        ]
    )


E450_EXPECTED = {
    "meter_id": "36123456",
    "meter_datetime": "2026-03-01T12:00:05",
    "active_power_import": 1523,
    "active_power_export": 0,
    "active_power_import_total": 12345.678,
    "active_power_export_total": 2.002,
    "voltage_l1": 231.2,
    "voltage_l2": 229.8,
    "current_l1": 2.54,
    "current_l2": 0.12,
}


def e360() -> bytes:
    """Landis+Gyr E360: the scaler-unit as a column of its own (register attribute 3)."""
    return capture_list(
        [
            (definition(1, "0-0:96.1.0.255"), enc.visible("LGZ1030655933512")),
            (definition(3, "1-0:1.7.0.255"), enc.u32(812)),
            (definition(3, "1-0:1.7.0.255", 3), enc.scaler_unit(1, W)),
            (definition(3, "1-0:1.8.0.255"), enc.u32(98765)),
            (definition(3, "1-0:1.8.0.255", 3), enc.scaler_unit(1, WH)),
            (definition(3, "1-0:3.8.0.255"), enc.u32(4321)),
            (definition(3, "1-0:3.8.0.255", 3), enc.scaler_unit(0, VARH)),
        ]
    )


E360_EXPECTED = {
    "meter_id": "LGZ1030655933512",
    "active_power_import": 8120,
    "active_power_import_total": 987.65,
    "reactive_power_import_total": 4.321,
}


def e570() -> bytes:
    """Landis+Gyr E570: a demand register (scaler-unit in attribute 4) and a clock."""
    return capture_list(
        [
            (definition(8, "0-0:1.0.0.255"), enc.octets(STAMP)),
            (definition(5, "1-0:1.4.0.255"), enc.u32(1200)),
            (definition(5, "1-0:1.4.0.255", 3), enc.u32(999)),  # last average: not published
            (definition(5, "1-0:1.4.0.255", 4), enc.scaler_unit(0, W)),
            (definition(4, "1-0:2.8.0.255"), scaled(enc.u32(55), 3, WH)),
            (definition(3, "1-0:4.7.0.255"), scaled(enc.i32(-250), 0, VAR)),
        ]
    )


E570_EXPECTED = {
    "meter_datetime": "2026-03-01T12:00:05",
    "active_power_export_total": 55.0,
    "reactive_power_export": -250,
}


def am550() -> bytes:
    """Iskra AM550: no scaler-units; register numbers stay raw under their codes, unscaled."""
    return capture_list(
        [
            (definition(1, "0-0:96.1.0.255"), enc.octets(b"ISK0084895126")),
            (definition(3, "1-0:1.7.0.255"), enc.u32(345)),
            (definition(3, "1-0:1.8.0.255"), enc.u32(4567890)),
            (definition(3, "1-0:32.7.0.255"), enc.u16(230)),
            (definition(3, "1-0:0.4.2.255"), enc.u16(5)),  # a register of unknown scaling
            (definition(1, "0-0:96.14.0.255"), enc.u8(2)),  # Data: exact as sent
        ]
    )


AM550_EXPECTED: dict[str, object] = {"meter_id": "ISK0084895126"}
AM550_UNSCALED = {
    "1-0:1.7.0.255": 345,
    "1-0:1.8.0.255": 4567890,
    "1-0:32.7.0.255": 230,
    "1-0:0.4.2.255": 5,
}

LISTS: dict[str, tuple[bytes, dict[str, object]]] = {
    "e450": (e450(), E450_EXPECTED),
    "e360": (e360(), E360_EXPECTED),
    "e570": (e570(), E570_EXPECTED),
    "am550": (am550(), AM550_EXPECTED),
}


def _plain(body: bytes) -> bytes:
    return enc.hdlc(enc.LLC + enc.notification(body))


def _segmented(body: bytes) -> bytes:
    return enc.hdlc_segments(enc.LLC + enc.notification(body), 40)


def _block_transfer(body: bytes) -> bytes:
    blocks = enc.general_blocks(enc.notification(body), 50)
    return b"".join(enc.hdlc(enc.LLC + block) for block in blocks)


def _encrypted(body: bytes) -> bytes:
    return enc.hdlc(enc.LLC + enc.glo_ciphering(enc.notification(body), KEY, AUTH))


def _encrypted_blocks(body: bytes) -> bytes:
    """As Landis+Gyr E450 meters send it: the ciphered APDU in general-block-transfer blocks."""
    blocks = enc.general_blocks(enc.glo_ciphering(enc.notification(body), KEY, AUTH), 60)
    return b"".join(enc.hdlc(enc.LLC + block) for block in blocks)


TRANSPORTS = {
    "plain": _plain,
    "hdlc-segmented": _segmented,
    "block-transfer": _block_transfer,
    "encrypted": _encrypted,
    "encrypted-block-transfer": _encrypted_blocks,
}


def _decode(stream: bytes, decoder: AutoDecoder | None = None) -> list[MeterReading]:
    decoder = decoder or AutoDecoder(encryption_key=KEY, authentication_key=AUTH)
    readings = [decoder.feed(content) for content in ContentReader("hdlc").read(stream)]
    return [reading for reading in readings if reading is not None]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("meter", LISTS)
def test_each_value_is_read_with_its_capture_object(meter: str, transport: str):
    body, expected = LISTS[meter]
    (reading,) = _decode(TRANSPORTS[transport](body))
    assert reading.layout == "self-describing"
    assert reading.fields.keys() - {"meter_datetime"} == expected.keys() - {"meter_datetime"}
    for name, value in expected.items():
        assert reading.fields[name] == value, name
    # Nothing comes from the definitions: no attribute index or class id read as a value.
    assert 2 not in [reading.fields.get(name) for name in expected if name != "meter_id"]


def test_what_is_not_a_whole_value_attribute_is_not_published():
    (reading,) = _decode(_plain(e570()))
    assert reading.obis["1-0:1.4.0.255"] == 1200  # attribute 2, scaled by attribute 4
    assert reading.units["1-0:1.4.0.255"] == "W"
    assert 999 not in reading.obis.values()  # attribute 3 of a demand register: last average
    (iskra,) = _decode(_plain(am550()))
    assert iskra.obis["0-0:96.14.0.255"] == 2  # Data: exact as sent, no scaler by definition


def test_registers_without_a_stated_scaling_are_raw_marked_and_feed_no_field():
    (reading,) = _decode(_plain(am550()))
    assert {code: reading.obis[code] for code in reading.unscaled} == AM550_UNSCALED
    for name in ("active_power_import", "active_power_import_total", "voltage_l1"):
        assert name not in reading.fields, name
    assert not set(AM550_UNSCALED) & set(reading.units)


def test_an_element_of_an_attribute_is_not_published_as_the_attribute():
    body = capture_list(
        [
            (definition(3, "1-0:1.7.0.255"), scaled(enc.u32(100), 0, W)),
            (definition(3, "1-0:2.7.0.255", 2, 1), scaled(enc.u32(7), 0, W)),
        ]
    )
    (reading,) = _decode(_plain(body))
    assert reading.fields["active_power_import"] == 100
    assert "1-0:2.7.0.255" not in reading.obis


def test_repeat_frames_decode_through_the_template_with_their_own_values():
    decoder = AutoDecoder()
    first = _decode(_plain(e450(power=1523, energy=12345678)), decoder)
    second = _decode(_plain(e450(power=77, energy=12345999)), decoder)
    assert decoder._templates.hits == 1
    assert first[0].fields["active_power_import"] == 1523
    assert second[0].fields["active_power_import"] == 77
    assert second[0].fields["active_power_import_total"] == 12345.999


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (  # one value fewer than capture objects
            enc.structure(
                enc.array(definition(3, "1-0:1.7.0.255"), definition(3, "1-0:2.7.0.255")),
                enc.array(enc.u32(5)),
            ),
            "2 capture objects but 1 values",
        ),
        (  # a definition of the wrong shape after a good one
            enc.structure(
                enc.array(definition(3, "1-0:1.7.0.255"), enc.structure(enc.u16(3), enc.u32(1))),
                enc.array(enc.u32(5), enc.u32(6)),
            ),
            "capture object 1",
        ),
        (  # the same value named twice
            capture_list(
                [
                    (definition(3, "1-0:1.7.0.255"), scaled(enc.u32(5), 0, W)),
                    (definition(3, "1-0:1.7.0.255"), scaled(enc.u32(6), 0, W)),
                ]
            ),
            "twice",
        ),
        (  # a scaler no meter sends
            capture_list([(definition(3, "1-0:1.7.0.255"), scaled(enc.u32(5), 127, W))]),
            "out of range",
        ),
        (  # the definitions alone, as the generic decoder used to read them: class, OBIS, 2, 0
            enc.array(definition(3, "1-0:1.7.0.255"), definition(3, "1-0:32.7.0.255")),
            "without an OBIS code",
        ),
        (  # a flat list whose numbers cannot all be paired with a code
            enc.structure(enc.obis("1-0:1.7.0.255"), enc.u32(5), enc.u32(6)),
            "without an OBIS code",
        ),
        (  # an OBIS code without its value
            enc.structure(enc.obis("1-0:1.7.0.255"), enc.u32(5), enc.obis("1-0:2.7.0.255")),
            "without a value",
        ),
    ],
    ids=[
        "fewer-values",
        "bad-definition",
        "named-twice",
        "scaler-127",
        "definitions-alone",
        "loose-number",
        "code-without-value",
    ],
)
def test_a_list_that_cannot_be_paired_exactly_is_a_layout_error(body: bytes, message: str):
    with pytest.raises(LayoutError, match=message):
        AutoDecoder().decode(enc.LLC + enc.notification(body))


def test_the_bridge_counts_and_logs_a_layout_error(caplog: pytest.LogCaptureFixture):
    lines: list[str] = []
    bridge = Bridge(Settings(), PrintPublisher("han2mqtt", lines.append), lambda: 100.0)
    body = enc.array(definition(3, "1-0:1.7.0.255"), definition(3, "1-0:32.7.0.255"))
    with caplog.at_level(logging.WARNING, logger="han2mqtt"):
        bridge.handle_content(enc.LLC + enc.notification(body))
    assert bridge.decode_errors == 1
    assert any("without an OBIS code" in record.getMessage() for record in caplog.records)
    assert not any("/obis/" in line or "active_power" in line for line in lines)


def test_a_meter_number_without_a_code_is_read_only_as_the_bodys_last_element():
    stamp = enc.octets(enc.date_time(2026, 1, 2, 3, 4, 5))
    power = (enc.obis("1-0:1.7.0.255"), enc.u32(5))
    export = (enc.obis("1-0:2.7.0.255"), enc.u32(0))
    number = enc.octets(b"181220000009")
    last = enc.structure(stamp, *power, *export, number)  # as Netz NÖ sends it
    nested = enc.structure(stamp, *power, enc.structure(*export, number))
    reading = AutoDecoder().decode(enc.LLC + enc.notification(last))
    assert reading.fields["meter_id"] == "181220000009"
    nested_reading = AutoDecoder().decode(enc.LLC + enc.notification(nested))
    assert "meter_id" not in nested_reading.fields
    assert nested_reading.fields["active_power_import"] == 5


def test_a_generic_list_number_of_unknown_scaling_is_not_published():
    body = enc.structure(
        enc.structure(enc.obis("1-0:1.7.0.255"), enc.u32(5)),  # known: W by default
        enc.structure(enc.obis("1-0:0.4.2.255"), enc.u32(7)),  # nothing says how it scales
        enc.structure(enc.obis("1-0:0.4.3.255"), enc.u32(9), enc.scaler_unit(-1, 255)),
    )
    reading = AutoDecoder().decode(enc.LLC + enc.notification(body))
    assert reading.fields["active_power_import"] == 5
    assert "1-0:0.4.2.255" not in reading.obis
    assert reading.obis["1-0:0.4.3.255"] == 0.9


def push_list_first(values: list[bytes], definitions: list[bytes] | None = None) -> bytes:
    """As meters send it: structure { the push object list itself, value 2, ..., value n }."""
    own = definition(40, "0-8:25.9.0.255")
    defs = definitions or [
        own,
        definition(1, "0-0:42.0.0.255"),
        definition(3, "1-0:1.7.0.255"),
        definition(3, "1-0:31.7.0.255"),
    ]
    return enc.structure(enc.array(*defs), *values)


def test_the_push_list_first_form_pairs_each_value_with_its_definition():
    body = push_list_first(
        [enc.octets(b"LGZ1030655933512"), scaled(enc.u32(1523), 0, W), scaled(enc.u16(254), -2, A)]
    )
    (reading,) = _decode(_plain(body))
    assert reading.fields == {
        "meter_id": "LGZ1030655933512",
        "active_power_import": 1523,
        "current_l1": 2.54,
    }
    assert reading.unscaled == ()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([enc.octets(b"LGZ1030655933512"), enc.u32(1523)], "4 capture objects but 3 values"),
        (
            [enc.octets(b"LGZ1030655933512"), enc.u32(1523), enc.u16(254), enc.u16(1)],
            "4 capture objects but 5 values",
        ),
    ],
    ids=["one-short", "one-over"],
)
def test_a_push_list_first_count_mismatch_is_refused(values: list[bytes], message: str):
    with pytest.raises(LayoutError, match=message):
        _decode(_plain(push_list_first(values)))


def test_a_push_list_with_a_stray_element_is_refused():
    defs = [definition(40, "0-8:25.9.0.255"), enc.u16(3)]
    with pytest.raises(LayoutError, match="capture object 1 is not a capture-object definition"):
        _decode(_plain(push_list_first([enc.u32(1)], defs)))


def test_templates_give_what_the_reference_path_gives_for_unscaled_lists():
    def frame(power: int, energy: int) -> bytes:
        defs = [
            definition(40, "0-8:25.9.0.255"),
            definition(1, "0-0:42.0.0.255"),
            definition(3, "1-0:1.7.0.255"),
            definition(3, "1-0:1.8.0.255"),
        ]
        values = [enc.octets(b"LGZ1030655933512"), scaled(enc.u32(power), 0, W), enc.u32(energy)]
        return _plain(push_list_first(values, defs))

    decoder = AutoDecoder()
    readings = [_decode(frame(p, e), decoder)[0] for p, e in ((10, 500), (20, 600), (30, 700))]
    assert decoder._templates.hits == 2  # the second and third frame
    for reading, (power, energy) in zip(readings, ((10, 500), (20, 600), (30, 700)), strict=True):
        (reference,) = _decode(frame(power, energy))
        assert reading == reference
        assert reading.fields["active_power_import"] == power
        assert reading.obis["1-0:1.8.0.255"] == energy
        assert reading.unscaled == ("1-0:1.8.0.255",)
        assert reading.meter_id == "LGZ1030655933512"


def test_an_m_bus_channel_identifier_never_names_the_meter():
    defs = [
        definition(40, "0-8:25.9.0.255"),
        definition(1, "0-0:96.1.0.255"),
        definition(1, "0-1:96.1.0.255"),
        definition(1, "0-2:96.1.0.255"),
    ]
    values = [enc.octets(b"36123456"), enc.octets(b"24521662"), enc.octets(b"\x00")]
    (reading,) = _decode(_plain(push_list_first(values, defs)))
    assert reading.meter_id == "36123456"
    assert reading.obis["0-1:96.1.0.255"] == "24521662"
    (channels_only,) = _decode(_plain(push_list_first(values[1:], [defs[0], *defs[2:]])))
    assert channels_only.meter_id is None
