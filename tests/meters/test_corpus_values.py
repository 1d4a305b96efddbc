"""Every plaintext corpus frame from NO/SE/DK decodes to the values its source states."""

from __future__ import annotations

import pytest

from han2mqtt import AutoDecoder
from han2mqtt.errors import AxdrError, DecodeError
from tests import corpus

_FIELD_OF_EXPECTED = {
    "list_version_id": "list_ver_id",
    "active_energy_import_Wh": "active_power_import_total",
    "active_energy_export_Wh": "active_power_export_total",
    "reactive_energy_import_varh": "reactive_power_import_total",
    "reactive_energy_export_varh": "reactive_power_export_total",
}
_UNIT_SUFFIXES = ("_W", "_var", "_A", "_V")


def _expected_fields(expected: dict[str, object]) -> dict[str, object]:
    """Translate the corpus' unit-suffixed keys into normalized field names and units."""
    result: dict[str, object] = {}
    for key, value in expected.items():
        if key.startswith("_") or key in ("apdu_datetime", "meter_clock"):
            continue
        if key in _FIELD_OF_EXPECTED:
            name = _FIELD_OF_EXPECTED[key]
            result[name] = value / 1000 if key.endswith("h") else value  # type: ignore[operator]
            continue
        name = key
        for suffix in _UNIT_SUFFIXES:
            name = name.removesuffix(suffix)
        result[name] = value
    return result


def _plaintext(item: dict[str, object]) -> bool:
    return (
        item["encryption"] == "none"
        and item["format"] in ("hdlc", "dlms-apdu")
        and item["country"] in ("NO", "SE", "DK")
    )


DECODABLE = corpus.ids(
    lambda i: (
        _plaintext(i)
        and (
            i["verified"]
            or i["format"] == "dlms-apdu"
            or i["verification"]["status"] == "frames_ok_but_extra_bytes"
        )
        and "A-XDR parse error" not in str(i["verification"].get("apdu_parse"))
        and i["verification"].get("apdu_parse") is not None
    )
)


@pytest.mark.parametrize("item_id", DECODABLE)
def test_decodes_to_the_values_the_source_states(item_id):
    item = corpus.by_id(item_id)
    content = corpus.content(item)
    assert content is not None
    reading = AutoDecoder().decode(content)
    for name, value in _expected_fields(item["expected"]).items():
        assert name in reading.fields, name
        got = reading.fields[name]
        if isinstance(value, float):
            assert got == pytest.approx(value, abs=1e-9), name
        else:
            assert got == value, name
    stamp = item["expected"].get("meter_clock") or item["expected"].get("apdu_datetime")
    if stamp:
        assert str(reading.fields["meter_datetime"]).startswith(stamp)


@pytest.mark.parametrize("item_id", DECODABLE)
def test_values_not_sent_are_absent_and_every_obis_value_is_kept(item_id):
    reading = AutoDecoder().decode(corpus.content(corpus.by_id(item_id)) or b"")
    for name, code in reading.field_obis.items():
        assert code in reading.obis, name
    assert all(value is not None and value != "" for value in reading.fields.values())


def test_kamstrup_single_phase_null_padding_gives_no_l2_l3():
    reading = AutoDecoder().decode(
        corpus.content(corpus.by_id("no-kamstrup-1p-list1-nullpad")) or b""
    )
    assert "current_l2" not in reading.fields
    assert "voltage_l3" not in reading.fields
    assert reading.fields["current_l1"] == 2.9


def test_danish_kamstrup_ct_frame_decodes_with_milliampere_currents():
    """amshan crashes on this frame; the power balance shows the currents are in 0.001 A."""
    reading = AutoDecoder().decode(
        corpus.content(corpus.by_id("dk-kamstrup-ct-plain-gh216")) or b""
    )
    assert reading.fields["current_l1"] == 90.999
    assert reading.fields["active_power_export"] == 2585
    assert reading.fields["reactive_power_import"] == 63364
    assert reading.fields["power_factor"] == 0.04
    assert "1-1:0.0.1.255" in reading.obis  # an object we have no name for is kept


def test_swedish_kamstrup_energy_is_in_wh():
    reading = AutoDecoder().decode(corpus.content(corpus.by_id("se-kamstrup-list2-gh239")) or b"")
    assert reading.fields["active_power_import_total"] == 32014.158


def test_kaifa_positional_values_get_the_nek_obis_codes():
    reading = AutoDecoder().decode(
        corpus.content(corpus.by_id("no-kaifa-ma304h3e-list2-2017")) or b""
    )
    assert reading.layout == "kaifa"
    assert reading.obis["1-0:31.7.0.255"] == 2.076
    assert reading.field_obis["voltage_l2"] == "1-0:52.7.0.255"
    assert reading.fields["voltage_l2"] == 0.0  # 3-wire IT grid: the meter sends U2 = 0


def test_swedish_kaifa_clock_carries_the_utc_offset():
    reading = AutoDecoder().decode(
        corpus.content(corpus.by_id("se-kaifa-ma304h4-obislist-llc-amshan")) or b""
    )
    assert reading.fields["meter_datetime"] == "2021-09-22T17:35:30+01:00"
    assert reading.fields["current_l1"] == 6.781


def test_generic_obis_lists_from_other_vendors_decode():
    for item_id in (
        "xx-iskra-am550-hdlc-segmented",
        "at-sagemcom-t210d-plain-gh867-2",
        "at-kaifa-ma309-vorarlberg-plain-gh539-4",
    ):
        reading = AutoDecoder().decode(corpus.content(corpus.by_id(item_id)) or b"")
        voltage = reading.fields["voltage_l1"]
        assert isinstance(voltage, float)
        assert voltage > 200
        assert reading.obis


def test_truncated_apdu_is_a_typed_error():
    with pytest.raises(AxdrError):
        AutoDecoder().decode(
            corpus.content(corpus.by_id("dk-kamstrup-omnipower-plain-bornholm")) or b""
        )


def test_ciphered_apdu_without_key_is_a_typed_error():
    with pytest.raises(DecodeError):
        AutoDecoder().decode(
            corpus.content(corpus.by_id("dk-kamstrup-omnipower-enc-testkey")) or b""
        )
