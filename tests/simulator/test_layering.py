"""The simulator knows nothing of the command line or the daemon."""

from __future__ import annotations

import subprocess
import sys


def test_the_simulator_imports_neither_the_cli_nor_the_daemon():
    probe = (
        "import sys, han2mqtt.simulator; "
        "print(sorted(m for m in sys.modules if m.startswith('han2mqtt.') and "
        "m.split('.')[1] in ('cli', 'daemon', 'commands', 'config', 'bridge')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
