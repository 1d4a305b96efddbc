"""Encrypted P1 (Luxembourg's Smarty): a DSMR telegram inside general-glo-ciphering."""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from han2mqtt import AutoDecoder
from han2mqtt.bridge import Bridge, PrintPublisher
from han2mqtt.config import Settings
from han2mqtt.errors import ApduError, DecryptionError
from han2mqtt.model import MeterReading
from han2mqtt.protocol.p1 import P1TelegramReader
from tests import corpus

KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AUTH = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
"""Smarty meters authenticate with this fixed key: the AAD is 0x30 ‖ AUTH."""
TITLE = bytes.fromhex("5341473030303031")  # "SAG0" + serial
COUNTER = 0x0000BC61


def _telegram() -> bytes:
    """A real DSMR 5 telegram from the corpus, CRC line included."""
    reader = P1TelegramReader()
    (telegram,) = reader.read(corpus.raw(corpus.by_id("nl-dsmr50-iskra"))) + reader.flush()
    assert telegram.crc_present and telegram.crc_ok
    return telegram.raw + b"\r\n"


def smarty_frame(plaintext: bytes, *, key: bytes = KEY, auth: bytes = AUTH) -> bytes:
    """0xDB, system title, length (0x82 + 2 octets), SC 0x30, frame counter, data, 12-octet tag."""
    counter = COUNTER.to_bytes(4, "big")
    sealed = AESGCM(key).encrypt(TITLE + counter, plaintext, b"\x30" + auth)
    body = b"\x30" + counter + sealed[:-16] + sealed[-16:-4]  # the tag truncated to 12 octets
    return b"\xdb\x08" + TITLE + b"\x82" + len(body).to_bytes(2, "big") + body


def _plain_reading() -> MeterReading:
    return AutoDecoder().decode(_telegram())


def test_a_verified_smarty_frame_decodes_to_the_telegram_reading():
    decoder = AutoDecoder(encryption_key=KEY, authentication_key=AUTH)
    reading = decoder.decode(smarty_frame(_telegram()))
    plain = _plain_reading()
    assert reading.fields == plain.fields
    assert reading.obis == plain.obis
    assert reading.fields["active_power_import"] == 244
    assert decoder.last_note is None


def test_without_the_authentication_key_a_good_crc_still_decodes():
    reading = AutoDecoder(encryption_key=KEY).decode(smarty_frame(_telegram()))
    assert reading.fields == _plain_reading().fields


def _bad_crc() -> bytes:
    telegram = _telegram()
    end = telegram.rindex(b"!")
    crc = int(telegram[end + 1 : end + 5], 16)
    return telegram[: end + 1] + f"{crc ^ 0x1234:04X}\r\n".encode()


def test_once_the_tag_verified_a_crc_mismatch_is_a_note_not_a_rejection():
    decoder = AutoDecoder(encryption_key=KEY, authentication_key=AUTH)
    reading = decoder.decode(smarty_frame(_bad_crc()))
    assert reading.fields == _plain_reading().fields
    assert decoder.last_note is not None
    assert "CRC mismatch" in decoder.last_note
    assert decoder.stats.notes == 1
    decoder.decode(smarty_frame(_telegram()))
    assert decoder.last_note is None  # a note belongs to its frame


def test_without_a_tag_check_a_crc_mismatch_is_still_a_rejection():
    with pytest.raises(DecryptionError, match="CRC mismatch"):
        AutoDecoder(encryption_key=KEY).decode(smarty_frame(_bad_crc()))


def test_a_verified_plaintext_that_is_neither_apdu_nor_telegram_says_so():
    frame = smarty_frame(b"\xc4\x01\x81\x00\x09\x04abcd")  # a get-response: not pushed data
    with pytest.raises(ApduError, match="neither") as caught:
        AutoDecoder(encryption_key=KEY, authentication_key=AUTH).decode(frame)
    assert "wrong" not in str(caught.value)
    assert "0xc4" in str(caught.value)


def test_a_wrong_key_is_still_a_wrong_key():
    frame = smarty_frame(_telegram())
    wrong = bytes(b ^ 0x5A for b in KEY)
    with pytest.raises(DecryptionError, match="tag mismatch"):
        AutoDecoder(encryption_key=wrong, authentication_key=AUTH).decode(frame)
    with pytest.raises(DecryptionError, match="wrong encryption key"):
        AutoDecoder(encryption_key=wrong).decode(frame)


def test_the_bridge_logs_the_note_and_publishes_the_reading(caplog: pytest.LogCaptureFixture):
    lines: list[str] = []
    settings = Settings.model_validate(
        {"meter": {"encryption_key": KEY.hex(), "authentication_key": AUTH.hex()}}
    )
    bridge = Bridge(settings, PrintPublisher("han2mqtt", lines.append), lambda: 100.0)
    with caplog.at_level(logging.INFO, logger="han2mqtt"):
        bridge.handle_content(smarty_frame(_bad_crc()))
    assert bridge.decode_errors == 0
    assert any("CRC mismatch" in record.getMessage() for record in caplog.records)
    assert any(line.startswith("han2mqtt/K8EG004046395507/active_power_import ") for line in lines)
