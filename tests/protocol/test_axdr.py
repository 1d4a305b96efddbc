"""A-XDR decoding: one row per type, malformed input, and random bytes."""

from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from han2mqtt.errors import ApduError, AxdrError, Han2MqttError
from han2mqtt.protocol.apdu import decode_data_notification, strip_llc
from han2mqtt.protocol.axdr import BitString, decode_data
from han2mqtt.protocol.cosem import CosemDate, CosemDateTime, CosemTime, date_time_text

ROWS = [
    ("00", None),
    ("0301", True),
    ("0300", False),
    ("0405A8", BitString(5, b"\xa8")),
    ("05FFFFFFFE", -2),
    ("0600000552", 1362),
    ("090401020304", b"\x01\x02\x03\x04"),
    ("0A0441424344", "ABCD"),
    ("0C03C3A6C3", None),  # truncated utf-8 body: handled by the error table below
    ("0D42", 42),
    ("0FFF", -1),
    ("10FF9C", -100),
    ("11C8", 200),
    ("1209C4", 2500),
    ("14FFFFFFFFFFFFFFFF", -1),
    ("15000000000000C2D1", 49873),
    ("1603", 3),
    ("173FC00000", 1.5),
    ("183FF8000000000000", 1.5),
    ("0102120001120002", [1, 2]),
    ("02020FFF161B", (-1, 27)),
    ("098180" + "00" * 128, b"\x00" * 128),
]


@pytest.mark.parametrize(
    ("wire", "expected"), [r for r in ROWS if r[1] is not None or r[0] == "00"]
)
def test_decodes_each_type(wire, expected):
    data = bytes.fromhex(wire)
    value, end = decode_data(data)
    assert end == len(data)
    assert value == expected


def test_utf8_string():
    assert decode_data(bytes.fromhex("0C02C3A6"))[0] == "æ"


def test_date_time_date_and_time_tags():
    stamp, _ = decode_data(bytes.fromhex("1907E5031702123200FFFFC400"))
    assert isinstance(stamp, CosemDateTime)
    assert stamp.isoformat() == "2021-03-23T18:50:00+01:00"
    assert decode_data(bytes.fromhex("1A07E50317FF"))[0] == CosemDate(2021, 3, 23, None)
    assert decode_data(bytes.fromhex("1B12320000"))[0] == CosemTime(18, 50, 0, 0)


def test_date_time_with_unspecified_fields():
    stamp = CosemDateTime.from_bytes(bytes.fromhex("FFFF0102FF0C00FFFF800000"))
    assert stamp.year is None
    assert stamp.deviation is None
    assert stamp.isoformat() is None


def test_date_time_deviation_sign_follows_the_field():
    # Swedish Kaifa: deviation 0xFFC4 = -60 minutes means local time UTC+01:00.
    stamp = CosemDateTime.from_bytes(bytes.fromhex("07E5091603112300FFFFC400"))
    assert stamp.isoformat() == "2021-09-22T17:35:00+01:00"
    assert stamp.isoformat(use_deviation=False) == "2021-09-22T17:35:00"


_PLAUSIBLE_STAMP = st.tuples(  # mostly real dates, with every kind of special value
    st.sampled_from([2021, 2024, 2000, 2099, 0xFFFF, 0]),
    st.sampled_from([1, 2, 3, 6, 12, 0xFF, 0xFD, 0xFE, 13, 0]),
    st.sampled_from([1, 15, 28, 29, 30, 31, 0xFF, 0xFD, 0]),
    st.integers(0, 0xFF),
    st.sampled_from([0, 12, 23, 0xFF, 24]),
    st.sampled_from([0, 30, 59, 0xFF, 60]),
    st.sampled_from([0, 30, 59, 0xFF, 60]),
    st.integers(0, 0xFF),
    st.sampled_from([0, -60, 60, -120, 720, -720, 721, -721, -0x8000, 0x7FFF]),
    st.integers(0, 0xFF),
).map(lambda f: struct.pack(">HBBBBBBBhB", *f))


def _stamp(*fields: int) -> bytes:
    """12 octets: year, month, day, weekday, hour, minute, second, hundredths, deviation, status."""
    return struct.pack(">HBBBBBBBhB", *fields)


@settings(max_examples=500)
@given(raw=st.one_of(st.binary(min_size=12, max_size=12), _PLAUSIBLE_STAMP))
@example(raw=_stamp(2021, 1, 1, 5, 0, 0, 0, 0, 720, 0))  # the largest deviation taken
@example(raw=_stamp(2021, 1, 1, 5, 0, 0, 0, 0, -720, 0))
@example(raw=_stamp(2021, 1, 1, 5, 0, 0, 0, 0, 721, 0))  # beyond: no offset
@example(raw=_stamp(2021, 1, 1, 5, 0, 0, 0xFF, 0, -60, 0x80))  # seconds not given
@example(raw=_stamp(2021, 2, 29, 5, 0, 0, 0, 0, 0, 0))  # no such day
@example(raw=_stamp(2024, 2, 29, 4, 23, 59, 59, 99, 0, 0))
@example(raw=_stamp(2021, 0xFD, 1, 5, 0, 0, 0, 0, 0, 0))  # end of DST marker
def test_date_time_text_equals_the_decoded_date_time_s_text(raw):
    """The hot path's text is the reference's: any octets, both ways of reading the deviation."""
    stamp = CosemDateTime.from_bytes(raw)
    for use_deviation in (True, False):
        assert date_time_text(raw, use_deviation=use_deviation) == stamp.isoformat(
            use_deviation=use_deviation
        )


def test_date_time_text_needs_twelve_octets():
    with pytest.raises(AxdrError):
        date_time_text(bytes(11))


@pytest.mark.parametrize(
    "wire",
    [
        "",  # nothing
        "06000005",  # truncated uint32
        "0905010203",  # octet-string shorter than announced
        "0103120001",  # array announces 3, has 1
        "0C02C3",  # utf8 truncated
        "0C02C328",  # invalid utf8
        "FF",  # unknown tag
        "13",  # compact-array: not supported
        "0985FFFFFFFFFF",  # 5 length octets
        "0980",  # indefinite length
        "1907E5",  # truncated date-time
    ],
)
def test_malformed_data_raises_axdr_error(wire):
    with pytest.raises(AxdrError):
        decode_data(bytes.fromhex(wire))


def test_nesting_is_bounded():
    deep = bytes.fromhex("0101" * 40 + "00")
    with pytest.raises(AxdrError, match="nested"):
        decode_data(deep)


def test_data_notification_with_its_three_date_time_forms():
    body = "020106000004D2"
    plain = decode_data_notification(bytes.fromhex("0F40000000" + "00" + body))
    assert plain.date_time is None
    assert plain.long_invoke_id_and_priority == 0x40000000
    stamp = "07E1090C0217122AFF800000"
    for marker in ("0C", "090C"):
        notification = decode_data_notification(bytes.fromhex("0F40000000" + marker + stamp + body))
        assert notification.date_time is not None
        assert notification.date_time.isoformat() == "2017-09-12T23:18:42"
        assert notification.body == (1234,)


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("", ApduError),
        ("0E40000000", ApduError),
        ("0F4000", ApduError),
        ("0F4000000007", ApduError),
        ("0F400000000C07E1", ApduError),
        ("0F4000000000020106000004D2FF", AxdrError),
    ],
)
def test_malformed_notifications(wire, error):
    with pytest.raises(error):
        decode_data_notification(bytes.fromhex(wire))


def test_llc_header_is_optional():
    apdu = bytes.fromhex("0F400000000000")
    assert strip_llc(b"\xe6\xe7\x00" + apdu) == apdu
    assert strip_llc(b"\xe6\xe6\x00" + apdu) == apdu
    assert strip_llc(apdu) == apdu


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_our_errors(data):
    try:
        value, end = decode_data(data)
    except Han2MqttError:
        return
    assert 0 < end <= len(data)
    if isinstance(value, float):
        assert math.isnan(value) or isinstance(value, float)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_notifications_raise_only_our_errors(data):
    with contextlib.suppress(Han2MqttError):
        decode_data_notification(b"\x0f" + data)
