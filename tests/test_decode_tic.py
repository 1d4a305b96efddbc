"""``han2mqtt decode`` of TIC captures: bytes as read from the port (7-bit) or text, both modes."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from han2mqtt.cli import main
from tests import tic


def _decode(
    capsys: pytest.CaptureFixture[str], data: bytes, monkeypatch: pytest.MonkeyPatch, code: int
) -> tuple[list[dict[str, Any]], str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="latin-1"))
    assert main(["decode", "-"]) == code
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_text_capture_that_starts_inside_a_frame(capsys, monkeypatch):
    data = tic.text(tic.HISTORIQUE_CUT).encode()
    readings, err = _decode(capsys, data, monkeypatch, 0)
    assert readings == [
        {
            "meter_id": "021528603314",
            "active_power_import_total_t1": 723.392,
            "active_power_import_total_t2": 1742.238,
            "current_l1": 1,
            "current_tariff": "HP",
        }
    ]
    assert "TIC frame rejected" in err  # the six groups before ADCO


def test_port_bytes_with_the_parity_bit_and_an_interrupted_frame(capsys, monkeypatch, tmp_path):
    whole = tic.wire(tic.HISTORIQUE)
    capture = tmp_path / "linky.bin"
    capture.write_bytes(tic.with_parity(whole[25:] + whole + whole[:50] + b"\x04" + whole))
    assert main(["decode", str(capture)]) == 0
    captured = capsys.readouterr()
    readings = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["meter_id"] for r in readings] == ["111111111111", "111111111111"]
    assert all(r["apparent_power_import"] == 1890 for r in readings)
    assert "interrupted" in captured.err


def test_a_standard_frame_whose_meter_id_fails_is_rejected(capsys, monkeypatch):
    readings, err = _decode(capsys, tic.text(tic.STANDARD).encode(), monkeypatch, 1)
    assert readings == []
    assert "TIC frame without meter id: 1" in err


def test_a_bad_group_is_a_note_and_the_frame_decodes(capsys, monkeypatch):
    lines = tic.text(tic.HISTORIQUE).splitlines()
    lines[8] = "PAPP 01890 4"  # PAPP's checksum is 3: a corrupted group
    readings, err = _decode(capsys, "\n".join(lines).encode(), monkeypatch, 0)
    assert len(readings) == 1
    assert "apparent_power_import" not in readings[0]
    assert readings[0]["active_power_import_total_t1"] == 52890.47
    assert "1 TIC group with a bad checksum dropped" in err


STATED: dict[str, tuple[str, float | None]] = {
    "meter_id": ("meter_id", None),
    "HCHC_Wh": ("active_power_import_total_t1", 1000),
    "HCHP_Wh": ("active_power_import_total_t2", 1000),
    "EAST_Wh": ("active_power_import_total", 1000),
    "EASF01_Wh": ("active_power_import_total_t1", 1000),
    **{
        f"{label}_Wh": (f"active_power_import_total_t{n}", 1000)
        for n, label in enumerate(
            ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"), start=1
        )
    },
    "IINST_A": ("current_l1", 1),
    "IRMS1_A": ("current_l1", 1),
    "IRMS2_A": ("current_l2", 1),
    "IRMS3_A": ("current_l3", 1),
    "URMS1_V": ("voltage_l1", 1),
    "URMS2_V": ("voltage_l2", 1),
    "URMS3_V": ("voltage_l3", 1),
    "PAPP_VA": ("apparent_power_import", 1),
    "SINSTS_VA": ("apparent_power_import", 1),
}
"""A source's stated value → the field it becomes and the divisor (Wh → kWh).  Labels not listed
(ISOUSC, IMAX, PREF, EASD01, SINSTS1…3, DATE, STGE, NGTF) are not fields, or not this way."""


def _stated(reading: dict[str, Any], expected: dict[str, Any]) -> None:
    if "DEMAIN" in expected:
        assert (
            reading["tempo_tomorrow"]
            == {"BLEU": "blue", "BLAN": "white", "ROUG": "red"}[expected["DEMAIN"]]
        )
    if "PTEC" in expected:
        assert reading["current_tariff"] == expected["PTEC"].strip(".")
    for key, value in expected.items():
        if key not in STATED or STATED[key][0] not in reading:
            continue  # absent from this frame (a cut capture), never published as 0
        name, divisor = STATED[key]
        assert reading[name] == (value if divisor is None else value / divisor), key


@pytest.mark.parametrize("item", tic.items(), ids=lambda item: item["id"])
def test_every_vector_through_decode_stdin(capsys, monkeypatch, item):
    data = str(item["hex_or_text"]).encode()
    expect_reading = "NEGATIVE" not in item["notes"]
    readings, _ = _decode(capsys, data, monkeypatch, 0 if expect_reading else 1)
    assert bool(readings) == expect_reading
    for reading in readings:
        assert not {"active_power_import", "active_power_export"} & set(reading)
        _stated(reading, item["expected"])


def test_the_standard_vector_values_with_a_readable_meter_id(capsys, monkeypatch):
    lines = tic.text(tic.STANDARD).splitlines()
    text = "\n".join([tic.group("ADSC", "021728123456", standard=True), *lines[1:]])
    (reading,), _ = _decode(capsys, text.encode(), monkeypatch, 0)
    expected = dict(next(i for i in tic.items() if i["id"] == tic.STANDARD)["expected"])
    assert expected.pop("meter_id", None) is None
    _stated(reading, expected)
    assert reading["active_power_import_total"] == 28138.222
    assert reading["apparent_power_import"] == 1407


@pytest.mark.parametrize("item", tic.items(), ids=lambda item: item["id"])
def test_no_vector_publishes_apparent_power_as_active(capsys, monkeypatch, item, tmp_path: Path):
    data = tic.with_parity(b"".join(tic.frames_from_text(item["hex_or_text"])))
    capture = tmp_path / "capture.bin"
    capture.write_bytes(data)
    main(["decode", str(capture)])
    for line in capsys.readouterr().out.splitlines():
        reading = json.loads(line)
        assert "active_power_import" not in reading
        assert "active_power_export" not in reading
        _stated(reading, item["expected"])


def test_port_bytes_of_a_frame_without_meter_id_say_why(capsys, tmp_path):
    capture = tmp_path / "linky.bin"
    capture.write_bytes(tic.with_parity(tic.wire(tic.STANDARD)))
    assert main(["decode", str(capture)]) == 1
    assert "TIC frame rejected" in capsys.readouterr().err
