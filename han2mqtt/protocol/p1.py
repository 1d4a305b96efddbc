"""P1 telegrams: IEC 62056-21 mode D data readouts as DSMR and the Nordic P1 ports send them.

A telegram::

    /XXX5Ident CR LF
    CR LF
    1-0:1.8.1(001581.123*kWh) CR LF
    ...
    !CRC CR LF

The CRC is CRC-16/ARC over everything from ``/`` to ``!`` inclusive, as four hex digits (DSMR 4+).
Meters in the field also send it without zero padding, or (DSMR 2/3) not at all; both are
accepted, a wrong CRC is not.  Values keep their decimal digits exactly: ``001581.123`` becomes the
mantissa 1581123 with exponent -3.

DSMR 2.2 and 3.0 send the M-Bus channel's profile (``0-n:24.3.0``) as a header line and its
value(s) on the line(s) after it, with or without a blank line between::

    0-1:24.3.0(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)
    (00001.001)

Such value-only lines are kept as the continuation of the object line before them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from han2mqtt.errors import ChecksumError, FramingError
from han2mqtt.protocol.crc import crc16_arc
from han2mqtt.protocol.obis import Obis, parse_obis

__all__ = [
    "P1Object",
    "P1Telegram",
    "P1TelegramReader",
    "check_telegram",
    "is_continuation",
    "object_line",
    "object_of",
    "p1_timestamp",
    "parse_telegram",
]

START: Final = ord("/")
END: Final = ord("!")
MAX_TELEGRAM: Final = 16 * 1024
"""DSMR telegrams are 1-3 KiB; a start without an end within this is noise."""
_LINE: Final = re.compile(
    r"^(\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}(?:[.*]\d{1,3})?)((?:\([^()]*\))+)\s*$"
)
_CONTINUATION: Final = re.compile(r"^(?:\([^()]*\))+\s*$")
"""A line of values only: the continuation of the object line before it (DSMR 2.2/3.0 gas)."""
_VALUE: Final = re.compile(r"\(([^()]*)\)")
_NUMBER: Final = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
_TIMESTAMP: Final = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})([SW]?)$")
_LONG_TIMESTAMP: Final = re.compile(r"^(\d{4})(\d{2})(\d{2}) (\d{2}:\d{2}:\d{2})$")
_HEX_DIGITS: Final = frozenset(b"0123456789abcdefABCDEF")
_IDENTIFICATION: Final = re.compile(rb"/[A-Za-z]{3}[0-9A-Za-z]")
_LAST_IDENTIFICATION: Final = re.compile(rb".*(/[A-Za-z]{3}[0-9A-Za-z])", re.DOTALL)
_IDENTIFICATION_LINE: Final = re.compile(rb"/[A-Za-z]{3}[0-9A-Z][^\r\n]*\r?\n")
"""The line a telegram opens with: manufacturer flag, baud-rate character, identification."""
_OBIS_LINE: Final = re.compile(
    rb"\n\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}(?:[.*]\d{1,3})?(?:\([^()\r\n]*\))+\r?\n"
)
"""A well-formed object line: an OBIS code and its value(s) in parentheses, alone on its line."""


@dataclass(frozen=True, slots=True)
class P1Object:
    """One COSEM object line: its OBIS code and its value(s) as sent (text, unit split off)."""

    obis: Obis
    values: tuple[tuple[str, str | None], ...]
    """Each ``(value, unit)`` in parentheses, e.g. ``(("001581.123", "kWh"),)``."""
    continuation: tuple[tuple[str, str | None], ...] = ()
    """The values on the value-only lines after the object line (DSMR 2.2/3.0 profiles)."""


@dataclass(frozen=True, slots=True)
class P1Telegram:
    """A delimited telegram."""

    raw: bytes
    crc_present: bool
    crc_ok: bool

    @property
    def is_valid(self) -> bool:
        """True unless a CRC was sent and does not match."""
        return self.crc_ok or not self.crc_present

    @property
    def is_plausible(self) -> bool:
        """True for a telegram a meter could have sent, not line noise between ``/`` and ``!``.

        A CRC that checks (DSMR 4+), or, without a CRC (DSMR 2.2/3), an identification line
        (``/XXX5...``, IEC 62056-21) followed by at least one well-formed OBIS line.  Five bytes
        ``/x!`` CR LF are valid (no CRC to contradict them) but not plausible.
        """
        if self.crc_present:
            return self.crc_ok
        return _IDENTIFICATION_LINE.match(self.raw) is not None and (
            _OBIS_LINE.search(self.raw) is not None
        )

    @property
    def identification(self) -> str:
        """The line after ``/``: manufacturer flag (3 letters), baud-rate digit, identifier."""
        return self.raw[1:].split(b"\r", 1)[0].split(b"\n", 1)[0].decode("ascii", errors="replace")

    @property
    def manufacturer_flag(self) -> str:
        """The three-letter manufacturer flag (``KFM``, ``ISK``, ``LGF`` ...)."""
        return self.identification[:3]


class _Checked:
    """The telegrams whose CRC was checked last, so that their decoder need not check again.

    A reader hands ``telegram.raw`` on (``ContentReader``), and the decoder gets that very object:
    :func:`check_telegram` recognises it by identity (the memo holds it, so no other object can
    take its id) and reuses the verdict.  One read can complete several telegrams before the
    first is decoded, hence a few entries; any other content is checked afresh.  A pure memo of
    a pure function, bounded, with no behaviour of its own.
    """

    __slots__ = ("telegrams",)
    SIZE: Final = 64

    def __init__(self) -> None:
        self.telegrams: dict[int, P1Telegram] = {}

    def add(self, telegram: P1Telegram) -> None:
        if len(self.telegrams) >= self.SIZE:
            del self.telegrams[next(iter(self.telegrams))]
        self.telegrams[id(telegram.raw)] = telegram

    def find(self, content: bytes) -> P1Telegram | None:
        telegram = self.telegrams.get(id(content))
        return telegram if telegram is not None and telegram.raw is content else None


_CHECKED: Final = _Checked()


def _check(raw: bytes, crc_text: bytes) -> P1Telegram:
    end = raw.rfind(b"!")
    if not crc_text:
        telegram = P1Telegram(raw, crc_present=False, crc_ok=False)
    else:
        expected = int(crc_text, 16)
        telegram = P1Telegram(raw, crc_present=True, crc_ok=crc16_arc(raw[: end + 1]) == expected)
    _CHECKED.add(telegram)
    return telegram


def check_telegram(content: bytes) -> P1Telegram:
    """``content`` (a whole telegram, from ``/``) as a :class:`P1Telegram` with its CRC verdict.

    The CRC is computed once per telegram: content that a :class:`P1TelegramReader` has just
    delivered keeps the verdict the reader found.  Otherwise the content is read as a reader
    would read it: the verdict of the first telegram in it, or no CRC when there is none.
    """
    known = _CHECKED.find(content)
    if known is not None:
        return known
    reader = P1TelegramReader()
    telegrams = reader.read(content) + reader.flush()
    if not telegrams:
        return P1Telegram(content, crc_present=False, crc_ok=False)
    first = telegrams[0]
    return P1Telegram(content, crc_present=first.crc_present, crc_ok=first.crc_ok)


class P1TelegramReader:
    """Incremental telegram reader: garbage before ``/`` is skipped, sizes are bounded.

    Linear in the bytes fed: every byte is searched for ``!`` once (the search resumes where the
    previous chunk's ended), and a start without an end within :data:`MAX_TELEGRAM` is dropped
    together with every other start that is already too far from the buffer's end, in one step.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._searched = 0
        """Bytes at the buffer's start already searched for ``!`` without finding one."""
        self.bytes_discarded = 0

    def read(self, data_chunk: bytes | bytearray | memoryview) -> list[P1Telegram]:
        """Add a chunk; return the telegrams it completed (check ``is_valid``)."""
        buf = self._buffer
        buf += data_chunk
        telegrams: list[P1Telegram] = []
        while self._at_start():
            end = buf.find(END, max(1, self._searched))
            if end < 0:
                self._searched = len(buf)
                if len(buf) <= MAX_TELEGRAM:
                    break
                # No end in sight for any start this far back: drop them all at once.
                self._discard(_next_start(buf, len(buf) - MAX_TELEGRAM))
                continue
            begin = _last_start(buf, end)  # after a telegram cut short (or noise with a "/")
            self._discard(begin)
            end -= begin
            digits = end + 1
            while digits < len(buf) and digits - end <= 4 and buf[digits] in _HEX_DIGITS:
                digits += 1
            crc = bytes(buf[end + 1 : digits])
            if len(crc) < 4 and digits == len(buf):
                break  # the CRC (or the line end of a short one) is still on its way
            if len(crc) == 4 or buf[digits] in b"\r\n":
                telegrams.append(_check(bytes(buf[:digits]), crc))
            else:  # "!" followed by neither a CRC nor a line end: a damaged telegram
                telegrams.append(P1Telegram(bytes(buf[:digits]), crc_present=True, crc_ok=False))
            del buf[:digits]
            self._searched = 0
        return telegrams

    def _at_start(self) -> bool:
        """Drop what precedes the first ``/``; False when there is none."""
        start = self._buffer.find(START)
        self._discard(len(self._buffer) if start < 0 else start)
        return start >= 0

    def _discard(self, count: int) -> None:
        if count:
            self.bytes_discarded += count
            del self._buffer[:count]
            self._searched = max(0, self._searched - count)

    def flush(self) -> list[P1Telegram]:
        """End of stream: a telegram whose CRC line was cut short (no line end) is completed."""
        buf = self._buffer
        telegrams = []
        end = buf.find(END)
        if buf[:1] == b"/" and end > 0:
            crc = bytes(buf[end + 1 :]).strip()
            if all(c in _HEX_DIGITS for c in crc) and len(crc) <= 4:
                telegrams.append(_check(bytes(buf[: end + 1 + len(crc)]), crc))
        self.bytes_discarded += len(buf) if not telegrams else 0
        buf.clear()
        self._searched = 0
        return telegrams


def _next_start(buf: bytearray, position: int) -> int:
    """Index of the first ``/`` at or after ``position``; the buffer's length if there is none."""
    start = buf.find(START, position)
    return len(buf) if start < 0 else start


def _last_start(buf: bytearray, end: int) -> int:
    """Where the telegram that ends at ``end`` starts.

    The last ``/`` before it that opens an identification (``/XXX5``: a three-letter
    manufacturer flag and the baud-rate character, IEC 62056-21); a cut can fall anywhere, so
    the start of the telegram after it need not open a line.  0 if there is none.  One regex
    pass from the end (in C): a run of thousands of ``/`` costs no Python loop per ``/``.
    """
    last = buf.rfind(START, 0, end)
    if last >= 0 and _IDENTIFICATION.match(buf, last):
        return last  # the usual case: the last "/" opens the telegram, found without a regex scan
    match = _LAST_IDENTIFICATION.match(buf, 0, end)
    return 0 if match is None else match.start(1)


def parse_telegram(telegram: P1Telegram) -> list[P1Object]:
    """The object lines of a telegram, in order.

    Raises:
        ChecksumError: the telegram's CRC does not match.
        FramingError: no object line could be read.
    """
    if not telegram.is_valid:
        raise ChecksumError("P1 telegram CRC mismatch")
    text = telegram.raw.decode("ascii", errors="replace")
    objects: list[P1Object] = []
    open_object = False  # may the next value-only line continue the last object?
    for line in map(str.strip, text.splitlines()[1:]):
        if not line:
            continue  # the empty line after the identification, or inside a DSMR 2.2 profile
        if open_object and _CONTINUATION.match(line):
            last = objects[-1]
            more = tuple(_split(value) for value in _VALUE.findall(line))
            objects[-1] = P1Object(last.obis, last.values, last.continuation + more)
            continue
        item = _object(line)
        open_object = item is not None
        if item is not None:
            objects.append(item)
    if not objects:
        raise FramingError("P1 telegram without any OBIS line")
    return objects


def _object(line: str) -> P1Object | None:
    """The object of an object line; None for '!', malformed lines and bad OBIS codes."""
    match = _LINE.match(line)
    if match is None:
        return None
    try:
        obis = parse_obis(match.group(1))
    except ValueError:
        return None
    return P1Object(obis, tuple(_split(value) for value in _VALUE.findall(match.group(2))))


def object_line(line: str) -> tuple[P1Object, list[tuple[int, int]]] | None:
    """A stripped line read as :func:`parse_telegram` reads it, with each value's span.

    The spans are ``(start, end)`` of the text between each value's parentheses, in ``line``.
    None for anything that is not an object line.
    """
    item = _object(line)
    if item is None:
        return None
    match = _LINE.match(line)
    assert match is not None
    spans = [found.span(1) for found in _VALUE.finditer(line, match.start(2), match.end(2))]
    return item, spans


def object_of(obis: Obis, values: str) -> P1Object:
    """The object of a line with this OBIS code and this values part (``"(...)(...)"``)."""
    return P1Object(obis, tuple(_split(value) for value in _VALUE.findall(values)))


def is_continuation(line: str) -> bool:
    """True for a stripped line of values only (DSMR 2.2/3.0: continues the object before it)."""
    return _CONTINUATION.match(line) is not None


def _split(value: str) -> tuple[str, str | None]:
    number, star, unit = value.partition("*")
    return (number, unit) if star else (value, None)


def decimal_parts(text: str) -> tuple[int, int] | None:
    """``"001581.123"`` → ``(1581123, -3)``; None when the text is not a decimal number."""
    if not _NUMBER.match(text):
        return None
    try:
        exact = Decimal(text)
    except InvalidOperation:
        return None
    sign, digits, exponent = exact.as_tuple()
    mantissa = int("".join(map(str, digits)) or "0")
    return (-mantissa if sign else mantissa), int(exponent)


def p1_timestamp(text: str) -> str | None:
    """``YYMMDDhhmmssX`` → ISO 8601 local time (``2021-02-22T16:19:00``), or None.

    X is S (summer time) or W (normal time).  DSMR leaves the zone to the country, so no offset
    is invented here.
    """
    match = _TIMESTAMP.match(text)
    if match is not None:
        yy, mo, dd, hh, mi, ss, _ = match.groups()
        return f"20{yy}-{mo}-{dd}T{hh}:{mi}:{ss}"
    long_form = _LONG_TIMESTAMP.match(text)  # NES meters: "20240111 09:35:00"
    if long_form is not None:
        yyyy, mo, dd, clock = long_form.groups()
        return f"{yyyy}-{mo}-{dd}T{clock}"
    return None
