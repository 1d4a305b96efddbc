"""``han2mqtt decode``: every input form, rejected frames on stderr with a reason.

Exit 0 when a frame decoded, 1 when none did (with a summary line); ``| head`` ends it quietly.
"""

from __future__ import annotations

import io
import json
import subprocess
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


def _decode(
    capsys: pytest.CaptureFixture[str], *args: str, code: int = 0
) -> tuple[list[dict[str, Any]], str]:
    assert main(["decode", *args]) == code
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
    readings, err = _decode(capsys, "deadbeef00", code=1)
    assert readings == []
    assert err.startswith("han2mqtt decode: no frame found (5 bytes")
    assert err.endswith("han2mqtt decode: 0 frames found, 0 decoded\n")


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
    readings, err = _decode(capsys, str(capture), code=1)
    assert readings == []
    assert reason in err


# -- the real command: exit codes, the summary line, a reader that goes away ---------------------


def _cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "han2mqtt", *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bytes_that_hold_no_frame_say_so_and_exit_1(tmp_path: Path):
    capture = tmp_path / "noise.bin"
    capture.write_bytes(b"\x55" * 300)
    result = _cli("decode", str(capture))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no frame found (300 bytes" in result.stderr
    assert "APDU tag" not in result.stderr


def test_an_empty_file_exits_1(tmp_path: Path):
    (tmp_path / "empty.bin").write_bytes(b"")
    result = _cli("decode", str(tmp_path / "empty.bin"))
    assert result.returncode == 1
    assert "no frame found (empty input" in result.stderr
    assert result.stderr.splitlines()[-1] == "han2mqtt decode: 0 frames found, 0 decoded"


def test_a_missing_or_wrong_key_exits_1_with_a_summary():
    item = corpus.by_id("dk-kamstrup-omnipower-enc-testkey")
    missing = _cli("decode", item["hex_or_text"])
    assert missing.returncode == 1
    assert missing.stderr.splitlines()[-1] == (
        "han2mqtt decode: 1 frame found, 0 decoded, 1 rejected (MissingKeyError: 1)"
    )
    wrong = _cli(
        "decode",
        "--key",
        "00" * 16,
        "--auth-key",
        item["auth_key_hex"],
        "-",
        stdin=(item["hex_or_text"].encode()),
    )
    assert wrong.returncode == 1
    assert "(DecryptionError: 1)" in wrong.stderr.splitlines()[-1]
    right = _cli(
        "decode", "--key", item["key_hex"], "--auth-key", item["auth_key_hex"], item["hex_or_text"]
    )
    assert right.returncode == 0
    assert right.stderr == ""  # everything decoded: no summary
    assert json.loads(right.stdout)["meter_manufacturer"]


def test_some_frames_rejected_exits_0_with_the_reasons_counted():
    corrupted = bytearray(AIDON_LIST1)
    corrupted[30] ^= 0x01
    result = _cli("decode", (bytes(corrupted) + AIDON_LIST1 + bytes(corrupted)).hex())
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr.splitlines()[-1] == (
        "han2mqtt decode: 3 frames found, 1 decoded, 2 rejected (bad FCS: 2)"
    )


def test_an_encrypted_p1_frame_decodes_and_a_bad_crc_is_a_note():
    from tests.protocol.test_encrypted_p1 import AUTH, KEY, _bad_crc, smarty_frame  # noqa: PLC0415

    result = _cli(
        "decode", "--key", KEY.hex(), "--auth-key", AUTH.hex(), smarty_frame(_bad_crc()).hex()
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["meter_id"] == "K8EG004046395507"
    assert result.stderr.startswith("han2mqtt decode: note: P1 telegram CRC mismatch")


def _cut_off_after_one_line(args: list[str], stdin: bytes = b"") -> tuple[int, str]:
    """Run the command into a pipe whose reader leaves after one line (``| head -1``)."""
    with subprocess.Popen(
        [sys.executable, "-m", "han2mqtt", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None
        process.stdin.write(stdin)
        process.stdin.close()
        assert process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read().decode()
        return process.wait(timeout=60), err


def test_decode_into_head_exits_quietly():
    stream = "\n".join(frame.hex() for frame in load_samples() * 2000).encode()
    code, err = _cut_off_after_one_line(["decode", "-"], stream)
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert code == 1


def test_demo_into_head_exits_quietly():
    code, err = _cut_off_after_one_line(["demo", "--forever", "--interval", "0.001"])
    assert "Traceback" not in err
    assert "Broken pipe" not in err
    assert "BrokenPipe" not in err
    assert code == 1


def test_unscaled_numbers_are_shown_apart(capsys):
    from tests.meters.test_public_captures import ITEMS  # noqa: PLC0415 - only this test

    item = ITEMS["cz-sagemcom-xt211-dlms-parser"]
    readings, _ = _decode(capsys, item["hex_or_text"])
    (reading,) = readings
    assert reading["meter_id"] == "5100005149"
    assert reading["unscaled"]["1-0:1.8.0.255"] == 4913794
    assert "active_power_import_total" not in reading
