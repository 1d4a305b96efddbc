"""AutoDecoder: frame content in, normalized reading out, whatever the meter.

It recognises the layout of every frame from the frame itself (list identifiers, meter number,
structure shape), so a frame is never decoded with the layout that happened to fit the frame
before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from han2mqtt.errors import ApduError, DecodeError
from han2mqtt.meters.detect import execute, leaves, make_plan, profile_named
from han2mqtt.meters.template import TemplateCache
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.apdu import ApduTag, decode_data_notification, strip_llc

__all__ = ["AutoDecoder", "DecoderStats"]


@dataclass(slots=True)
class DecoderStats:
    """Counters for diagnostics: they only grow."""

    decoded: int = 0
    failed: int = 0
    last_error: str | None = None


class AutoDecoder:
    """Decode the content of HDLC frames (or bare APDUs) into readings.

    Args:
        meter_type: ``"auto"`` to recognise the vendor per frame, or a vendor name
            (``"aidon"``, ``"kaifa"``, ``"kamstrup"``) for lists that do not identify themselves
            (Kaifa list 1, Swedish Aidon); a frame that names another vendor is then an error.
    """

    def __init__(self, meter_type: str = "auto") -> None:
        self._forced = profile_named(meter_type)
        self._previous: str | None = None
        self._templates = TemplateCache()
        self.stats = DecoderStats()

    @property
    def previous_success_decoder(self) -> str | None:
        """Layout name of the last frame decoded successfully (informational only)."""
        return self._previous

    def decode(self, content: bytes) -> MeterReading:
        """Decode frame content (LLC header optional) into a reading.

        Raises:
            DecodeError: a typed subclass says what is wrong (APDU, A-XDR, layout).
        """
        try:
            reading = self._decode(content)
        except DecodeError as exc:
            self.stats.failed += 1
            self.stats.last_error = str(exc)
            raise
        self.stats.decoded += 1
        self._previous = reading.layout
        return reading

    def _decode(self, content: bytes) -> MeterReading:
        apdu = strip_llc(content)
        if apdu and apdu[0] in (ApduTag.GENERAL_GLO_CIPHERING, ApduTag.GENERAL_DED_CIPHERING):
            raise ApduError("ciphered APDU: no encryption key configured", offset=0)
        reading = self._templates.decode(apdu)
        if reading is not None:
            return reading
        notification = decode_data_notification(apdu)
        plan = make_plan(notification, self._forced)
        reading = execute(plan, leaves(notification.body), notification.date_time)
        self._templates.learn(apdu, plan)
        return reading

    def decode_frame_content(self, frame_content: bytes) -> dict[str, FieldValue] | None:
        """Decode HDLC frame content into the normalized dictionary, or None if it cannot be."""
        try:
            return self.decode(frame_content).as_dict()
        except DecodeError:
            return None

    def decode_message_payload(self, payload: bytes) -> dict[str, FieldValue] | None:
        """Decode a bare APDU (as MQTT relays forward it, without HDLC and LLC), or None."""
        return self.decode_frame_content(payload)
