"""Encrypted DLMS, block transfer, M-Bus long frames and P1 telegrams, on the corpus."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt import AutoDecoder
from han2mqtt.errors import (
    ApduError,
    ChecksumError,
    DecodeError,
    DecryptionError,
    Han2MqttError,
    MissingKeyError,
    SecurityError,
)
from han2mqtt.protocol.apdu import strip_llc
from han2mqtt.protocol.gbt import BlockAssembler
from han2mqtt.protocol.hdlc import HdlcFrameReader
from han2mqtt.protocol.mbus import MbusApduAssembler, MbusFrameReader
from han2mqtt.protocol.p1 import P1TelegramReader
from han2mqtt.protocol.security import decrypt_apdu, parse_ciphered_apdu
from han2mqtt.protocol.stream import ContentReader
from tests import corpus

KEYED = corpus.ids(lambda i: i["key_hex"] is not None and i["verified"])
P1_VALID = corpus.ids(lambda i: i["format"] == "p1" and i["verification"]["status"] != "bad_crc")


def _keys(item: corpus.Item) -> tuple[bytes, bytes | None]:
    auth = item["auth_key_hex"]
    return bytes.fromhex(item["key_hex"]), bytes.fromhex(auth) if auth else None


def _ciphered_apdu(item: corpus.Item) -> bytes:
    """The ciphered APDU of an item: HDLC frames (joining GBT blocks) or M-Bus telegrams."""
    if item["format"] == "mbus-long":
        assembler = MbusApduAssembler()
        apdus = [a for f in MbusFrameReader().read(corpus.raw(item)) if (a := assembler.add(f))]
        return apdus[0]
    blocks = BlockAssembler()
    apdu = b""
    for frame in HdlcFrameReader().read(corpus.raw(item)):
        content = strip_llc(frame.payload)
        apdu = (blocks.add(content) or b"") if content[0] == 0xE0 else content
    return apdu


@pytest.mark.parametrize("item_id", KEYED)
def test_published_keys_decrypt_to_the_published_plaintext(item_id):
    item = corpus.by_id(item_id)
    key, auth = _keys(item)
    apdu = _ciphered_apdu(item)
    plaintext = decrypt_apdu(apdu, key, auth)
    assert plaintext.hex().upper() == item["verification"]["gcm"]["plaintext_hex"]
    if item.get("expected_plaintext_hex"):
        assert plaintext.hex().upper().startswith(item["expected_plaintext_hex"].upper())
    # Without the authentication key the same plaintext comes out (no tag check).
    assert decrypt_apdu(apdu, key, None) == plaintext


@pytest.mark.parametrize("item_id", KEYED)
def test_a_wrong_key_fails_cleanly(item_id):
    item = corpus.by_id(item_id)
    key, auth = _keys(item)
    apdu = _ciphered_apdu(item)
    wrong = bytes(b ^ 0x5A for b in key)
    with pytest.raises(DecryptionError, match="system title"):
        decrypt_apdu(apdu, wrong, auth)
    if auth is not None:
        with pytest.raises(DecryptionError, match="tag mismatch"):
            decrypt_apdu(apdu, key, bytes(16))


@pytest.mark.parametrize("item_id", [i for i in KEYED if corpus.by_id(i)["format"] == "mbus-long"])
def test_any_wrong_key_without_a_tag_check_is_a_decryption_error(item_id):
    # Without an authentication key nothing verifies the plaintext; a wrong key whose garbage
    # happens to start like an APDU must still end as "wrong key", never as a reading.
    item = corpus.by_id(item_id)
    contents = ContentReader("mbus").read(corpus.raw(item))
    rng = random.Random(item_id)
    for _ in range(3000):
        decoder = AutoDecoder(encryption_key=rng.randbytes(16))
        with pytest.raises(DecryptionError, match="wrong encryption key"):
            _feed_all(decoder, contents)


def _feed_all(decoder: AutoDecoder, contents: list[bytes]) -> None:
    for content in contents:
        decoder.feed(content)


def test_missing_and_malformed_keys():
    apdu = _ciphered_apdu(corpus.by_id("dk-kamstrup-omnipower-enc-testkey"))
    with pytest.raises(MissingKeyError, match="4B414D4501349083"):
        decrypt_apdu(apdu, None)
    with pytest.raises(SecurityError, match="16 octets"):
        decrypt_apdu(apdu, b"short")
    header = parse_ciphered_apdu(apdu)
    assert (header.security_control, header.authenticated, header.encrypted) == (0x30, True, True)
    with pytest.raises(ApduError):
        parse_ciphered_apdu(apdu[:12])


def test_danish_omnipower_test_frame_decodes_with_its_keys():
    item = corpus.by_id("dk-kamstrup-omnipower-enc-testkey")
    key, auth = _keys(item)
    reading = AutoDecoder(encryption_key=key, authentication_key=auth).decode(
        corpus.content(item) or b""
    )
    assert reading.fields["active_power_import_l2"] == 424
    assert reading.fields["active_power_import_l3"] == 623
    assert reading.layout == "kamstrup"


def test_landis_gyr_block_transfer_decodes_through_feed():
    item = corpus.by_id("xx-landisgyr-e450-gbt-enc-testkey")
    key, auth = _keys(item)
    decoder = AutoDecoder(encryption_key=key, authentication_key=auth)
    results = [decoder.feed(frame.payload) for frame in HdlcFrameReader().read(corpus.raw(item))]
    assert results[:2] == [None, None]
    reading = results[2]
    assert reading is not None
    assert reading.fields["active_power_import_total"] == 4408.736
    assert reading.fields["active_power_import_total_t1"] == 3593.919
    assert reading.fields["active_power_import"] == 2893
    assert reading.fields["reactive_power_import_total"] == 1591.784


@pytest.mark.parametrize(
    ("item_id", "field", "value"),
    [
        ("at-kaifa-ma309-netznoe-doc", "active_power_import_total", 12.937),
        ("at-kaifa-ma309-netznoe-doc", "voltage_l1", 233.7),
        ("at-kaifa-ma309-netznoe-doc", "power_factor", 1.0),
        ("at-kaifa-ma309-netznoe-doc", "meter_id", "181220000009"),  # sent without OBIS code
        ("at-kaifa-tinetz-doc-testkey", "voltage_l1", 230.8),
        ("at-kaifa-tinetz-doc-testkey", "active_power_import_total", 9.108),
    ],
)
def test_austrian_mbus_telegrams_decrypt_and_decode(item_id, field, value):
    item = corpus.by_id(item_id)
    key, _ = _keys(item)
    reader = ContentReader("auto")
    contents = reader.read(corpus.raw(item))
    assert reader.format == "mbus"
    reading = AutoDecoder(encryption_key=key).decode(contents[0])
    assert reading.fields[field] == value
    assert str(reading.fields["meter_datetime"]).startswith("2021-")


@pytest.mark.parametrize(
    "item_id", ["at-landisgyr-e450-burgenland-gh501-1", "at-landisgyr-e450-burgenland-gh501-2"]
)
def test_burgenland_e450_positional_list_decrypts_and_decodes(item_id):
    # The source describes the list: U1-3, I1-3, P+/P-, A+/A-, ..., meter id 30137181.
    item = corpus.by_id(item_id)
    key, auth = _keys(item)
    decoder = AutoDecoder(encryption_key=key, authentication_key=auth)
    readings = [
        r for f in HdlcFrameReader().read(corpus.raw(item)) if (r := decoder.feed(f.payload))
    ]
    (reading,) = readings
    assert reading.layout == "landisgyr-e450-at"
    assert reading.fields["meter_id"] == "30137181"
    assert reading.fields["meter_manufacturer"] == "Landis+Gyr"
    assert (reading.fields["voltage_l1"], reading.fields["voltage_l2"]) == (236, 237)
    assert reading.fields["active_power_import"] == 29
    assert reading.fields["active_power_import_total"] == 31358.606
    assert len(reading.obis) == 11  # the three positions no source names are not published


def test_sagemcom_t210d_meter_number_sent_without_obis_code():
    reading = AutoDecoder().decode(corpus.raw(corpus.by_id("at-sagemcom-t210d-plain-gh867-2")))
    assert reading.fields["meter_id"] == "178210128502"
    assert reading.fields["voltage_l1"] == 233.4


def test_a_positional_list_of_another_shape_is_not_read_with_the_e450_table():
    from han2mqtt.errors import LayoutError  # noqa: PLC0415
    from tests import encoder  # noqa: PLC0415

    numbers = [encoder.u16(230 + i) for i in range(14)]  # 14 numbers: no text where the id is
    content = encoder.LLC + b"\x0f\x00\x00\x00\x00\x00" + encoder.structure(*numbers)
    with pytest.raises(LayoutError):
        AutoDecoder().decode(content)


def test_ciphered_frame_without_a_key_is_a_typed_error():
    with pytest.raises(MissingKeyError):
        AutoDecoder().decode(
            corpus.content(corpus.by_id("dk-kamstrup-omnipower-enc-testkey")) or b""
        )


def test_segmented_mbus_telegram_with_a_missing_first_segment_is_dropped():
    item = corpus.by_id("at-sagemcom-t210d-firmware-reassembled-gh155-2")
    reader = ContentReader("mbus")
    assert reader.read(corpus.raw(item)) == []


_UNIT_SUFFIX = {"_W": 1, "_V": 1, "_A": 1}


@pytest.mark.parametrize("item_id", P1_VALID)
def test_every_valid_p1_telegram_decodes_with_its_stated_values(item_id):
    item = corpus.by_id(item_id)
    reader = P1TelegramReader()
    telegrams = reader.read(corpus.raw(item)) + reader.flush()
    assert len(telegrams) == 1
    assert telegrams[0].is_valid
    reading = AutoDecoder().decode(telegrams[0].raw)
    assert reading.layout == "p1"
    expected = item["expected"]
    names = {
        "active_energy_import_Wh": "active_power_import_total",
        "active_energy_export_Wh": "active_power_export_total",
        "active_energy_import_t1_Wh": "active_power_import_total_t1",
        "active_energy_import_t2_Wh": "active_power_import_total_t2",
    }
    for key, value in expected.items():
        if key.startswith("_") or key == "meter_clock":
            continue
        if key in names:
            assert reading.fields[names[key]] == pytest.approx(value / 1000), key
        else:
            field = key.rsplit("_", 1)[0]
            assert reading.fields[field] == pytest.approx(value), key
    if "meter_clock" in expected:
        stamp = expected["meter_clock"]
        assert (
            reading.fields["meter_datetime"]
            == f"20{stamp[0:2]}-{stamp[2:4]}-{stamp[4:6]}T{stamp[6:8]}:{stamp[8:10]}:{stamp[10:12]}"
        )


def test_p1_with_a_bad_crc_is_rejected_and_without_crc_accepted():
    bad = corpus.by_id("dk-p1-kamstrup-omnia-badcrc-gh712")
    telegrams = P1TelegramReader().read(corpus.raw(bad)) + P1TelegramReader().flush()
    assert telegrams and not telegrams[0].is_valid
    with pytest.raises(ChecksumError):
        AutoDecoder().decode(corpus.raw(bad))
    assert ContentReader("p1").read(corpus.raw(bad)) == []
    for item_id in ("nl-dsmr30-iskra-nocrc", "nl-dsmr-warmtelink-unpadded-crc"):
        reader = P1TelegramReader()
        (telegram,) = reader.read(corpus.raw(corpus.by_id(item_id))) + reader.flush()
        assert telegram.is_valid


def test_dsmr_gas_channel_is_a_meter_of_its_own_and_an_empty_one_stays_by_code():
    reader = P1TelegramReader()
    (telegram,) = reader.read(corpus.raw(corpus.by_id("nl-dsmr50-iskra-2mbus"))) + reader.flush()
    reading = AutoDecoder().decode(telegram.raw)
    (gas,) = reading.sub_readings
    assert gas.obis["0-2:24.2.1.255"] == 246.138
    assert gas.units["0-2:24.2.1.255"] == "m³"
    assert gas.fields["gas_total"] == 246.138
    assert "0-2:24.2.1.255" not in reading.obis  # not the electricity meter's any more
    assert reading.obis["0-1:24.2.1.255"] == 0  # an empty channel: no unit, value 0 as sent
    assert "0-1:24.2.1.255" not in reading.units
    assert reading.fields["meter_id"] == "E0044007382246019"


def test_auto_detection_picks_each_framing():
    for item_id, framing in (
        ("no-aidon-6534-list2", "hdlc"),
        ("at-kaifa-tinetz-doc-testkey", "mbus"),
        ("nl-dsmr42-kaifa", "p1"),
    ):
        reader = ContentReader("auto")
        contents = reader.read(b"\x00\x13garbage" + corpus.raw(corpus.by_id(item_id)) + b"\r\n")
        assert reader.format == framing
        assert contents


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=10))
def test_random_bytes_in_every_reader_never_raise_foreign_errors(data, cuts):
    reader = ContentReader("auto")
    decoder = AutoDecoder(encryption_key=bytes(16))
    previous = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        for content in reader.read(data[previous:cut]):
            with contextlib.suppress(Han2MqttError):
                decoder.feed(content)
        previous = cut


@settings(max_examples=100, deadline=None)
@given(split=st.integers(1, 300))
def test_any_chunking_of_mbus_and_p1_streams_gives_the_same_contents(split):
    for item_id in ("at-kaifa-tinetz-doc-testkey", "se-p1-kamstrup-gh934"):
        stream = corpus.raw(corpus.by_id(item_id)) * 3 + b"\r\n"
        whole = ContentReader("auto").read(stream)
        reader = ContentReader("auto")
        parts = [
            c for i in range(0, len(stream), split) for c in reader.read(stream[i : i + split])
        ]
        assert parts == whole
        assert len(whole) == 3


@settings(max_examples=200, deadline=None)
@given(flips=st.dictionaries(st.integers(0, 10_000), st.integers(0, 7), min_size=1, max_size=4))
def test_mutated_ciphered_frames_never_decode_to_values(flips):
    item = corpus.by_id("dk-kamstrup-omnipower-enc-testkey")
    key, auth = _keys(item)
    apdu = bytearray(_ciphered_apdu(item))
    positions = {20 + position % (len(apdu) - 20): bit for position, bit in flips.items()}
    for position, bit in positions.items():
        apdu[position] ^= 1 << bit
    with pytest.raises(DecodeError):
        AutoDecoder(encryption_key=key, authentication_key=auth).decode(bytes(apdu))


@pytest.mark.parametrize("text", ["   ", "N/A", "-", "***"])
def test_a_p1_register_that_is_not_a_number_is_never_published(text: str):
    from han2mqtt.protocol.crc import crc16_arc  # noqa: PLC0415

    body = (
        b"/ISk5\\2MT382-1000\r\n\r\n"
        b"1-0:1.8.1(" + text.encode() + b"*kWh)\r\n"
        b"1-0:1.8.2(000456.789*kWh)\r\n"
        b"!"
    )
    telegram = body + f"{crc16_arc(body):04X}\r\n".encode()
    reading = AutoDecoder().decode(telegram)
    assert "active_power_import_total_t1" not in reading.fields
    assert "1-0:1.8.1.255" not in reading.obis
    assert reading.fields["active_power_import_total_t2"] == 456.789


def _telegram(power: str) -> bytes:
    from han2mqtt.protocol.crc import crc16_arc  # noqa: PLC0415

    body = b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.7.0(" + power.encode() + b"*kW)\r\n!"
    return body + f"{crc16_arc(body):04X}\r\n".encode()


@pytest.mark.parametrize(
    "damage",
    [
        _telegram("01.111")[:30],  # a telegram cut short: no "!"
        b"noise / with a slash\r\n",
        b"/half a header\r\n",
    ],
)
def test_p1_damage_never_costs_the_next_telegram(damage: bytes):
    for chunk in (1, 7, 4096):
        stream = damage + _telegram("02.222") + _telegram("03.333")
        reader = P1TelegramReader()
        telegrams = [
            t for i in range(0, len(stream), chunk) for t in reader.read(stream[i : i + chunk])
        ]
        assert [t.raw for t in telegrams if t.is_valid] == [
            _telegram("02.222")[:-2],
            _telegram("03.333")[:-2],
        ]


def test_p1_garbage_after_the_end_mark_is_a_bad_telegram_not_a_stall():
    reader = P1TelegramReader()
    bad = _telegram("01.111").replace(b"!", b"!ZZ", 1)
    telegrams = reader.read(bad + _telegram("02.222") * 50)
    assert not telegrams[0].is_valid
    assert sum(t.is_valid for t in telegrams) == 50
    assert len(reader._buffer) == 0


def _authenticated_only(plaintext: bytes, key: bytes, auth: bytes) -> bytes:
    """A general-glo-ciphering APDU with security control 0x10: data in clear, GCM tag over it."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

    title, counter = bytes.fromhex("4B464D1020000001"), (4711).to_bytes(4, "big")
    tag = AESGCM(key).encrypt(title + counter, b"", b"\x10" + auth + plaintext)[:12]
    body = b"\x10" + counter + plaintext + tag
    assert len(body) < 0x80
    return b"\xdb\x08" + title + bytes((len(body),)) + body


def test_authenticated_only_frames_have_their_tag_checked():
    plaintext = bytes.fromhex("0f40000000000101020309060100010700ff060000011802020f00161b")
    key, auth = bytes(range(16)), bytes(range(16, 32))
    apdu = _authenticated_only(plaintext, key, auth)
    reading = AutoDecoder(encryption_key=key, authentication_key=auth).decode(apdu)
    assert reading.fields["active_power_import"] == 280
    altered = apdu.replace(bytes.fromhex("00000118"), bytes.fromhex("00000119"))
    with pytest.raises(DecryptionError, match="tag mismatch"):
        AutoDecoder(encryption_key=key, authentication_key=auth).decode(altered)
    with pytest.raises(DecryptionError, match="tag mismatch"):
        AutoDecoder(encryption_key=key, authentication_key=bytes(16)).decode(apdu)
    # Without keys the data (in clear) still decodes: nothing can be checked then.
    assert AutoDecoder().decode(apdu).fields["active_power_import"] == 280
