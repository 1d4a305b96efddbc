"""Bodies with untyped attribute descriptors (Sagemcom XT211): read exactly or refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from han2mqtt import AutoDecoder
from han2mqtt.errors import AxdrError, DecodeError
from han2mqtt.protocol.apdu import decode_data_notification
from han2mqtt.protocol.descriptors import decode_described_body

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "public-captures.json"
XT211 = bytes.fromhex(
    next(
        item["hex_or_text"]
        for item in json.loads(VECTORS.read_text(encoding="utf-8"))
        if item["id"] == "cz-sagemcom-xt211-dlms-parser"
    )
)
BODY = 6  # tag, long-invoke-id (4), no date-time


def test_each_descriptor_is_read_as_class_name_and_attribute():
    notification = decode_data_notification(XT211)
    assert not notification.typed
    body = notification.body
    assert isinstance(body, tuple)
    first, elements = body
    assert isinstance(elements, list)
    assert first == 1
    assert len(elements) == 22
    assert elements[0] == ((1, bytes.fromhex("0000600101ff"), 2), b"5100005149")
    assert elements[1] == ((70, bytes.fromhex("0000600300ff")[:4] + b"\x0a\xff", 3), 1)
    assert elements[-1] == ((3, bytes.fromhex("0100020800ff"), 2), 52)


def test_a_typed_body_never_takes_the_untyped_path():
    plain = bytes.fromhex("0f40000000000101020309060100010700ff060000011802020f00161b")
    assert decode_data_notification(plain).typed
    with pytest.raises(AxdrError, match="truncated"):  # the typed reading's own error
        decode_data_notification(plain[:-3])


@pytest.mark.parametrize("extra", [b"\x00", b"\x06\x00\x00\x00\x01"])
def test_trailing_bytes_are_refused_with_the_typed_error(extra: bytes):
    with pytest.raises(AxdrError, match="unknown or unsupported data tag 0x60"):
        decode_data_notification(XT211 + extra)


def test_a_descriptor_count_that_does_not_fit_is_refused():
    wrong = bytearray(XT211)
    assert wrong[BODY + 5] == 22
    wrong[BODY + 5] = 23
    with pytest.raises(AxdrError):
        decode_data_notification(bytes(wrong))
    with pytest.raises(AxdrError):
        decode_described_body(bytes(wrong), BODY)


@given(cut=st.integers(min_value=1, max_value=len(XT211) - 1))
def test_any_truncation_is_a_typed_error(cut: int):
    with pytest.raises(DecodeError):
        AutoDecoder().decode(XT211[:cut])


@given(position=st.integers(min_value=BODY, max_value=len(XT211) - 1), byte=st.integers(0, 255))
def test_any_changed_byte_decodes_or_is_a_typed_error(position: int, byte: int):
    changed = bytearray(XT211)
    changed[position] = byte
    try:
        reading = AutoDecoder().decode(bytes(changed))
    except DecodeError:
        return
    assert not set(reading.unscaled) & set(reading.units)


def test_the_meter_is_named_by_its_device_identifier_and_registers_stay_unscaled():
    reading = AutoDecoder().decode(XT211)
    assert reading.fields == {"meter_id": "5100005149"}
    assert reading.obis["1-0:1.8.0.255"] == 4913794
    assert "1-0:1.8.0.255" in reading.unscaled
    assert reading.obis["0-0:96.14.0.255"] == "T2"
