"""One reader for every framing a meter port uses: HDLC, M-Bus long frames, P1 telegrams.

:class:`ContentReader` turns raw bytes into *contents* ready for
:meth:`han2mqtt.AutoDecoder.feed`: HDLC information fields (segments joined), DLMS APDUs from
M-Bus telegrams (segments joined), or whole P1 telegrams.  With ``format="auto"`` it runs all three
until one of them delimits a valid frame, then keeps to that one: a port carries one framing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from han2mqtt.protocol.hdlc import HdlcFrameReader, HdlcSegmentAssembler
from han2mqtt.protocol.mbus import MbusApduAssembler, MbusFrameReader
from han2mqtt.protocol.p1 import P1TelegramReader

__all__ = ["ContentReader", "ContentStats", "Format"]

Format = Literal["auto", "hdlc", "mbus", "p1"]
_FORMATS: Final = ("hdlc", "mbus", "p1")


@dataclass(slots=True)
class ContentStats:
    """Counters for diagnostics."""

    good: int = 0
    bad: int = 0


class ContentReader:
    """Bytes in, frame contents out, for one framing or the first one that shows up."""

    def __init__(self, framing: Format = "auto", *, octet_stuffing: bool = False) -> None:
        self.format: Format = framing
        self._hdlc = HdlcFrameReader(use_octet_stuffing=octet_stuffing)
        self._segments = HdlcSegmentAssembler()
        self._mbus = MbusFrameReader()
        self._telegram = MbusApduAssembler()
        self._p1 = P1TelegramReader()
        self.stats = ContentStats()

    def read(self, data_chunk: bytes) -> list[bytes]:
        """Consume a chunk; return the complete contents, in order."""
        if self.format != "auto":
            return self._read(self.format, data_chunk)
        for framing in _FORMATS:
            contents = self._read(framing, data_chunk)
            if contents:
                self.format = framing  # locked: the other readers are not fed any more
                return contents
        return []

    def _read(self, framing: str, data: bytes) -> list[bytes]:
        contents: list[bytes] = []
        if framing == "hdlc":
            for frame in self._hdlc.read(data):
                self._count(valid=frame.is_valid)
                content = self._segments.add(frame)
                if content:
                    contents.append(content)
        elif framing == "mbus":
            for mbus_frame in self._mbus.read(data):
                self._count(valid=mbus_frame.is_valid)
                apdu = self._telegram.add(mbus_frame)
                if apdu:
                    contents.append(apdu)
        else:
            for telegram in self._p1.read(data):
                self._count(valid=telegram.is_valid)
                if telegram.is_valid:
                    contents.append(telegram.raw)
        return contents

    def _count(self, *, valid: bool) -> None:
        if valid:
            self.stats.good += 1
        else:
            self.stats.bad += 1
