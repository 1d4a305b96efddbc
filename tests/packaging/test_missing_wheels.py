"""scripts/missing_wheels.py: which dependencies pip can only build from source, asked of pip.

pip is told another machine's platform through its environment (``PIP_PLATFORM``,
``PIP_PYTHON_VERSION``: its ``--platform`` and ``--python-version`` options), so the answers for
32- and 64-bit ARM are checked here in seconds against the real package index; the armhf chroot in
test_arm.py checks the same on an emulated machine, through scripts/setup.sh.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
ARMV7 = "manylinux_2_17_armv7l manylinux2014_armv7l manylinux_2_31_armv7l"
AARCH64 = "manylinux_2_17_aarch64 manylinux2014_aarch64 manylinux_2_28_aarch64"


def _missing(platform: str | None, python: str, *extras: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_PLATFORM")}
    if platform:
        env |= {"PIP_PLATFORM": platform, "PIP_PYTHON_VERSION": python}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/missing_wheels.py"), *extras],
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
        check=False,
    )


@pytest.mark.parametrize(
    ("platform", "python", "expected"),
    [
        # 32-bit Raspberry Pi OS: crcmod-plus, cffi (through cryptography) and PyYAML have no
        # armv7l wheel.
        (ARMV7, "3.11", "crcmod-plus PyYAML cffi"),
        # 64-bit Pi OS: everything comes as a wheel (3.13: Debian trixie).
        (AARCH64, "3.13", ""),
        (None, "", ""),  # this machine
    ],
)
def test_it_names_the_dependencies_without_a_wheel(platform, python, expected):
    result = _missing(platform, python, "test")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == expected


def test_it_says_when_pip_cannot_tell(tmp_path: Path):
    """An index that does not answer is not a project without wheels: no compiler for that."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env |= {
        "PIP_CONFIG_FILE": os.devnull,  # none of this machine's pip configuration
        "PIP_INDEX_URL": f"http://127.0.0.1:{free_port()}/simple",  # nothing listens there
        "PIP_RETRIES": "0",  # pip then says nothing of the connection, only "no version"
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/missing_wheels.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "pip: no release of crcmod-plus found at all: is the index reachable?\n"
    )
