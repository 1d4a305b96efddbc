"""``python -m han2mqtt.simulator``: the same as ``han2mqtt simulate``."""

import sys

from han2mqtt.cli import main

sys.exit(main(["simulate", *sys.argv[1:]]))
