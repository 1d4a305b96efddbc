"""Templates must give exactly what the slow path gives, and must never match a foreign shape."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt import AutoDecoder
from han2mqtt.errors import DecodeError
from han2mqtt.meters.detect import decode_notification
from han2mqtt.meters.template import MAX_PLANS_PER_TEMPLATE, MAX_TEMPLATES
from han2mqtt.protocol.apdu import decode_data_notification, strip_llc
from tests import corpus
from tests import encoder as enc

DECODABLE = corpus.ids(
    lambda i: (
        i["encryption"] == "none"
        and i["format"] in ("hdlc", "dlms-apdu")
        and i["verification"].get("apdu_parse", "").startswith("ok")
        and (
            i["verified"]
            or i["format"] == "dlms-apdu"
            or i["verification"]["status"] == "frames_ok_but_extra_bytes"
        )
    )
)


def _slow(content: bytes):
    return decode_notification(decode_data_notification(strip_llc(content)))


@pytest.mark.parametrize("item_id", DECODABLE)
def test_template_hit_equals_slow_path(item_id):
    content = corpus.content(corpus.by_id(item_id))
    assert content is not None
    decoder = AutoDecoder()
    first = decoder.decode(content)
    second = decoder.decode(content)
    assert decoder._templates.hits == 1
    assert first == second == _slow(content)


def test_same_length_frame_with_another_obis_code_misses_the_template():
    content = bytearray(corpus.content(corpus.by_id("no-aidon-6534-list2")) or b"")
    decoder = AutoDecoder()
    decoder.decode(bytes(content))
    at = content.index(bytes.fromhex("0100200700ff"))  # voltage L1 -> frequency-like code
    content[at + 2] = 0x0E
    reading = decoder.decode(bytes(content))
    assert decoder._templates.hits == 0
    assert "voltage_l1" not in reading.fields
    assert reading == _slow(bytes(content))


def test_same_shape_from_another_meter_id_hits_the_template_with_its_own_id():
    content = corpus.content(corpus.by_id("no-kamstrup-list1-2018")) or b""
    other = content.replace(b"5706567274389702", b"5706567274389703")
    decoder = AutoDecoder()
    decoder.decode(content)
    reading = decoder.decode(other)
    assert reading.fields["meter_id"] == "5706567274389703"
    assert reading == _slow(other)
    assert decoder._templates.hits == 1


def _with_meter_id(content: bytes, serial: int) -> tuple[bytes, str] | None:
    """``content`` with its meter id replaced by another of the same vendor prefix and length."""
    meter_id = _slow(content).fields.get("meter_id")
    if not isinstance(meter_id, str) or len(meter_id) < 8 or meter_id.encode() not in content:
        return None
    other = f"{meter_id[:-5]}{serial:05d}"
    return content.replace(meter_id.encode(), other.encode()), other


WITH_METER_ID = [i for i in DECODABLE if _with_meter_id(corpus.content(corpus.by_id(i)) or b"", 0)]


@pytest.mark.parametrize("item_id", WITH_METER_ID)
def test_a_fleet_of_meter_ids_hits_one_template_and_equals_the_slow_path(item_id):
    content = corpus.content(corpus.by_id(item_id)) or b""
    decoder = AutoDecoder()
    decoder.decode(content)
    for serial in range(1, 60):
        other, meter_id = _with_meter_id(content, serial) or (b"", "")
        reading = decoder.decode(other)
        assert reading == _slow(other), serial
        assert reading.fields["meter_id"] == meter_id
    assert decoder._templates.hits == 59  # one template, whatever the number of meters
    assert len(decoder._templates) == 1


def test_an_identifier_that_changes_a_layout_decision_takes_the_slow_path():
    content = corpus.content(corpus.by_id("no-kamstrup-list2-2017-oldfw")) or b""
    meter_id = str(_slow(content).fields["meter_id"])
    decoder = AutoDecoder()
    decoder.decode(content)
    variants = [
        "6970631" + meter_id[7:],  # a Kaifa meter number prefix: another vendor's decision
        "\x01" * len(meter_id),  # no longer text: published as hex
        " " * len(meter_id),  # blank
        "1234" + meter_id[4:],  # no known prefix
    ]
    for variant in variants:
        other = content.replace(meter_id.encode(), variant.encode("latin-1"))
        assert decoder.decode(other) == _slow(other), variant


def test_a_new_list_id_with_the_same_vendor_prefix_is_read_from_the_frame():
    body = enc.structure(enc.visible("Kamstrup_V0001"), enc.obis("1-1:1.7.0.255"), enc.u32(1234))
    decoder = AutoDecoder()
    first = enc.LLC + enc.notification(body)
    decoder.decode(first)
    other = first.replace(b"Kamstrup_V0001", b"Kamstrup_V0002")
    reading = decoder.decode(other)
    assert reading == _slow(other)
    assert reading.fields["list_ver_id"] == "Kamstrup_V0002"
    assert decoder._templates.hits == 1


_FLEET = AutoDecoder()


@settings(max_examples=300, deadline=None)
@given(
    meter_id=st.binary(min_size=16, max_size=16),
    meter_type=st.sampled_from([b"MA304H3E", b"MA105H2E", b"\x00" * 8, b"12345678", b"KFM_0001"]),
    power=st.integers(0, 0xFFFFFFFF),
)
def test_any_identifiers_decode_the_same_through_one_template(meter_id, meter_type, power):
    """One decoder for every example: identifiers of every kind, all equal to the slow path."""
    body = enc.structure(
        enc.octets(b"KFM_001"),
        enc.octets(meter_id),
        enc.octets(meter_type),
        *(enc.u32(power) for _ in range(4)),
        *(enc.u32(power // 7) for _ in range(3)),
        *(enc.u32(2300 + power % 100) for _ in range(3)),
    )
    _assert_fleet_equals_slow_path(enc.LLC + enc.notification(body))


_IDENTIFIERS = st.one_of(
    st.binary(min_size=16, max_size=16),
    st.tuples(
        st.sampled_from([b"5706567", b"6970631", b"7359992", b"1234567", b"       "]),
        st.text("0123456789 ", min_size=9, max_size=9).map(str.encode),
    ).map(b"".join),
)


@settings(max_examples=300, deadline=None)
@given(
    list_id=st.sampled_from(["Kamstrup_V0001", "Kamstrup_V0002", "AIDON_V0001xx", "EMBRIQ_V0001x"]),
    meter_id=_IDENTIFIERS,
    meter_type=_IDENTIFIERS,
    power=st.integers(0, 0xFFFFFFFF),
)
def test_any_identifiers_of_an_obis_list_decode_the_same(list_id, meter_id, meter_type, power):
    """One decoder for every example: list ids, vendor prefixes, text or not, blank."""
    body = enc.structure(
        enc.visible(list_id),
        enc.obis("1-1:0.0.5.255"),
        enc.octets(meter_id),
        enc.obis("1-1:96.1.1.255"),
        enc.octets(meter_type),
        enc.obis("1-1:1.7.0.255"),
        enc.u32(power),
        enc.obis("1-1:31.7.0.255"),
        enc.u32(power // 1000),
    )
    _assert_fleet_equals_slow_path(enc.LLC + enc.notification(body))


def test_template_memory_does_not_grow_with_meters_or_shapes():
    content = corpus.content(corpus.by_id("no-aidon-6534-list2")) or b""
    decoder = AutoDecoder()
    for serial in range(3000):
        other, _ = _with_meter_id(content, serial) or (b"", "")
        decoder.decode(other)
    (template,) = decoder._templates._recent
    assert len(template._plans) <= MAX_PLANS_PER_TEMPLATE
    for shape in range(3 * MAX_TEMPLATES):  # a new shape each time: another list length
        values = [
            enc.structure(enc.obis(f"1-0:{c}.7.0.255"), enc.u32(c))
            for c in range(1, 2 + shape % 60)
        ]
        body = enc.array(
            *values, *([enc.structure(enc.obis("1-0:1.8.0.255"), enc.u32(shape))] * (shape // 60))
        )
        decoder.decode(enc.LLC + enc.notification(body))
    assert len(decoder._templates) <= MAX_TEMPLATES


def test_the_least_recently_used_template_goes_first():
    busy = corpus.content(corpus.by_id("no-aidon-6534-list2")) or b""
    decoder = AutoDecoder()
    decoder.decode(busy)
    for shape in range(2 * MAX_TEMPLATES):
        values = [
            enc.structure(enc.obis(f"1-0:{c}.7.0.255"), enc.u32(c)) for c in range(1, 2 + shape)
        ]
        decoder.decode(enc.LLC + enc.notification(enc.array(*values)))
        hits = decoder._templates.hits
        decoder.decode(busy)  # the meter's own list keeps coming: it stays
        assert decoder._templates.hits == hits + 1


_SHARED = AutoDecoder()


def _kamstrup_pairs(powers, currents, volts) -> list[bytes]:
    """OBIS/value pairs of a Kamstrup list: four powers, three currents, three voltages."""
    elements = []
    for c, p in zip((1, 2, 3, 4), powers, strict=True):
        elements += [enc.obis(f"1-1:{c}.7.0.255"), enc.u32(p)]
    for c, i in zip((31, 51, 71), currents, strict=True):
        elements += [enc.obis(f"1-1:{c}.7.0.255"), enc.u32(i)]
    for c, v in zip((32, 52, 72), volts, strict=True):
        elements += [enc.obis(f"1-1:{c}.7.0.255"), enc.u16(v)]
    return elements


@settings(max_examples=300, deadline=None)
@given(
    powers=st.tuples(*[st.integers(0, 0xFFFFFFFF)] * 4),
    currents=st.tuples(*[st.integers(0, 0xFFFFFFFF)] * 3),
    volts=st.tuples(*[st.integers(0, 0xFFFF)] * 3),
    vendor=st.sampled_from(["kamstrup", "kaifa", "aidon"]),
    stamp=st.tuples(
        st.integers(2000, 2099), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23)
    ),
)
def test_random_values_decode_the_same_through_templates(powers, currents, volts, vendor, stamp):
    """One decoder across all examples: most frames hit a template; all must equal the slow path."""
    when = enc.date_time(stamp[0], stamp[1], stamp[2], stamp[3], 0, 0)
    if vendor == "kamstrup":
        elements = [enc.visible("Kamstrup_V0001"), *_kamstrup_pairs(powers, currents, volts)]
        body = enc.structure(*elements)
    elif vendor == "kaifa":
        body = enc.structure(
            enc.octets(b"KFM_001"),
            enc.octets(b"6970631401753985"),
            enc.octets(b"MA304H3E"),
            *(enc.u32(p) for p in powers),
            *(enc.u32(i) for i in currents),
            *(enc.u32(v) for v in volts),
            enc.octets(when),
            *(enc.u32(p) for p in powers),
        )
    else:
        body = enc.array(
            *(
                enc.structure(enc.obis(f"1-0:{c}.7.0.255"), enc.u32(p), enc.scaler_unit(0, 27))
                for c, p in zip((1, 2, 3, 4), powers, strict=True)
            ),
            enc.structure(enc.obis("0-0:1.0.0.255"), enc.octets(when)),
        )
    content = enc.LLC + enc.notification(body, when, typed_stamp=vendor == "kaifa")
    assert _SHARED.decode(content) == _slow(content)


def _assert_fleet_equals_slow_path(content: bytes) -> None:
    """The shared fleet decoder gives what the slow path gives: the reading, or a DecodeError."""
    try:
        expected = _slow(content)
    except DecodeError:
        with pytest.raises(DecodeError):
            _FLEET.decode(content)
        return
    assert _FLEET.decode(content) == expected


_KAMSTRUP = AutoDecoder()
_KAMSTRUP_TYPES = [
    "6841121BN243101040",  # direct, Norwegian
    "6851121BN243101040",  # CT meter: current in mA
    "6841131BN245101092",  # Swedish firmware: energy in Wh
    "6851131BN245101092",  # both
    "",  # no meter type: decided by power balance, per frame
]


@settings(max_examples=400, deadline=None)
@given(
    meter_type=st.sampled_from(_KAMSTRUP_TYPES),
    meter_id=st.integers(0, 999_999_999),
    powers=st.tuples(*[st.integers(0, 30_000)] * 4),
    currents=st.tuples(*[st.integers(0, 100_000)] * 3),
    volts=st.tuples(*[st.sampled_from([0, 230, 999, 1000, 1001, 23_012, 0xFFFF])] * 3),
    energy=st.integers(0, 0xFFFFFFFF),
)
def test_kamstrup_rescaling_through_templates_equals_the_slow_path(
    meter_type, meter_id, powers, currents, volts, energy
):
    """CT, Swedish and centivolt scaling as compiled rules give exactly what ``adjust`` gives."""
    elements = [
        enc.visible("Kamstrup_V0001"),
        enc.obis("1-1:0.0.5.255"),
        enc.visible(f"5706567{meter_id:09d}"),
    ]
    if meter_type:
        elements += [enc.obis("1-1:96.1.1.255"), enc.visible(meter_type)]
    elements += _kamstrup_pairs(powers, currents, volts)
    elements += [enc.obis("1-1:1.8.0.255"), enc.u32(energy)]
    content = enc.LLC + enc.notification(enc.structure(*elements))
    assert _KAMSTRUP.decode(content) == _slow(content)


def test_kamstrup_lists_with_a_meter_type_are_compiled_not_adjusted_per_frame():
    content = corpus.content(corpus.by_id("no-kamstrup-list2-2017-oldfw")) or b""
    decoder = AutoDecoder()
    decoder.decode(content)
    (template,) = decoder._templates._recent
    assert template._plan._steps is not None
    ct = content.replace(b"6841121BN243101040", b"6851121BN243101040")
    reading = decoder.decode(ct)  # same template, another meter type: other rules
    assert reading == _slow(ct)
    assert (_slow(content).fields["current_l1"], reading.fields["current_l1"]) == (9.96, 0.996)
    assert decoder._templates.hits == 1
