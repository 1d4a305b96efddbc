"""``python -m han2mqtt``: the same as the ``han2mqtt`` command."""

import sys

from han2mqtt.cli import main

sys.exit(main())
