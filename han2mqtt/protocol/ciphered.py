"""Ciphered APDUs sent bare on a serial line, as Luxembourg's Smarty meters send their P1 port.

A Smarty wraps each DSMR telegram in a general-glo-ciphering APDU (IEC 62056-5-3 §9.5,
DLMS Green Book security) and writes it to the port with no HDLC or M-Bus framing around it::

    DB | 08 | system title (8) | length (A-XDR: n, or 81 n, or 82 n n) | SC | FC (4) | data | tag

There is no frame check sequence: the GCM tag is the only proof that a frame is whole and
genuine, and it is checked by the decoder (:mod:`han2mqtt.protocol.security`), which holds the
key.  :class:`CipheredApduReader` only finds where frames start and end, from the tag, the title
length and the announced length.  A frame cut short is recognised when the next frame's header
(the same tag and system title) appears inside its announced span, so the next frame is not lost
in it; a start that still turns out false is caught by the tag check and counted as a decryption
error, and the reader resumes after it.

Because an encrypted Kamstrup or Aidon HDLC frame carries the same APDU *inside* its HDLC
information field, this framing is never guessed (``source.format: auto`` does not try it): it
is chosen with ``source.format: apdu``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["CipheredApduReader", "CipheredReaderStats"]

_START: Final = b"\xdb\x08"
"""general-glo-ciphering (0xDB) and the length of the system title that follows (8)."""
_TITLE_END: Final = 10
"""Octets before the length: tag, title length, eight octets of system title."""
_LONG_FORM_1: Final = 0x81
_LONG_FORM_2: Final = 0x82
_SECURITY_CONTROLS: Final = frozenset((0x10, 0x20, 0x30))
"""Authentication only, encryption only, both; security suite 0, no key-set or compression bits."""
_MIN_BODY: Final = 1 + 4 + 12
"""Security control, frame counter and a 12-octet tag around at least nothing."""
MAX_BODY: Final = 16 * 1024 + 64
"""A DSMR telegram is at most 16 KiB (see :data:`han2mqtt.protocol.p1.MAX_TELEGRAM`)."""


@dataclass(slots=True)
class CipheredReaderStats:
    """Counters for diagnostics."""

    frames: int = 0
    skipped_bytes: int = 0


class CipheredApduReader:
    """Bytes in, whole ``DB 08 …`` APDUs out; incremental, bounded, never raises on noise."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.stats = CipheredReaderStats()

    def read(self, data: bytes) -> list[bytes]:
        """Consume a chunk; return the complete APDUs it finished, in order."""
        self._buffer += data
        frames: list[bytes] = []
        pos = 0
        while True:
            start = self._buffer.find(_START, pos)
            if start < 0:
                # Keep a last 0xDB: it may be the start of a frame split across chunks.
                keep = 1 if self._buffer.endswith(_START[:1]) else 0
                pos = len(self._buffer) - keep
                break
            frame = self._frame_at(start)
            if frame is None:  # not enough bytes yet for what the header announces
                pos = start
                break
            if not frame:  # no frame can start here: look further
                pos = start + 1
                continue
            frames.append(frame)
            pos = start + len(frame)
        self.stats.frames += len(frames)
        self.stats.skipped_bytes += pos - sum(map(len, frames))
        del self._buffer[:pos]
        return frames

    def _frame_at(self, start: int) -> bytes | None:
        """The frame starting at ``start``; ``None`` while incomplete, ``b""`` if none can."""
        buffer = self._buffer
        header = _TITLE_END + 1
        if len(buffer) < start + header:
            return None
        first = buffer[start + _TITLE_END]
        if first < _LONG_FORM_1:
            length = first
        elif first in {_LONG_FORM_1, _LONG_FORM_2}:
            octets = first - 0x80
            if len(buffer) < start + header + octets:
                return None
            length = int.from_bytes(buffer[start + header : start + header + octets], "big")
            header += octets
        else:
            return b""
        if not _MIN_BODY <= length <= MAX_BODY:
            return b""
        if len(buffer) > start + header and buffer[start + header] not in _SECURITY_CONTROLS:
            return b""
        end = start + header + length
        # A meter's frames all start with the same tag and system title: that header again
        # inside the announced span means this frame was cut short (a lost byte, a re-plugged
        # adapter), and the next one starts there.  By chance in ciphertext: 1 in 2**80.
        if buffer.find(buffer[start : start + _TITLE_END], start + 1, end) >= 0:
            return b""
        if len(buffer) < end:
            return None
        return bytes(buffer[start:end])
