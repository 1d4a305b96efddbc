"""What is wrong in the configuration ends the start with exit 2, before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import free_port
from tests.integration.helpers import han2mqtt

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, source: dict[str, object], state: Path) -> Path:
    config = {
        "source": source,
        # Nothing listens here: a check that ran after connecting would hang or say so instead.
        "mqtt": {"host": "127.0.0.1", "port": free_port()},
        "web": {"enabled": False},
        "state": {"dir": str(state)},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_a_missing_recording_is_an_error_at_start(tmp_path):
    missing = tmp_path / "nowhere.rec"
    config = _config(tmp_path, {"type": "file", "path": str(missing)}, tmp_path / "state")
    result = han2mqtt("run", "--config", str(config), timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"source.path: cannot read the recording {missing}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_state_dir_that_cannot_be_written_is_an_error_at_start(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    source = {"type": "tcp", "host": "127.0.0.1", "port": free_port()}
    config = _config(tmp_path, source, blocker / "state")
    result = han2mqtt("run", "--config", str(config), timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"state.dir: cannot write in {blocker / 'state'}" in result.stderr
    assert "Traceback" not in result.stderr
