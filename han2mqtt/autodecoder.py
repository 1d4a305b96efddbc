"""AutoDecoder: frame content in, normalized reading out, whatever the meter.

It recognises the layout of every frame from the frame itself (list identifiers, meter number,
structure shape), so a frame is never decoded with the layout that happened to fit the frame
before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from han2mqtt.errors import (
    ApduError,
    AxdrError,
    DecodeError,
    DecryptionError,
    FramingError,
    LayoutError,
)
from han2mqtt.meters.detect import execute, leaves, make_plan, profile_named
from han2mqtt.meters.p1plan import TelegramPlans
from han2mqtt.meters.template import TemplateCache
from han2mqtt.meters.tic import decode_tic_frame
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.apdu import ApduTag, decode_data_notification, strip_llc
from han2mqtt.protocol.gbt import BlockAssembler
from han2mqtt.protocol.p1 import P1Telegram, check_telegram
from han2mqtt.protocol.security import TELEGRAM_START, decipher
from han2mqtt.protocol.tic import STX, parse_frame

__all__ = ["AutoDecoder", "DecoderStats"]


@dataclass(slots=True)
class DecoderStats:
    """Counters for diagnostics: they only grow."""

    decoded: int = 0
    failed: int = 0
    last_error: str | None = None
    notes: int = 0
    """Frames decoded despite something worth a note (see :attr:`AutoDecoder.last_note`)."""
    groups_dropped: int = 0
    """TIC groups dropped for a bad checksum (their frames decode without them)."""


class AutoDecoder:
    """Decode the content of HDLC frames (or bare APDUs) into readings.

    Content is the information field of an HDLC frame (LLC header optional), a bare APDU (M-Bus
    telegrams, MQTT relays), or a P1 telegram (starting with ``/``).  Ciphered APDUs are
    deciphered with the keys given; general-block-transfer blocks are joined by :meth:`feed`.

    Args:
        meter_type: ``"auto"`` to recognise the vendor per frame, or a vendor name
            (``"aidon"``, ``"kaifa"``, ``"kamstrup"``) for lists that do not identify themselves
            (Kaifa list 1, Swedish Aidon); a frame that names another vendor is then an error.
        encryption_key: the meter's AES-128 global unicast encryption key (16 octets).
        authentication_key: its authentication key, to verify the GCM tag (16 octets).
    """

    def __init__(
        self,
        meter_type: str = "auto",
        *,
        encryption_key: bytes | None = None,
        authentication_key: bytes | None = None,
    ) -> None:
        self._forced = profile_named(meter_type)
        self._encryption_key = encryption_key
        self._authentication_key = authentication_key
        self._blocks = BlockAssembler()
        self._previous: str | None = None
        self._templates = TemplateCache()
        self._telegrams = TelegramPlans()
        self.stats = DecoderStats()
        self.last_apdu: bytes | None = None
        """The plaintext APDU of the last frame decoded (deciphered, blocks joined), for tools
        that show the A-XDR tree of what they decoded (``han2mqtt decode --raw``)."""
        self.last_note: str | None = None
        """Something about the last frame worth a log line that did not stop its decoding."""

    @property
    def previous_success_decoder(self) -> str | None:
        """Layout name of the last frame decoded successfully (informational only)."""
        return self._previous

    def feed(self, content: bytes) -> MeterReading | None:
        """Decode one frame's content; None when it is a block of a longer APDU still incomplete.

        Raises:
            DecodeError: a typed subclass says what is wrong (framing, APDU, A-XDR, key, layout).
        """
        try:
            reading = self._feed(content)
        except DecodeError as exc:
            self.stats.failed += 1
            self.stats.last_error = str(exc)
            raise
        if reading is not None:
            self.stats.decoded += 1
            self._previous = reading.layout
        return reading

    def decode(self, content: bytes) -> MeterReading:
        """Decode a complete frame content into a reading.

        Raises:
            DecodeError: as :meth:`feed`; also for a lone general-block-transfer block.
        """
        reading = self.feed(content)
        if reading is None:
            raise ApduError("a general-block-transfer block: feed all blocks in order with feed()")
        return reading

    def _feed(self, content: bytes) -> MeterReading | None:
        self.last_apdu = None
        self.last_note = None
        if content[:1] == b"/":
            return self._telegrams.decode(check_telegram(content))
        if content[:1] == bytes((STX,)):
            return self._decode_tic(content)
        apdu = strip_llc(content)
        if apdu[:1] == bytes((ApduTag.GENERAL_BLOCK_TRANSFER,)):
            joined = self._blocks.add(apdu)
            if joined is None:
                return None
            apdu = joined
        if apdu[:1] not in (
            bytes((ApduTag.GENERAL_GLO_CIPHERING,)),
            bytes((ApduTag.GENERAL_DED_CIPHERING,)),
        ):
            return self._decode_plain(apdu)
        deciphered = decipher(apdu, self._encryption_key, self._authentication_key)
        if deciphered.verified:  # the tag was verified: errors are genuine
            return self._decode_deciphered(deciphered.plaintext, verified=True)
        try:
            return self._decode_deciphered(deciphered.plaintext, verified=False)
        except (ApduError, AxdrError, LayoutError, FramingError) as exc:
            # Without a tag check, a wrong key shows only as garbage: say so, not "bad A-XDR".
            raise DecryptionError(
                f"frame from {deciphered.ciphered.describe()} does not decode after deciphering: "
                "wrong encryption key? "
                f"(set meter.authentication_key to verify each frame; {exc})"
            ) from exc

    def _decode_deciphered(self, plaintext: bytes, *, verified: bool) -> MeterReading:
        """An APDU, or a P1 telegram (Smarty): once the tag is verified its CRC is only a note."""
        if plaintext[:1] != TELEGRAM_START:
            return self._decode_plain(plaintext)
        telegram = check_telegram(plaintext)
        if verified and not telegram.is_valid:
            self.last_note = (
                "P1 telegram CRC mismatch inside a frame whose authentication tag verified: "
                "decoded (the tag already proves the content)"
            )
            self.stats.notes += 1
            telegram = P1Telegram(plaintext, crc_present=False, crc_ok=False)
        return self._telegrams.decode(telegram)

    def _decode_tic(self, content: bytes) -> MeterReading:
        """A TIC frame: its good groups decode, each bad one is dropped and counted."""
        frame = parse_frame(content)
        if frame.bad_groups:
            self.stats.groups_dropped += frame.bad_groups
            self.stats.notes += 1
            self.last_note = (
                f"{frame.bad_groups} TIC group{'s' if frame.bad_groups > 1 else ''} with a bad "
                "checksum dropped (the frame's other groups decoded)"
            )
        return decode_tic_frame(frame)

    def _decode_plain(self, apdu: bytes) -> MeterReading:
        self.last_apdu = apdu
        reading = self._templates.decode(apdu)
        if reading is not None:
            return reading
        notification = decode_data_notification(apdu)
        plan = make_plan(notification, self._forced)
        reading = execute(plan, leaves(notification.body), notification.date_time)
        if plan.templated:
            self._templates.learn(apdu, plan)
        return reading

    def decode_frame_content(self, frame_content: bytes) -> dict[str, FieldValue] | None:
        """Decode HDLC frame content into the normalized dictionary, or None if it cannot be."""
        try:
            reading = self.feed(frame_content)
        except DecodeError:
            return None
        return None if reading is None else reading.as_dict()

    def decode_message_payload(self, payload: bytes) -> dict[str, FieldValue] | None:
        """Decode a bare APDU (as MQTT relays forward it, without HDLC and LLC), or None."""
        return self.decode_frame_content(payload)
