"""LLC header and xDLMS APDUs that meters push (IEC 62056-5-3, IEC 62056-46 §7 for the LLC).

Meters push a ``data-notification`` (tag 0x0F) carrying one A-XDR ``Data`` value, optionally
ciphered (``general-glo-ciphering``, 0xDB) and/or split by ``general-block-transfer`` (0xE0).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, NamedTuple

from han2mqtt.errors import ApduError, AxdrError
from han2mqtt.protocol.axdr import AxdrValue, DataTag, decode_data, leaf_offsets
from han2mqtt.protocol.cosem import CosemDateTime
from han2mqtt.protocol.descriptors import decode_described_body

__all__ = ["ApduTag", "DataNotification", "decode_data_notification", "strip_llc"]

LLC_RESPONSE: Final = b"\xe6\xe7\x00"
"""LLC header of frames from the server (meter): DSAP 0xE6, SSAP 0xE7, control 0x00."""
LLC_COMMAND: Final = b"\xe6\xe6\x00"
"""LLC header of frames towards the server; a few meters use it for pushes too."""
_DATE_TIME_LENGTH: Final = 12
_INVOKE_ID_LENGTH: Final = 4


class ApduTag(IntEnum):
    """xDLMS APDU tags that occur in push streams (IEC 62056-5-3 §9.5 ASN.1 module)."""

    DATA_NOTIFICATION = 0x0F
    GENERAL_GLO_CIPHERING = 0xDB
    GENERAL_DED_CIPHERING = 0xDC
    GENERAL_BLOCK_TRANSFER = 0xE0


class DataNotification(NamedTuple):
    """A decoded ``data-notification``.

    Attributes:
        long_invoke_id_and_priority: the 32-bit long-invoke-id-and-priority field.
        date_time: the optional date-time of the notification (None when absent).
        body: the notification body, an A-XDR value tree.
        typed: False when the body's elements carry untyped attribute descriptors
            (:mod:`han2mqtt.protocol.descriptors`): its leaves are then not all A-XDR values.
    """

    long_invoke_id_and_priority: int
    date_time: CosemDateTime | None
    body: AxdrValue
    typed: bool = True
    apdu: bytes = b""
    """The APDU the notification was decoded from (for :meth:`leaf_tags`)."""
    body_at: int = 0
    """Offset of the body in :attr:`apdu`."""

    def leaf_tags(self) -> tuple[int, ...]:
        """The A-XDR tag of every leaf of a typed body, in wire order (() when unknown).

        Position layouts are matched by these: the decoded values alone do not tell a
        long-unsigned from a double-long-unsigned.
        """
        if not self.typed or not self.apdu:
            return ()
        return tuple(self.apdu[offset] for offset in leaf_offsets(self.apdu, self.body_at))


def strip_llc(content: bytes) -> bytes:
    """Remove the 3-byte LLC header if present (frames without it exist in the wild)."""
    if content[:3] in (LLC_RESPONSE, LLC_COMMAND):
        return content[3:]
    return content


def decode_data_notification(apdu: bytes) -> DataNotification:
    """Decode a data-notification APDU (no LLC header).

    The optional date-time appears in three forms in the field: ``00`` (absent), ``0C`` + 12 octets
    (the standard encoding of an OCTET STRING (SIZE(12)) in A-XDR), and ``09 0C`` + 12 octets
    (Kaifa and old Kamstrup firmware encode it as a tagged Data octet-string).

    Raises:
        ApduError: not a data-notification, or its header is truncated.
        AxdrError: the body is malformed (including trailing bytes after the body).
    """
    if not apdu:
        raise ApduError("empty APDU")
    if apdu[0] != ApduTag.DATA_NOTIFICATION:
        raise ApduError(f"not a data-notification: APDU tag 0x{apdu[0]:02x}", offset=0)
    pos = 1 + _INVOKE_ID_LENGTH
    if len(apdu) <= pos:
        raise ApduError("data-notification header truncated", offset=len(apdu))
    invoke = int.from_bytes(apdu[1:pos], "big")
    date_time, pos = _date_time(apdu, pos)
    try:
        body, end = decode_data(apdu, pos)
    except AxdrError as exc:
        # Not A-XDR throughout: the one other body shape meters push (untyped descriptors,
        # Sagemcom XT211), read exactly or not at all; else the typed reading's error stands.
        try:
            body, end = decode_described_body(apdu, pos)
        except AxdrError:
            raise exc from None
        if end != len(apdu):
            raise exc from None
        return DataNotification(invoke, date_time, body, typed=False, apdu=apdu, body_at=pos)
    if end != len(apdu):
        raise AxdrError(f"{len(apdu) - end} bytes after the notification body", offset=end)
    return DataNotification(invoke, date_time, body, apdu=apdu, body_at=pos)


def _date_time(apdu: bytes, pos: int) -> tuple[CosemDateTime | None, int]:
    marker = apdu[pos]
    if marker == 0:
        return None, pos + 1
    if marker == DataTag.OCTET_STRING and apdu[pos + 1 : pos + 2] == b"\x0c":
        pos += 1
    elif marker != _DATE_TIME_LENGTH:
        raise ApduError(f"bad date-time marker 0x{marker:02x}", offset=pos)
    end = pos + 1 + _DATE_TIME_LENGTH
    if end > len(apdu):
        raise ApduError("data-notification date-time truncated", offset=pos)
    return CosemDateTime.from_bytes(apdu[pos + 1 : end]), end
