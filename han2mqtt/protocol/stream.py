"""One reader for every framing a meter port uses: HDLC, M-Bus long frames, P1 telegrams.

:class:`ContentReader` turns raw bytes into *contents* ready for
:meth:`han2mqtt.AutoDecoder.feed`: HDLC information fields (segments joined), DLMS APDUs from
M-Bus telegrams (segments joined), whole P1 telegrams, or (``format="apdu"``) bare ciphered APDUs as
Luxembourg's Smarty meters send them (:mod:`han2mqtt.protocol.ciphered`).

With ``format="auto"`` every byte goes to all three readers, always: the framing is whichever
last delivered *evidence*, a frame that could not have come from noise (HDLC: header and frame
check sequences both good; M-Bus: a long frame whose header, checksum and stop byte agree; P1:
a CRC that checks, or for CRC-less DSMR 2.2/3 an identification line and an OBIS line).  Line
noise can therefore never lock a framing out: an adapter that sends ``/x!`` before the first HDLC
frame, or a port that is re-plugged to another meter, switches on the next good frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from han2mqtt.protocol.ciphered import CipheredApduReader
from han2mqtt.protocol.hdlc import HdlcFrameReader, HdlcSegmentAssembler
from han2mqtt.protocol.mbus import MbusApduAssembler, MbusFrameReader
from han2mqtt.protocol.p1 import P1TelegramReader

__all__ = ["ContentReader", "ContentStats", "Format"]

Format = Literal["auto", "hdlc", "mbus", "p1", "apdu"]
_FORMATS: Final[tuple[Format, ...]] = ("hdlc", "mbus", "p1")
"""What ``auto`` watches. Bare ciphered APDUs (``apdu``) carry no checksum that could be evidence,
and an encrypted HDLC frame holds the same bytes inside: they are only read when configured."""


@dataclass(slots=True)
class ContentStats:
    """Counters for diagnostics."""

    good: int = 0
    bad: int = 0


class ContentReader:
    """Bytes in, frame contents out, for one framing or whichever shows evidence (``auto``).

    Attributes:
        format: the configured framing, or with ``auto`` the one that delivered the last content
            (``"auto"`` until the first).
        stats: good contents and bad frames; with ``auto`` a bad frame counts only in the framing
            in use, since the readers of the others see the stream as noise.
    """

    def __init__(self, framing: Format = "auto", *, octet_stuffing: bool = False) -> None:
        self.format: Format = framing
        self._framings = _FORMATS if framing == "auto" else (framing,)
        self._hdlc = HdlcFrameReader(use_octet_stuffing=octet_stuffing)
        self._segments = HdlcSegmentAssembler()
        self._mbus = MbusFrameReader()
        self._telegram = MbusApduAssembler()
        self._p1 = P1TelegramReader()
        self._apdu = CipheredApduReader()
        self.stats = ContentStats()

    def read(self, data_chunk: bytes) -> list[bytes]:
        """Consume a chunk; return the complete contents, in order."""
        if len(self._framings) == 1:
            return self._read(self.format, data_chunk)
        contents: list[bytes] = []
        for framing in self._framings:
            found = self._read(framing, data_chunk)
            if found:
                self.format = framing  # evidence: this is what the port carries now
                contents += found
        return contents

    def _read(self, framing: Format, data: bytes) -> list[bytes]:
        contents: list[bytes] = []
        counted = framing == self.format
        if framing == "hdlc":
            for frame in self._hdlc.read(data):
                self._count(valid=frame.is_valid, counted=counted)
                content = self._segments.add(frame)
                if content:
                    contents.append(content)
        elif framing == "mbus":
            for mbus_frame in self._mbus.read(data):
                self._count(valid=mbus_frame.is_valid, counted=counted)
                apdu = self._telegram.add(mbus_frame)
                if apdu:
                    contents.append(apdu)
        elif framing == "apdu":
            contents = self._apdu.read(data)
            self.stats.good += len(contents)  # the tag check, in the decoder, is the real test
        else:
            for telegram in self._p1.read(data):
                # CRC-less noise between "/" and "!" is no telegram, even with p1 configured.
                plausible = telegram.is_plausible
                self._count(valid=plausible, counted=counted)
                if plausible:
                    contents.append(telegram.raw)
        return contents

    def _count(self, *, valid: bool, counted: bool) -> None:
        if valid:
            self.stats.good += 1
        elif counted:
            self.stats.bad += 1
