"""docs/linky.md: its configuration examples load, and give the line the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from han2mqtt.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "linky.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)


def test_the_page_has_its_two_examples():
    assert len(_yaml_blocks()) >= 2


@pytest.mark.parametrize(
    ("index", "line"),
    [(0, (1200, "E", 7)), (1, (9600, "E", 7))],
)
def test_examples_give_the_modes_line(index: int, line: tuple[int, str, int], tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(_yaml_blocks()[index], encoding="utf-8")
    source = load_settings(path).source
    assert source.format == "tic"
    assert (source.baudrate, source.parity, source.bytesize) == line


def test_the_simulator_example_reads_tcp(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(_yaml_blocks()[2], encoding="utf-8")
    source = load_settings(path).source
    assert (source.type, source.host, source.port, source.format) == (
        "tcp",
        "127.0.0.1",
        8899,
        "tic",
    )


def test_a_line_set_by_hand_is_kept(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text("source:\n  format: tic\n  parity: N\n  bytesize: 8\n", encoding="utf-8")
    source = load_settings(path).source
    assert (source.baudrate, source.parity, source.bytesize) == (1200, "N", 8)


def test_environment_only_standard_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)  # no ./config.yaml
    monkeypatch.setenv("HAN2MQTT_SOURCE__FORMAT", "tic")
    monkeypatch.setenv("HAN2MQTT_SOURCE__BAUDRATE", "9600")
    source = load_settings().source
    assert (source.baudrate, source.parity, source.bytesize) == (9600, "E", 7)
