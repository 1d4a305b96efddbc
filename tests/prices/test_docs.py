"""The YAML examples of docs/prices.md load as configurations."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from han2mqtt.config import load_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "prices.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HAN2MQTT_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.setattr("han2mqtt.config.SECRET_DIRECTORIES", ())


def test_there_are_examples():
    assert len(BLOCKS) == 3


@pytest.mark.parametrize("block", BLOCKS)
def test_each_example_is_a_valid_configuration(tmp_path: Path, block: str):
    path = tmp_path / "config.yaml"
    path.write_text(block.replace("source: entsoe\n", "source: entsoe\n  token: t\n"))
    settings = load_settings(path)
    assert settings.prices.source != "none"
