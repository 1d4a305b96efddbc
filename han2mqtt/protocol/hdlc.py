"""HDLC frame reader for the meter's push stream (IEC 62056-46, frame format type 3).

Wire layout of one frame (ISO/IEC 13239 as profiled by IEC 62056-46 §6.4)::

    7E | format (2) | dest (1-4) | src (1-4) | control (1) | HCS (2) | info (n) | FCS (2) | 7E

* The format field is ``1010 S LLL LLLLLLLL``: type 0xA, segmentation bit S, 11-bit length L
  counting every byte between the flags.
* Addresses are extensible: each byte's least significant bit is 1 on the last byte.
* HCS covers format..control; FCS covers format..info; both CRC-16/X.25, sent LSB first.
  A frame without an information field has no HCS, only the FCS.

HAN meters do **not** octet-stuff: payloads contain 0x7E and 0x7D as data.  The reader therefore
finds the end of a frame from the length field, never by scanning for the closing flag, and accepts
a candidate start only when the format byte, the address structure and the HCS all agree.  After
garbage, a truncated or a corrupted frame it reports the damaged frame once and resumes the search
*inside* the damaged span, so that no intact frame after the damage is lost.  Octet-stuffing
(``7D xx`` → ``xx ^ 0x20``) is an opt-in for links that use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from han2mqtt.protocol.crc import crc16_x25

__all__ = ["HdlcFrame", "HdlcFrameReader", "HdlcReaderStats", "HdlcSegmentAssembler"]

FLAG: Final = 0x7E
"""Opening and closing flag sequence (IEC 62056-46 §6.4.1)."""
ESCAPE: Final = 0x7D
"""Control escape octet, used only by octet-stuffed links (ISO/IEC 13239 §4.5.2)."""
_ESCAPE_XOR: Final = 0x20
FORMAT_TYPE_3: Final = 0xA
"""Frame format type 3, the only one IEC 62056-46 uses (high nibble of the format field)."""
_SEGMENTATION_BIT: Final = 0x08
_LENGTH_HIGH_MASK: Final = 0x07
_MAX_ADDRESS_BYTES: Final = 4
_MIN_FRAME_LENGTH: Final = 7
"""format(2) + dest(1) + src(1) + control(1) + FCS(2): the shortest frame type 3 allows."""
_MAX_BUFFER: Final = 64 * 1024
"""A stuffed-mode buffer without a flag for this long is garbage; drop it rather than grow."""


class HdlcFrame:
    """One HDLC frame as read from the stream, valid or not.

    ``raw`` holds the bytes between the flags.  Frames cut short by the stream
    (``is_expected_length`` false) keep what arrived.  Attributes are read-only by convention;
    the class uses ``__slots__`` because the reader creates one per frame on the hot path.
    """

    __slots__ = (
        "_raw",
        "control",
        "destination_address",
        "frame_format",
        "header_check_sequence",
        "is_expected_length",
        "is_good_ffc",
        "is_good_hcs",
        "payload",
        "source_address",
    )

    def __init__(  # noqa: PLR0913 - a frame has this many parts
        self,
        raw: bytes,
        *,
        destination_address: bytes,
        source_address: bytes,
        control: int,
        header_check_sequence: int | None,
        payload: bytes,
        is_good_hcs: bool,
        is_good_ffc: bool,
        is_expected_length: bool,
    ) -> None:
        self._raw = raw
        self.frame_format = (raw[0] << 8) | raw[1] if len(raw) >= 2 else 0
        self.destination_address = destination_address
        self.source_address = source_address
        self.control = control
        self.header_check_sequence = header_check_sequence
        self.payload = payload
        self.is_good_hcs = is_good_hcs
        self.is_good_ffc = is_good_ffc
        self.is_expected_length = is_expected_length

    @property
    def raw(self) -> bytes:
        """The bytes between the flags (format field .. FCS)."""
        return self._raw

    @property
    def frame_length(self) -> int:
        """The length announced by the format field (bytes between the flags)."""
        return self.frame_format & 0x7FF

    @property
    def segmented(self) -> bool:
        """True when the segmentation bit is set: more segments of this APDU follow."""
        return bool(self.frame_format & 0x0800)

    @property
    def frame_check_sequence(self) -> int | None:
        """The FCS as sent, or None when the frame was cut short."""
        if not self.is_expected_length or len(self._raw) < 2:
            return None
        return self._raw[-2] | (self._raw[-1] << 8)

    @property
    def information(self) -> bytes:
        """Alias of :attr:`payload` (the information field)."""
        return self.payload

    @property
    def is_valid(self) -> bool:
        """True when the header and frame checksums match and the length is as announced."""
        return self.is_good_hcs and self.is_good_ffc and self.is_expected_length

    def as_bytes(self) -> bytes:
        """The frame with its flags, as it stood on the wire (for logging and captures)."""
        return bytes((FLAG,)) + self._raw + (bytes((FLAG,)) if self.is_expected_length else b"")

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return (
            f"HdlcFrame(length={len(self._raw)}, segmented={self.segmented}, "
            f"valid={self.is_valid}, payload={self.payload.hex()})"
        )


@dataclass(slots=True)
class HdlcReaderStats:
    """Counters for diagnostics (``bridge/info``); they only ever grow.

    Attributes:
        frames_good: frames with good HCS, FCS and length.
        frames_bad: damaged frames reported (bad FCS, cut short, missing closing flag).
        resyncs: times the reader skipped bytes to find the next frame start.
        bytes_discarded: bytes that belonged to no frame (noise, partial headers).
    """

    frames_good: int = 0
    frames_bad: int = 0
    resyncs: int = 0
    bytes_discarded: int = 0


_NEED_MORE: Final = -1
_INVALID: Final = -2


def _address_end(buf: bytes | bytearray, start: int, end: int) -> int:
    """Return the index after an extensible address starting at ``start``.

    ``_NEED_MORE`` if the buffer ends before the address does, ``_INVALID`` if the address is
    longer than the four bytes IEC 62056-46 allows.
    """
    for index in range(start, min(start + _MAX_ADDRESS_BYTES, end)):
        if buf[index] & 0x01:
            return index + 1
    return _NEED_MORE if end - start < _MAX_ADDRESS_BYTES else _INVALID


class _Header:
    """Positions inside a candidate frame, found by :func:`_parse_header`."""

    __slots__ = ("control_at", "dest_end", "hcs_at", "length", "src_end")

    def __init__(self, length: int, dest_end: int, src_end: int) -> None:
        self.length = length
        self.dest_end = dest_end
        self.src_end = src_end
        self.control_at = src_end
        self.hcs_at = src_end + 1

    def moved(self, by: int) -> _Header:
        """The same header ``by`` bytes further to the front (the buffer before it was cut)."""
        return _Header(self.length, self.dest_end - by, self.src_end - by) if by else self


def _parse_header(buf: bytes | bytearray, start: int, end: int) -> _Header | int:
    """Validate the header of a frame whose format field starts at ``start``.

    Returns the header, ``_NEED_MORE`` when ``buf[:end]`` is too short to decide, or ``_INVALID``
    when this cannot be the start of a frame (wrong format type, impossible length, bad HCS).
    """
    if end - start < 2:
        return _NEED_MORE
    first = buf[start]
    if first >> 4 != FORMAT_TYPE_3:
        return _INVALID
    length = ((first & _LENGTH_HIGH_MASK) << 8) | buf[start + 1]
    if length < _MIN_FRAME_LENGTH:
        return _INVALID
    limit = min(end, start + length)
    dest_end = _address_end(buf, start + 2, limit)
    if dest_end < 0:
        return dest_end if limit == end else _INVALID
    src_end = _address_end(buf, dest_end, limit)
    if src_end < 0:
        return src_end if limit == end else _INVALID
    header = _Header(length, dest_end, src_end)
    header_bytes = header.hcs_at - start
    if length == header_bytes + 2:
        return header  # no information field, hence no HCS: the FCS alone guards the frame
    if length < header_bytes + 4:
        return _INVALID
    if end < header.hcs_at + 2:
        return _NEED_MORE
    hcs = buf[header.hcs_at] | (buf[header.hcs_at + 1] << 8)
    if crc16_x25(buf[start : header.hcs_at]) != hcs:
        return _INVALID
    return header


def _build_frame(
    buf: bytes | bytearray, start: int, header: _Header, *, complete: bool
) -> HdlcFrame:
    """Make a frame from ``buf[start:start+length]`` (or what there is of it if not complete)."""
    frame_end = start + header.length
    raw = bytes(buf[start : min(frame_end, len(buf))])
    has_hcs = header.length != header.hcs_at - start + 2
    info_start = header.hcs_at + 2 if has_hcs else header.hcs_at
    good_fcs = False
    if complete:
        fcs = raw[-2] | (raw[-1] << 8)
        good_fcs = crc16_x25(raw[:-2]) == fcs
    payload = bytes(buf[info_start : frame_end - 2]) if has_hcs and complete else b""
    return HdlcFrame(
        raw,
        destination_address=bytes(buf[start + 2 : header.dest_end]),
        source_address=bytes(buf[header.dest_end : header.src_end]),
        control=buf[header.control_at],
        header_check_sequence=(buf[header.hcs_at] | (buf[header.hcs_at + 1] << 8))
        if has_hcs
        else None,
        payload=payload,
        is_good_hcs=True,
        is_good_ffc=good_fcs,
        is_expected_length=complete,
    )


class HdlcFrameReader:
    """Incremental HDLC frame reader: feed any chunks with :meth:`read`, get complete frames back.

    The reader is sans-IO: it never blocks, sleeps or logs.  It returns every frame it delimits,
    good or damaged (check :attr:`HdlcFrame.is_valid`); bytes that belong to no frame are counted
    in :attr:`stats` and dropped.

    Args:
        use_octet_stuffing: unescape ``7D xx`` sequences and delimit frames by flags.  Only for
            links that stuff; HAN meters do not, and stuffing corrupts their frames.
    """

    def __init__(self, use_octet_stuffing: bool = False) -> None:
        self._buffer = bytearray()
        self._use_octet_stuffing = use_octet_stuffing
        self._lookahead = 0
        """Offset (relative to the pending frame start) from which to look for later frames."""
        self._reported_until = 0
        """Buffer index up to which bytes were already reported as part of a damaged frame."""
        self._pending: _Header | None = None
        """Header of the incomplete frame at the start of the buffer, parsed on an earlier read."""
        self.stats = HdlcReaderStats()

    @property
    def is_in_hunt_mode(self) -> bool:
        """True while no frame start is buffered (the reader is hunting for a flag)."""
        return FLAG not in self._buffer

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def read(self, data_chunk: bytes | bytearray | memoryview) -> list[HdlcFrame]:
        """Add ``data_chunk`` to the buffer and return the frames completed by it, in order."""
        self._buffer += data_chunk
        if self._use_octet_stuffing:
            return self._read_stuffed()
        return self._read_length_delimited()

    def flush(self) -> list[HdlcFrame]:
        """End of stream: report a frame still waiting for bytes as cut short, and reset."""
        frames: list[HdlcFrame] = []
        buf = self._buffer.rstrip(bytes((FLAG,)))
        flag_at = buf.find(FLAG)
        header = _parse_header(buf, flag_at + 1, len(buf)) if flag_at >= 0 else _INVALID
        if isinstance(header, _Header) and not self._use_octet_stuffing:
            frames.append(_build_frame(buf, flag_at + 1, header, complete=False))
            self.stats.frames_bad += 1
            self._discard(flag_at)
        else:
            self._discard(len(buf))
        self._buffer = bytearray()
        self._lookahead = 0
        self._pending = None
        return frames

    def _skip(self, start: int, end: int) -> None:
        """Count ``buf[start:end]`` as discarded, except what a damaged frame already reported."""
        self._discard(end - max(start, self._reported_until))

    def _discard(self, count: int) -> None:
        if count > 0:
            self.stats.resyncs += 1
            self.stats.bytes_discarded += count

    def _read_length_delimited(self) -> list[HdlcFrame]:
        buf = self._buffer
        frames: list[HdlcFrame] = []
        pos = 0
        end = len(buf)
        while True:
            flag_at = buf.find(FLAG, pos)
            if flag_at < 0:
                self._skip(pos, end)
                pos = end
                break
            if flag_at > pos:  # most often the flag is where the last frame ended
                self._skip(pos, flag_at)
            pos = flag_at
            pending, self._pending = self._pending, None
            header = pending if flag_at == 0 and pending else _parse_header(buf, flag_at + 1, end)
            if isinstance(header, int):
                if header == _NEED_MORE:
                    break
                # Not a frame start. The flag itself is not counted: frames often share flags.
                pos = flag_at + 1
                continue
            closing = flag_at + 1 + header.length
            if closing >= end:
                later = self._later_frame(flag_at, header)
                if later is None:
                    # The buffer is cut to start at this frame: its header moves along.
                    self._pending = header.moved(flag_at)
                    break
                frames.append(_build_frame(buf, flag_at + 1, header, complete=False))
                self.stats.frames_bad += 1
                self._reported_until = later
                pos = later
                continue
            frame = _build_frame(buf, flag_at + 1, header, complete=True)
            self._lookahead = 0
            if frame.is_good_ffc and buf[closing] == FLAG:
                self.stats.frames_good += 1
                frames.append(frame)
                pos = closing  # the closing flag may also open the next frame
                continue
            self._damaged(frame, closing)
            frames.append(frame)
            pos = flag_at + 1  # resume inside the damaged span: an intact frame may start there
        if pos:
            del buf[:pos]
            self._reported_until = max(0, self._reported_until - pos)
        return frames

    def _damaged(self, frame: HdlcFrame, closing: int) -> None:
        """Count a complete frame with a bad FCS or no closing flag where its length says."""
        if self._buffer[closing] != FLAG:
            frame.is_expected_length = False
        self.stats.frames_bad += 1
        self._reported_until = closing + 1

    def _later_frame(self, start: int, header: _Header) -> int | None:
        """Find an intact frame that starts inside the still incomplete frame at ``start``.

        If one exists, the frame at ``start`` was cut short (a meter or adapter dropped bytes) and
        waiting for its announced length would only delay the frames behind it.  Returns the
        later frame's flag index, or None.  Scanning resumes where it stopped last time, so a slow
        serial stream is scanned once, not once per chunk.
        """
        buf = self._buffer
        end = len(buf)
        candidate = max(header.hcs_at, start + self._lookahead)
        while True:
            candidate = buf.find(FLAG, candidate)
            if candidate < 0:
                self._lookahead = end - start
                return None
            later = _parse_header(buf, candidate + 1, end)
            if later == _NEED_MORE:
                self._lookahead = candidate - start
                return None
            if isinstance(later, _Header):
                closing = candidate + 1 + later.length
                if closing >= end:
                    self._lookahead = candidate - start
                    return None
                fcs = buf[closing - 2] | (buf[closing - 1] << 8)
                if buf[closing] == FLAG and crc16_x25(buf[candidate + 1 : closing - 2]) == fcs:
                    self._lookahead = 0
                    return candidate
            candidate += 1

    def _read_stuffed(self) -> list[HdlcFrame]:
        buf = self._buffer
        frames: list[HdlcFrame] = []
        parts = bytes(buf).split(bytes((FLAG,)))
        # The last part is either empty (buffer ends in a flag) or an unfinished frame.
        tail = parts.pop()
        for index, part in enumerate(parts):
            if not part:
                continue
            if index == 0 and buf[:1] != bytes((FLAG,)):
                self._discard(len(part))  # bytes before the first flag: no opening flag seen
                continue
            frame = self._parse_unstuffed(_unstuff(part))
            if frame is None:
                self._discard(len(part))
            else:
                frames.append(frame)
        if len(tail) > _MAX_BUFFER:
            self._discard(len(tail))
            tail = b""
        self._buffer = bytearray(bytes((FLAG,)) + tail) if parts else bytearray(tail)
        return frames

    def _parse_unstuffed(self, raw: bytes) -> HdlcFrame | None:
        header = _parse_header(raw, 0, len(raw))
        if isinstance(header, int):
            return None
        complete = header.length == len(raw)
        frame = _build_frame(raw, 0, header, complete=complete)
        if frame.is_valid:
            self.stats.frames_good += 1
        else:
            self.stats.frames_bad += 1
        return frame


def _unstuff(data: bytes) -> bytes:
    """Undo octet-stuffing (``7D xx`` → ``xx ^ 0x20``)."""
    if ESCAPE not in data:
        return data
    out = bytearray()
    escaped = False
    for byte in data:
        if escaped:
            out.append(byte ^ _ESCAPE_XOR)
            escaped = False
        elif byte == ESCAPE:
            escaped = True
        else:
            out.append(byte)
    return bytes(out)


MAX_SEGMENTED_CONTENT: Final = 64 * 1024
"""Upper bound for one reassembled APDU; a chain that grows beyond it is dropped."""


class HdlcSegmentAssembler:
    """Join the information fields of segmented frames (format 0xA8..) into one content.

    IEC 62056-46 §6.4.4.3: frames with the segmentation bit set are followed by more segments of
    the same information; the last segment has the bit clear.  Only the first segment carries the
    LLC header.  A damaged frame anywhere in a chain drops the whole chain.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self.chains_dropped = 0

    def add(self, frame: HdlcFrame) -> bytes | None:
        """Add a frame; return the complete content when ``frame`` ends a chain, else None."""
        if not frame.is_valid:
            self._drop()
            return None
        self._parts.append(frame.payload)
        self._size += len(frame.payload)
        if self._size > MAX_SEGMENTED_CONTENT:
            self._drop()
            return None
        if frame.segmented:
            return None
        content = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        return content or None

    def _drop(self) -> None:
        if self._parts:
            self.chains_dropped += 1
        self._parts.clear()
        self._size = 0
