"""MQTT relays: one message's payload in, frame contents out, with framing state per topic.

Tibber Pulse, the ESP32 AMS readers, ESPHome and ESP-Link put a meter's raw bytes on an MQTT
topic, one message per frame or per read.  What a message carries varies by relay:

- the bytes themselves, or the same as hex or base64 text (:func:`unpack_payload`);
- one or more HDLC frames (IEC 62056-46), with or without their 0x7E flags; an M-Bus long frame
  (EN 13757-2); a P1 telegram (EN 62056-21 / DSMR); or a bare APDU (a data-notification, 0x0F,
  or a ciphered one, 0xDB/0xDC, or a general-block-transfer block, 0xE0; LLC header optional).

:class:`TopicReader` keeps what a topic needs between messages (half a P1 telegram, the first of
two HDLC segments or M-Bus frames), so meters on different topics never mix.  :class:`RelayDemux`
holds one reader per topic, the least recently heard ones forgotten beyond a bound.  Nothing here
logs or does I/O: a malformed payload comes back as a :class:`PayloadProblem` for the caller to
count and report.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import OrderedDict
from enum import StrEnum
from typing import Final, Literal, NamedTuple

from han2mqtt.protocol.apdu import LLC_COMMAND, LLC_RESPONSE, ApduTag
from han2mqtt.protocol.hdlc import FLAG
from han2mqtt.protocol.mbus import START as MBUS_START
from han2mqtt.protocol.stream import ContentReader
from han2mqtt.protocol.tic import SEVEN_BITS, STX

__all__ = [
    "PayloadFormat",
    "PayloadProblem",
    "RelayDemux",
    "Relayed",
    "TopicReader",
    "unpack_payload",
]

PayloadFormat = Literal["auto", "binary", "hex", "base64"]
_Framing = Literal["hdlc", "mbus", "p1", "tic"]

_HEX_TEXT: Final = re.compile(rb"[0-9a-fA-F\s]+")
_BASE64_TEXT: Final = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_P1_START: Final = b"/"
_LINE_ENDS: Final = b"\r\n"
_FRAME_TYPE_MASK: Final = 0xF0
_FRAME_TYPE_3: Final = 0xA0
"""HDLC frame format type 3 (IEC 62056-46 §6.4.1): the high nibble of the first format octet."""
_LENGTH_HIGH: Final = 0x07
_MIN_HDLC: Final = 9
"""Format (2), one-octet addresses (2), control, HCS (2), FCS (2): the shortest frame."""
_APDU_TAGS: Final = frozenset(
    (
        ApduTag.DATA_NOTIFICATION,
        ApduTag.GENERAL_GLO_CIPHERING,
        ApduTag.GENERAL_DED_CIPHERING,
        ApduTag.GENERAL_BLOCK_TRANSFER,
    )
)


class PayloadProblem(StrEnum):
    """Why (part of) a payload was dropped; the names are the counters in ``bridge/info``."""

    EMPTY = "empty"
    """A message without bytes."""
    ENCODING = "encoding"
    """Not the hex or base64 text ``source.payload`` says (or an odd number of hex digits)."""
    UNRECOGNISED = "unrecognised"
    """Neither HDLC, M-Bus, P1 nor an APDU, and no unfinished frame it could continue."""
    BAD_FRAME = "bad_frame"
    """A frame or telegram whose checksum or CRC does not match."""


class Relayed(NamedTuple):
    """What one payload gave: complete contents (for ``AutoDecoder.feed``), and what was wrong."""

    contents: list[bytes]
    problem: PayloadProblem | None = None


def unpack_payload(payload: bytes, payload_format: PayloadFormat) -> bytes | None:
    """The meter's bytes in a message, or None if it is not the text the format says.

    ``auto`` takes a P1 telegram (``/...``) as it is, text of hex digits as hex, other base64
    text as base64, and anything else as the bytes themselves.  A payload of hex digits is also
    valid base64; relays that send base64 need ``payload: base64`` when a message may happen to
    hold only the characters 0-9 and A-F.
    """
    if payload_format == "binary":
        return payload
    text = payload.strip()
    if payload_format == "auto":
        if text.startswith(_P1_START):
            return payload
        if _HEX_TEXT.fullmatch(text):
            return _hex(text)
        if len(text) % 4 == 0 and _BASE64_TEXT.fullmatch(text):
            return _base64(text)
        return payload
    return _hex(text) if payload_format == "hex" else _base64(text)


def _hex(text: bytes) -> bytes | None:
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


def _base64(text: bytes) -> bytes | None:
    try:
        return base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _hdlc_without_flags(data: bytes) -> bytes | None:
    """``data`` as flagged frames if it is a run of whole HDLC frames without flags, else None.

    The frame length (11 bits after the frame type, IEC 62056-46 §6.4.1) delimits each frame.
    """
    frames = []
    position = 0
    while position < len(data):
        first = data[position]
        if first & _FRAME_TYPE_MASK != _FRAME_TYPE_3 or position + 1 >= len(data):
            return None
        length = ((first & _LENGTH_HIGH) << 8) | data[position + 1]
        if length < _MIN_HDLC or position + length > len(data):
            return None
        frames.append(data[position : position + length])
        position += length
    flag = bytes((FLAG,))
    return b"".join(flag + frame + flag for frame in frames)


def _is_apdu(data: bytes) -> bool:
    if data[:3] in (LLC_RESPONSE, LLC_COMMAND):
        data = data[3:]
    return bool(data) and data[0] in _APDU_TAGS


class TopicReader:
    """The framing state of one topic: bytes of one message in, complete contents out."""

    __slots__ = ("_pending", "_readers")

    def __init__(self) -> None:
        self._readers: dict[str, ContentReader] = {}
        self._pending: _Framing | None = None
        """The framing whose last message ended inside a frame: the next one may continue it."""

    def read(self, data: bytes) -> Relayed:
        """Consume the bytes of one message."""
        if not data:
            return Relayed([], PayloadProblem.EMPTY)
        first = data[0]
        if first == FLAG:
            return self._feed("hdlc", data)
        if first == MBUS_START and data[3:4] == bytes((MBUS_START,)):
            return self._feed("mbus", data)
        if data.lstrip(_LINE_ENDS).startswith(_P1_START):  # the last telegram's CR LF, maybe
            return self._feed("p1", data)
        if first & SEVEN_BITS == STX:  # a TIC frame, the parity bit in bit 7 or not
            return self._feed("tic", data)
        if self._pending is not None:
            return self._feed(self._pending, data)
        flagged = _hdlc_without_flags(data)
        if flagged is not None:
            return self._feed("hdlc", flagged)
        if _is_apdu(data):
            return Relayed([data])
        return Relayed([], PayloadProblem.UNRECOGNISED)

    def _feed(self, framing: _Framing, data: bytes) -> Relayed:
        reader = self._readers.get(framing)
        if reader is None:
            reader = self._readers[framing] = ContentReader(framing)
        bad_before = reader.stats.bad
        good_before = reader.stats.good
        contents = reader.read(data)
        bad = reader.stats.bad > bad_before
        # Nothing delimited yet: the frame continues in the next message (a relay that cuts).
        waiting = not contents and not bad and reader.stats.good == good_before
        self._pending = framing if waiting else None
        return Relayed(contents, PayloadProblem.BAD_FRAME if bad else None)


class RelayDemux:
    """One :class:`TopicReader` per topic, at most ``max_topics`` of them.

    Args:
        payload_format: how messages carry the bytes (``source.payload``).
        max_topics: readers kept; the least recently heard topic's is dropped beyond it (a
            topic heard again starts afresh, losing at most a frame split across messages).
    """

    def __init__(self, payload_format: PayloadFormat = "auto", max_topics: int = 10_000) -> None:
        self._format: PayloadFormat = payload_format
        self._max_topics = max_topics
        self._topics: OrderedDict[str, TopicReader] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._topics)

    def read(self, topic: str, payload: bytes) -> Relayed:
        """Consume one message of ``topic``."""
        data = unpack_payload(payload, self._format)
        if data is None:
            return Relayed([], PayloadProblem.ENCODING)
        reader = self._topics.get(topic)
        if reader is None:
            reader = self._topics[topic] = TopicReader()
            if len(self._topics) > self._max_topics:
                self._topics.popitem(last=False)
                self.evicted += 1
        else:
            self._topics.move_to_end(topic)
        return reader.read(data)
