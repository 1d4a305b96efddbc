r"""Text that came off the wire, made safe for a log line.

Meter ids (and the text of errors about a frame) are chosen by whoever sends the bytes: an id with
``\n`` would forge a log line, ANSI escapes would repaint a terminal, and a 10 kB id would flood
the journal.  :func:`loggable` escapes every character that is not printable ASCII, the way
Python's string literals do, and cuts what is too long.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LOGGABLE_MAX", "loggable"]

LOGGABLE_MAX: Final = 64
"""Characters of a value kept in a log line; longer ones end in ``...``."""


def loggable(text: object, limit: int = LOGGABLE_MAX) -> str:
    r"""``text`` with newlines, control and non-ASCII characters escaped (``\n``, ``\x1b``).

    Ordinary meter ids (digits and letters) come out unchanged.
    """
    raw = str(text)
    cut = len(raw) > limit
    if cut:
        raw = raw[:limit]
    if raw.isascii() and raw.isprintable() and "\\" not in raw:
        escaped = raw
    else:
        escaped = raw.encode("unicode_escape").decode("ascii")
    return escaped + "..." if cut else escaped
