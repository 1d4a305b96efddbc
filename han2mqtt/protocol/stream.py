"""One reader for every framing a meter port uses: HDLC, M-Bus long frames, P1 telegrams, TIC.

:class:`ContentReader` turns raw bytes into *contents* ready for
:meth:`han2mqtt.AutoDecoder.feed`: HDLC information fields (segments joined), DLMS APDUs from
M-Bus telegrams (segments joined), whole P1 telegrams, TIC frames (STX to ETX), or
(``format="apdu"``) bare ciphered APDUs as Luxembourg's Smarty meters send them
(:mod:`han2mqtt.protocol.ciphered`).

With ``format="auto"`` every byte goes to all four readers, always: the framing is whichever
last delivered *evidence*, a frame that could not have come from noise (HDLC: header and frame
check sequences both good; M-Bus: a long frame whose header, checksum and stop byte agree; P1:
a CRC that checks, or for CRC-less DSMR 2.2/3 an identification line and an OBIS line; TIC: a
frame with its meter id and at least :data:`TIC_EVIDENCE` groups whose checksums match).  Line
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
from han2mqtt.protocol.tic import TicFrame, TicFrameReader

__all__ = ["TIC_EVIDENCE", "ContentReader", "ContentStats", "Format", "is_tic_evidence"]

Format = Literal["auto", "hdlc", "mbus", "p1", "apdu", "tic"]
_FORMATS: Final[tuple[Format, ...]] = ("hdlc", "mbus", "p1", "tic")
"""What ``auto`` watches. Bare ciphered APDUs (``apdu``) carry no checksum that could be evidence,
and an encrypted HDLC frame holds the same bytes inside: they are only read when configured."""


@dataclass(slots=True)
class ContentStats:
    """Counters for diagnostics."""

    good: int = 0
    bad: int = 0


TIC_EVIDENCE: Final = 3
"""Good groups a TIC frame needs to count (one checksum is 6 bits: noise matches 1 in 64)."""
_TIC_IDS: Final = frozenset({"ADCO", "ADSC"})


def is_tic_evidence(frame: TicFrame) -> bool:
    """A frame noise cannot forge: its meter id and :data:`TIC_EVIDENCE` good groups."""
    return len(frame.groups) >= TIC_EVIDENCE and any(g.label in _TIC_IDS for g in frame.groups)


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
        self._tic = TicFrameReader()
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
        counted = framing == self.format
        if framing == "hdlc":
            return self._read_hdlc(data, counted=counted)
        if framing == "mbus":
            return self._read_mbus(data, counted=counted)
        if framing == "tic":
            return self._read_tic(data, counted=counted)
        if framing == "apdu":
            contents = self._apdu.read(data)
            self.stats.good += len(contents)  # the tag check, in the decoder, is the real test
            return contents
        contents = []
        for telegram in self._p1.read(data):
            # CRC-less noise between "/" and "!" is no telegram, even with p1 configured.
            plausible = telegram.is_plausible
            self._count(valid=plausible, counted=counted)
            if plausible:
                contents.append(telegram.raw)
        return contents

    def _read_hdlc(self, data: bytes, *, counted: bool) -> list[bytes]:
        contents: list[bytes] = []
        for frame in self._hdlc.read(data):
            self._count(valid=frame.is_valid, counted=counted)
            content = self._segments.add(frame)
            if content:
                contents.append(content)
        return contents

    def _read_mbus(self, data: bytes, *, counted: bool) -> list[bytes]:
        contents: list[bytes] = []
        for mbus_frame in self._mbus.read(data):
            self._count(valid=mbus_frame.is_valid, counted=counted)
            apdu = self._telegram.add(mbus_frame)
            if apdu:
                contents.append(apdu)
        return contents

    def _read_tic(self, data: bytes, *, counted: bool) -> list[bytes]:
        contents: list[bytes] = []
        for frame in self._tic.read(data):
            # A frame without its meter id is no reading (its group may have been the bad one).
            evidence = is_tic_evidence(frame)
            self._count(valid=evidence, counted=counted)
            if evidence:
                contents.append(frame.raw)
        return contents

    def _count(self, *, valid: bool, counted: bool) -> None:
        if valid:
            self.stats.good += 1
        elif counted:
            self.stats.bad += 1
