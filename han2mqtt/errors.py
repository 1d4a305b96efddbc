"""The one exception tree of han2mqtt.

Every error this package raises on purpose derives from :class:`Han2MqttError`, so callers can
catch one class.  Errors about data that came off the wire derive from :class:`DecodeError`; they
carry the offset (where one is known) so a user can look at the capture.  Foreign exceptions
(serial, socket, paho, cryptography) are translated once, at the edge, with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "ApduError",
    "AxdrError",
    "ChecksumError",
    "ConfigError",
    "DecodeError",
    "DecryptionError",
    "FramingError",
    "Han2MqttError",
    "LayoutError",
    "MissingKeyError",
    "PriceError",
    "PriceFormatError",
    "SecurityError",
    "StateError",
    "TransportError",
]


class Han2MqttError(Exception):
    """Root of every error raised by han2mqtt."""


class DecodeError(Han2MqttError):
    """Bytes from the meter could not be turned into a reading.

    Attributes:
        offset: position in the decoded buffer where the problem was found, if known.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at offset {offset})")
        self.offset = offset


class FramingError(DecodeError):
    """A transport frame (HDLC, M-Bus, P1 telegram) is malformed or incomplete."""


class ChecksumError(FramingError):
    """A header or frame check sequence, or a telegram CRC, does not match."""


class AxdrError(DecodeError):
    """A-XDR encoded data is malformed: unknown tag, truncated value, bad length."""


class ApduError(DecodeError):
    """The APDU is not one we can decode (unknown tag, malformed header)."""


class LayoutError(DecodeError):
    """Decoded data does not match the meter layout it claims (or any known layout)."""


class SecurityError(DecodeError):
    """A ciphered APDU could not be deciphered."""


class MissingKeyError(SecurityError):
    """A ciphered APDU arrived but no encryption key is configured for it."""


class DecryptionError(SecurityError):
    """Deciphering failed: wrong encryption key, wrong authentication key, or corrupted data."""


class ConfigError(Han2MqttError):
    """The configuration is invalid; the message names the offending key."""


class StateError(Han2MqttError):
    """The energy state file cannot be read back (damaged, or another format)."""


class TransportError(Han2MqttError):
    """The connection to the meter (serial port, TCP peer) failed."""


class PriceError(Han2MqttError):
    """Prices could not be had: a source failed, refused the request or lacks the day."""


class PriceFormatError(PriceError):
    """A price source's response is malformed, incomplete or contradicts itself."""
