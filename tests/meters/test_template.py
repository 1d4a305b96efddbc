"""Templates must give exactly what the slow path gives, and must never match a foreign shape."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt import AutoDecoder
from han2mqtt.meters.detect import decode_notification
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


def test_same_shape_from_another_meter_id_misses_the_template():
    content = corpus.content(corpus.by_id("no-kamstrup-list1-2018")) or b""
    other = content.replace(b"5706567274389702", b"5706567274389703")
    decoder = AutoDecoder()
    decoder.decode(content)
    assert decoder.decode(other).fields["meter_id"] == "5706567274389703"


_SHARED = AutoDecoder()


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
        elements = [enc.visible("Kamstrup_V0001")]
        for c, p in zip((1, 2, 3, 4), powers, strict=True):
            elements += [enc.obis(f"1-1:{c}.7.0.255"), enc.u32(p)]
        for c, i in zip((31, 51, 71), currents, strict=True):
            elements += [enc.obis(f"1-1:{c}.7.0.255"), enc.u32(i)]
        for c, v in zip((32, 52, 72), volts, strict=True):
            elements += [enc.obis(f"1-1:{c}.7.0.255"), enc.u16(v)]
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
