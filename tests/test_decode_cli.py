"""``han2mqtt decode``: every input form, rejected frames on stderr with a reason, exit 0."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from han2mqtt.cli import main
from han2mqtt.simulator import load_samples
from tests import corpus

# Aidon list 1 from the README: 1661 W.
AIDON_LIST1 = bytes.fromhex(
    "7EA02A410883130413E6E7000F40000000000101020309060100010700FF060000067D02020F00161B1C057E"
)
# The seed's APDU (with LLC header, no HDLC frame): Aidon, 280 W.
SEED_APDU = "e6e7000f40000000000101020309060100010700ff060000011802020f00161b"
P1_TELEGRAM = (
    b"/ISk5\\2MT382-1000\r\n\r\n"
    b"1-3:0.2.8(50)\r\n"
    b"0-0:96.1.1(4B384547303034303436333935353037)\r\n"
    b"1-0:1.8.1(000123.456*kWh)\r\n"
    b"1-0:1.7.0(01.193*kW)\r\n"
    b"!"
)


def _p1(body: bytes) -> bytes:
    from han2mqtt.protocol.crc import crc16_arc  # noqa: PLC0415

    return body + f"{crc16_arc(body):04X}\r\n".encode()


def _decode(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[list[dict[str, Any]], str]:
    assert main(["decode", *args]) == 0
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_hex_argument(capsys):
    readings, err = _decode(capsys, AIDON_LIST1.hex())
    assert readings == [{"meter_manufacturer": "Aidon", "active_power_import": 1661}]
    assert err == ""


def test_bare_apdu_as_mqtt_relays_send_it(capsys):
    readings, _ = _decode(capsys, SEED_APDU)
    assert readings == [{"meter_manufacturer": "Aidon", "active_power_import": 280}]


def test_raw_capture_that_starts_inside_a_frame(capsys, tmp_path: Path):
    # cat /dev/ttyUSB0 > capture.bin starts wherever the meter happens to be.
    frames = load_samples()
    capture = tmp_path / "capture.bin"
    capture.write_bytes(frames[0][17:] + b"".join(frames) + frames[1][:20])
    readings, err = _decode(capsys, str(capture))
    assert len(readings) == len(frames)
    assert readings[1]["active_power_import"] > 0
    assert "truncated frame" in err or "bytes outside any frame" in err


def test_file_of_hex_lines_and_stdin(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    frames = load_samples()[:3]
    lines = "\n".join(frame.hex() for frame in frames) + "\n"
    (tmp_path / "capture.hex").write_text(lines)
    from_file, _ = _decode(capsys, str(tmp_path / "capture.hex"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(lines.encode())))
    from_stdin, _ = _decode(capsys, "-")
    assert from_file == from_stdin
    assert len(from_file) == 3


def test_raw_adds_obis_values_and_the_axdr_tree(capsys):
    readings, _ = _decode(capsys, "--raw", AIDON_LIST1.hex())
    (reading,) = readings
    assert reading["_obis"] == {"1-0:1.7.0.255": 1661}
    assert reading["_layout"]
    assert isinstance(reading["_axdr"], list)


def test_bad_frames_are_reported_on_stderr_with_the_reason(capsys):
    corrupted = bytearray(AIDON_LIST1)
    corrupted[30] ^= 0x01  # a payload bit: the FCS no longer matches
    readings, err = _decode(capsys, (bytes(corrupted) + AIDON_LIST1).hex())
    assert readings == [{"meter_manufacturer": "Aidon", "active_power_import": 1661}]
    assert "bad FCS" in err


def test_p1_capture_that_starts_inside_a_telegram(capsys, tmp_path: Path):
    telegram = _p1(P1_TELEGRAM)
    capture = tmp_path / "p1.txt"
    capture.write_bytes(telegram[40:] + telegram + telegram)
    readings, _ = _decode(capsys, str(capture))
    assert len(readings) == 2
    assert readings[0]["active_power_import"] == 1193
    assert readings[0]["active_power_import_total_t1"] == 123.456


def test_garbage_is_an_error_line_not_a_crash(capsys):
    readings, err = _decode(capsys, "deadbeef00")
    assert readings == []
    assert err.startswith("han2mqtt decode: ")
    assert err.count("\n") == 1


def test_a_long_hex_argument_is_data_not_a_file_name(capsys):
    list2 = load_samples()[0]
    assert len(list2.hex()) > 255  # longer than any file name may be
    readings, _ = _decode(capsys, list2.hex())
    assert readings[0]["meter_id"] == "7359992891237028"


def test_an_argument_that_is_neither_a_file_nor_hex_is_a_usage_error(capsys):
    assert main(["decode", "capture-that-does-not-exist.bin"]) == 2
    assert "no such file, and not hex" in capsys.readouterr().err


def test_raw_shows_the_deciphered_tree_of_an_encrypted_frame(capsys):
    item = corpus.by_id("dk-kamstrup-omnipower-enc-testkey")
    readings, _ = _decode(
        capsys,
        "--raw",
        "--key",
        item["key_hex"],
        "--auth-key",
        item["auth_key_hex"],
        item["hex_or_text"],
    )
    (reading,) = readings
    assert isinstance(reading["_axdr"], list)
    assert reading["_obis"]


def test_hex_files_may_have_comment_lines(capsys, tmp_path: Path):
    lines = "# a capture of an Aidon meter\n" + AIDON_LIST1.hex() + "\n  # the end\n"
    (tmp_path / "capture.hex").write_text(lines)
    readings, _ = _decode(capsys, str(tmp_path / "capture.hex"))
    assert readings == [{"meter_manufacturer": "Aidon", "active_power_import": 1661}]


def test_an_odd_number_of_hex_digits_is_a_usage_error(capsys, tmp_path: Path):
    (tmp_path / "capture.hex").write_text(AIDON_LIST1.hex()[:-1] + "\n")
    assert main(["decode", str(tmp_path / "capture.hex")]) == 2
    assert "odd number of digits" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("item_id", "reason"),
    [
        ("at-kaifa-ma309-vorarlberg-enc-gh539-1", "M-Bus telegram cut off at the end"),
        ("at-sagemcom-t210d-firmware-reassembled-gh155-2", "M-Bus segment 1 without the segments"),
        ("dk-p1-kamstrup-omnia-badcrc-gh712", "P1 telegram rejected (CRC mismatch): KAM5"),
    ],
)
def test_mbus_and_p1_rejections_are_listed_with_their_reason(
    capsys, tmp_path: Path, item_id, reason
):
    item = corpus.by_id(item_id)
    capture = tmp_path / "capture"
    capture.write_bytes(corpus.raw(item))
    readings, err = _decode(capsys, str(capture))
    assert readings == []
    assert reason in err
