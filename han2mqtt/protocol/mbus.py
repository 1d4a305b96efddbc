"""M-Bus long frames (EN 13757-2 §5) carrying DLMS, as Austrian and Polish meters push them.

Wire layout of a long frame::

    68 | L | L | 68 | C | A | CI | data (L-3 octets) | checksum | 16

L counts C, A, CI and the data; the checksum is the 8-bit sum of the same octets.  For DLMS over
M-Bus (IEC 62056-7-3 / the wired M-Bus profile used by Kaifa, Sagemcom and Landis+Gyr), the CI
field holds a segment number in bits 0-3 and the "last segment" flag in bit 4, and the data starts
with the source and destination TSAP (two octets) before the APDU fragment.  A telegram of more
than one frame (the usual 256-octet first frame plus a short second one) is joined by
:class:`MbusApduAssembler`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["MbusApduAssembler", "MbusFrame", "MbusFrameReader", "MbusReaderStats"]

START: Final = 0x68
STOP: Final = 0x16
_HEADER: Final = 4
_TRAILER: Final = 2
_MIN_LENGTH: Final = 3
"""C, A and CI."""
LAST_SEGMENT: Final = 0x10
SEGMENT_NUMBER: Final = 0x0F
_TSAP_OCTETS: Final = 2
_MAX_APDU: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class MbusFrame:
    """One long frame, valid or not."""

    raw: bytes
    is_valid: bool

    @property
    def control(self) -> int:
        """The C field."""
        return self.raw[4]

    @property
    def address(self) -> int:
        """The A field."""
        return self.raw[5]

    @property
    def ci(self) -> int:
        """The CI field: segment number and last-segment flag for DLMS telegrams."""
        return self.raw[6]

    @property
    def data(self) -> bytes:
        """The octets after CI, before the checksum."""
        return self.raw[7:-_TRAILER]


@dataclass(slots=True)
class MbusReaderStats:
    """Counters for diagnostics."""

    frames_good: int = 0
    frames_bad: int = 0
    bytes_discarded: int = 0


class MbusFrameReader:
    """Incremental reader of long frames; resumes inside a damaged frame like the HDLC reader."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.stats = MbusReaderStats()

    def read(self, data_chunk: bytes | bytearray | memoryview) -> list[MbusFrame]:
        """Add a chunk; return the frames it completed."""
        buf = self._buffer
        buf += data_chunk
        frames: list[MbusFrame] = []
        pos = 0
        while True:
            start = buf.find(START, pos)
            if start < 0:
                self.stats.bytes_discarded += len(buf) - pos
                pos = len(buf)
                break
            self.stats.bytes_discarded += start - pos
            pos = start
            if len(buf) - start < _HEADER:
                break
            length = buf[start + 1]
            if buf[start + 2] != length or buf[start + 3] != START or length < _MIN_LENGTH:
                pos = start + 1
                continue
            end = start + _HEADER + length + _TRAILER
            if end > len(buf):
                break
            body = buf[start + _HEADER : end - _TRAILER]
            valid = sum(body) & 0xFF == buf[end - 2] and buf[end - 1] == STOP
            frames.append(MbusFrame(bytes(buf[start:end]), valid))
            if valid:
                self.stats.frames_good += 1
                pos = end
            else:
                self.stats.frames_bad += 1
                pos = start + 1  # an intact frame may start inside the damaged one
        del buf[:pos]
        return frames

    def flush(self) -> list[MbusFrame]:
        """End of stream: drop what is buffered (an unfinished frame is counted as discarded)."""
        self.stats.bytes_discarded += len(self._buffer)
        self._buffer.clear()
        return []


class MbusApduAssembler:
    """Join the APDU fragments of a DLMS telegram: segments 0, 1, ... up to the last flag."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._next = 0
        self._size = 0
        self.telegrams_dropped = 0

    @property
    def expected_segment(self) -> int:
        """The segment number the next frame must carry (0: a telegram's first)."""
        return self._next

    @property
    def pending(self) -> bool:
        """True while a telegram has begun and its last segment has not come."""
        return bool(self._parts)

    def add(self, frame: MbusFrame) -> bytes | None:
        """Add a frame; return the whole APDU when ``frame`` ends a telegram, else None."""
        if not frame.is_valid or len(frame.data) < _TSAP_OCTETS:
            self._drop()
            return None
        number = frame.ci & SEGMENT_NUMBER
        if number != self._next:
            self._drop()
            if number != 0:
                return None
        self._parts.append(frame.data[_TSAP_OCTETS:])
        self._size += len(frame.data)
        self._next = number + 1
        if self._size > _MAX_APDU:
            self._drop()
            return None
        if not frame.ci & LAST_SEGMENT:
            return None
        apdu = b"".join(self._parts)
        self._parts.clear()
        self._next = 0
        self._size = 0
        return apdu

    def _drop(self) -> None:
        if self._parts:
            self.telegrams_dropped += 1
        self._parts.clear()
        self._next = 0
        self._size = 0
