"""TIC (Télé-Information Client): the customer port of French electricity meters (Linky and older).

Enedis-NOI-CPT_54E (Linky) and Enedis-NOI-CPT_02E (the electronic meters before it) specify two
modes, both 7 data bits, even parity, 1 stop bit:

* *historique* (1200 baud, every Linky's factory setting): a group is
  ``LF label SP value SP checksum CR``; the checksum covers the label, the separator and the
  value, not the separator before the checksum.
* *standard* (9600 baud): a group is ``LF label HT [horodate HT] value HT checksum CR``; the
  checksum covers everything from the label to the separator before it, that separator included.
  The horodate is ``SAAMMJJhhmmss``: S is the season (``E`` summer time, ``H`` winter time; in
  lower case when the meter's clock is not trustworthy).

Either checksum is ``(sum of the bytes & 0x3F) + 0x20``: one printable character.  A frame is the
groups between STX (0x02) and ETX (0x03); EOT (0x04) interrupts a frame (the meter was asked
something on its other port), and what came of that frame is dropped.

Only the checksum protects a group, so a group whose checksum fails is dropped alone: some meters
send one bad group in every frame (esphome issue 4690, ``EASD02``), and dropping whole frames
would silence them.  The frame keeps the count of dropped groups.

A byte read at 8N1 from a 7E1 line carries the parity bit in bit 7: the reader masks it, so a port
set either way gives the same frames.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ETX",
    "STX",
    "TicFrame",
    "TicFrameReader",
    "TicGroup",
    "TicMode",
    "checksum",
    "frames_from_text",
    "parse_frame",
    "parse_group",
]

STX: Final = 0x02
"""Start of a frame (Enedis-NOI-CPT_54E, "trame")."""
ETX: Final = 0x03
"""End of a frame."""
EOT: Final = 0x04
"""End of transmission: the frame in progress is interrupted."""
LF: Final = 0x0A
"""Start of a group ("groupe d'information")."""
CR: Final = 0x0D
"""End of a group."""
SP: Final = 0x20
"""Separator of the historique mode."""
HT: Final = 0x09
"""Separator of the standard mode."""
SEVEN_BITS: Final = 0x7F
"""TIC characters are 7-bit: bit 7 read at 8N1 is the parity bit."""
MAX_FRAME: Final = 8 * 1024
"""A standard frame with every label is under 2 KiB; a start without an end within this is noise."""
MAX_GROUP: Final = 160
"""The longest group (PJOURF+1: a 98-character value) with room to spare."""
_LABEL: Final = re.compile(rb"^[A-Z0-9][A-Z0-9+\-]{0,9}$")
"""Labels are upper-case letters and digits, with ``+``/``-`` (NJOURF+1, SMAXSN-1)."""
_CONTROL: Final = re.compile(rb"[\x00-\x1f\x7f]")
"""Control characters: never in a value (a tab in one means a group of the other mode)."""
_HORODATE: Final = re.compile(r"^([EeHh ])(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$")


class TicMode(enum.Enum):
    """The TIC mode a group was sent in (its separator tells)."""

    HISTORIC = "historique"
    STANDARD = "standard"


@dataclass(frozen=True, slots=True)
class TicGroup:
    """One information group whose checksum matched.

    Attributes:
        label: the label (``ADCO``, ``EAST`` ...).
        value: the value as sent (text: identifiers keep their leading zeros; blanks kept).
        horodate: the standard mode's time stamp (``E230712084949``), or None.
        mode: the mode of the group.
    """

    label: str
    value: str
    horodate: str | None
    mode: TicMode


@dataclass(frozen=True, slots=True)
class TicFrame:
    """The groups of one frame that passed their checksums, and how many did not.

    Attributes:
        groups: the good groups, in frame order.
        bad_groups: groups dropped (checksum mismatch, malformed).
        raw: the frame as received, STX to ETX, bit 7 cleared.
    """

    groups: tuple[TicGroup, ...]
    bad_groups: int
    raw: bytes

    @property
    def mode(self) -> TicMode | None:
        """The mode of the frame's groups (None without any)."""
        return self.groups[0].mode if self.groups else None

    def value(self, label: str) -> str | None:
        """The value of the first good group with this label, or None."""
        for group in self.groups:
            if group.label == label:
                return group.value
        return None


def checksum(data: bytes) -> int:
    """The TIC checksum character of ``data``: ``(sum & 0x3F) + 0x20`` (Enedis-NOI-CPT_54E)."""
    return (sum(data) & 0x3F) + 0x20


def parse_group(line: bytes) -> TicGroup | None:
    """A group from the bytes between LF and CR; None when malformed or its checksum fails."""
    if len(line) < 4 or len(line) > MAX_GROUP:
        return None
    separator, sent = line[-2], line[-1]
    if separator == HT:
        covered, mode = line[:-1], TicMode.STANDARD
    elif separator == SP:
        covered, mode = line[:-2], TicMode.HISTORIC
    else:
        return None
    if checksum(covered) != sent:
        return None
    return _fields(line[:-2], mode)


def _fields(body: bytes, mode: TicMode) -> TicGroup | None:
    """Label, horodate and value of a group whose checksum matched."""
    if mode is TicMode.STANDARD:
        parts = body.split(b"\t")
        if len(parts) not in (2, 3):
            return None
        label, value = parts[0], parts[-1]
        horodate = parts[1].decode("ascii") if len(parts) == 3 else None
    else:
        label, _, value = body.partition(b" ")
        horodate = None
    if not _LABEL.match(label) or _CONTROL.search(value):
        return None
    return TicGroup(label.decode("ascii"), value.decode("ascii"), horodate, mode)


def parse_frame(raw: bytes) -> TicFrame:
    """The groups of a frame (STX to ETX, or just its groups); bad ones are counted, not kept."""
    groups: list[TicGroup] = []
    bad = 0
    body = raw.strip(bytes((STX, ETX)))
    for chunk in body.split(bytes((LF,)))[1:] if LF in body else []:
        line = chunk.split(bytes((CR,)), 1)[0] if CR in chunk else None
        group = None if line is None else parse_group(line)
        if group is None:
            bad += 1
        else:
            groups.append(group)
    return TicFrame(tuple(groups), bad, raw)


def horodate_iso(horodate: str) -> str | None:
    """``E230712084949`` → ``2023-07-12T08:49:49+02:00``; None when not certain.

    E is French summer time (UTC+2), H winter time (UTC+1).  A lower-case season marks a clock
    the meter itself does not trust ("mode dégradé"), a blank season none: no time is given then.
    """
    match = _HORODATE.match(horodate)
    if match is None:
        return None
    season, yy, mo, dd, hh, mi, ss = match.groups()
    offset = {"E": "+02:00", "H": "+01:00"}.get(season)
    if offset is None:
        return None
    return f"20{yy}-{mo}-{dd}T{hh}:{mi}:{ss}{offset}"


class TicFrameReader:
    """Incremental frame reader: noise before STX is skipped, EOT drops the frame in progress.

    Attributes:
        bytes_discarded: bytes outside any frame (noise, interrupted or oversized frames).
        interrupted: frames cut short by EOT, by a new STX or by their size.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.bytes_discarded = 0
        self.interrupted = 0

    def read(self, data_chunk: bytes | bytearray | memoryview) -> list[TicFrame]:
        """Add a chunk; return the frames it completed (each with its good groups)."""
        buf = self._buffer
        buf += bytes(data_chunk).translate(_MASK)
        frames: list[TicFrame] = []
        while True:
            start = buf.find(STX)
            if start < 0:
                self._discard(len(buf))
                break
            self._discard(start)
            end = _frame_end(buf)
            if end is None:
                if len(buf) > MAX_FRAME:  # no end in sight: noise with an STX in it
                    self.interrupted += 1
                    self._discard(1)
                    continue
                break
            if buf[end] != ETX:  # EOT, or a new STX before the ETX: the frame was cut short
                self.interrupted += 1
                self._discard(end if buf[end] == STX else end + 1)
                continue
            frames.append(parse_frame(bytes(buf[: end + 1])))
            del buf[: end + 1]
        return frames

    def _discard(self, count: int) -> None:
        if count:
            self.bytes_discarded += count
            del self._buffer[:count]

    def flush(self) -> list[TicFrame]:
        """End of stream: a frame without its ETX is dropped (counted as discarded bytes)."""
        self._discard(len(self._buffer))
        return []


_MASK: Final = bytes(b & SEVEN_BITS for b in range(256))


def _frame_end(buf: bytearray) -> int | None:
    """Index of the ETX, EOT or next STX that ends the frame starting at 0; None if none yet."""
    ends = [i for i in (buf.find(ETX, 1), buf.find(EOT, 1), buf.find(STX, 1)) if i >= 0]
    return min(ends) if ends else None


_TEXT_ID_LABELS: Final = frozenset({"ADCO", "ADSC"})


def frames_from_text(text: str) -> list[bytes]:
    """TIC frames (STX … ETX) from a text capture: one group per line, without STX/ETX/LF/CR.

    Each meter id group (ADCO, ADSC) opens a frame, as it opens every frame on the wire.  Line
    ends (LF or CR LF) are removed; a group's trailing blanks are kept (a checksum may be a space).
    """
    frames: list[list[bytes]] = []
    for line in text.split("\n"):
        raw = line.removesuffix("\r").encode("ascii", errors="replace")
        if not raw.strip():
            continue
        label = re.split(rb"[\t ]", raw.lstrip(), maxsplit=1)[0].decode("ascii", "replace")
        if label in _TEXT_ID_LABELS or not frames:
            frames.append([])
        frames[-1].append(bytes((LF,)) + raw.lstrip() + bytes((CR,)))
    return [bytes((STX,)) + b"".join(groups) + bytes((ETX,)) for groups in frames]
