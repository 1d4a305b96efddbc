"""The signals that stop the daemon cleanly, from the first moments of ``han2mqtt run``.

SIGTERM (``docker stop``, systemd), SIGINT (Ctrl-C) and SIGHUP (a closed terminal; there is no
reload) all mean the same: publish ``offline`` and exit 0.  The daemon's event loop handles them
once it runs; before that (loading the configuration and the modules takes a few hundred
milliseconds) :func:`catch_early` only records them, so that a signal at start-up ends in the same
clean stop instead of the default action, which kills the process without a word.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Final

__all__ = ["STOP_SIGNALS", "catch_early", "requested"]

STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_received: list[int] = []


def _record(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)


def requested() -> bool:
    """Whether a stop signal arrived while :func:`catch_early` was in force."""
    return bool(_received)


@contextlib.contextmanager
def catch_early() -> Iterator[None]:
    """Record stop signals (see :func:`requested`) until the block ends; then restore handlers."""
    _received.clear()
    previous = {signum: signal.signal(signum, _record) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
