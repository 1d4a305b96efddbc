"""docs/history.md: its YAML is a valid configuration, and says the true defaults."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from han2mqtt.config import Settings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "history.md"


def test_the_yaml_on_the_page_is_valid_and_the_defaults():
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        settings = Settings.model_validate(yaml.safe_load(block))
        assert settings.history == Settings.model_validate({}).history
