"""The YAML examples of docs/prices.md load as configurations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from han2mqtt.config import load_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "prices.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)

pytestmark = [pytest.mark.usefixtures("config_environment_cleared")]


def test_there_are_examples():
    assert len(BLOCKS) == 3


@pytest.mark.parametrize("block", BLOCKS)
def test_each_example_is_a_valid_configuration(tmp_path: Path, block: str):
    path = tmp_path / "config.yaml"
    path.write_text(block.replace("source: entsoe\n", "source: entsoe\n  token: t\n"))
    settings = load_settings(path)
    assert settings.prices.source != "none"
