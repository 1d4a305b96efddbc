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
        expected = item["expected"]
        assert reading["meter_id"] == expected["meter_id"]
        if "PAPP_VA" in expected and "apparent_power_import" in reading:
            assert reading["apparent_power_import"] == expected["PAPP_VA"]
        assert reading["active_power_import_total_t1"] == expected["HCHC_Wh"] / 1000
