"""docs/meter-support.md: its YAML examples are valid configuration and mean what it says."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from han2mqtt.config import Settings
from han2mqtt.meters.pushprofiles import PROFILES

PAGE = Path(__file__).resolve().parents[1] / "docs" / "meter-support.md"


def test_every_yaml_example_is_a_valid_configuration():
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert blocks
    for block in blocks:
        settings = Settings.model_validate(yaml.safe_load(block))
        assert settings.meter.energy_resolution == 1


def test_every_named_profile_is_documented():
    text = PAGE.read_text(encoding="utf-8")
    for profile in PROFILES:
        assert f"`{profile.name}`" in text
