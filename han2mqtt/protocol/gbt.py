"""DLMS general-block-transfer (IEC 62056-5-3 §9.3.4): one APDU split into numbered blocks.

Wire layout of one block::

    E0 | block-control (1) | block-number (2) | block-number-ack (2) | raw-data (length + octets)

Block control: bit 7 last block, bit 6 streaming, bits 0-5 window size.  Landis+Gyr E450 meters
push a ciphered APDU (0xDB ...) split over three blocks, one per HDLC frame; the blocks are joined
before decryption.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from han2mqtt.errors import ApduError, AxdrError
from han2mqtt.protocol.apdu import ApduTag
from han2mqtt.protocol.axdr import decode_length

__all__ = ["BlockAssembler", "GeneralBlock", "parse_block"]

LAST_BLOCK: Final = 0x80
STREAMING: Final = 0x40
MAX_APDU: Final = 64 * 1024


class GeneralBlock(NamedTuple):
    """One general-block-transfer APDU."""

    control: int
    number: int
    acknowledged: int
    data: bytes

    @property
    def last(self) -> bool:
        """True on the final block."""
        return bool(self.control & LAST_BLOCK)


def parse_block(apdu: bytes) -> GeneralBlock:
    """Parse one general-block-transfer APDU.

    Raises:
        ApduError: not a block, or a malformed or truncated one.
    """
    if len(apdu) < 6 or apdu[0] != ApduTag.GENERAL_BLOCK_TRANSFER:
        raise ApduError("not a general-block-transfer APDU", offset=0)
    try:
        length, pos = decode_length(apdu, 6)
    except AxdrError as exc:
        raise ApduError("general-block-transfer: bad length", offset=6) from exc
    if pos + length != len(apdu):
        raise ApduError(
            f"general-block-transfer: {length} octets announced, {len(apdu) - pos} present",
            offset=pos,
        )
    return GeneralBlock(
        apdu[1], int.from_bytes(apdu[2:4], "big"), int.from_bytes(apdu[4:6], "big"), apdu[pos:]
    )


class BlockAssembler:
    """Join blocks 1, 2, ... n into the APDU they carry; out-of-order blocks restart the join."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._next = 1
        self._size = 0
        self.incomplete = 0

    def add(self, apdu: bytes) -> bytes | None:
        """Add one block; return the whole APDU after the last block, else None.

        Raises:
            ApduError: a malformed block, a gap in the numbering, or an APDU beyond 64 KiB.
        """
        block = parse_block(apdu)
        if block.number != self._next:
            expected = self._next
            self._reset(count=bool(self._parts))
            if block.number != 1:
                raise ApduError(
                    f"general-block-transfer: block {block.number}, expected {expected}"
                )
        self._parts.append(block.data)
        self._size += len(block.data)
        self._next = block.number + 1
        if self._size > MAX_APDU:
            self._reset(count=True)
            raise ApduError("general-block-transfer: APDU larger than 64 KiB")
        if not block.last:
            return None
        whole = b"".join(self._parts)
        self._reset(count=False)
        return whole

    def _reset(self, *, count: bool) -> None:
        if count:
            self.incomplete += 1
        self._parts.clear()
        self._next = 1
        self._size = 0
