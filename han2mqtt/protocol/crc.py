"""CRC-16/X.25 (HDLC FCS/HCS, IEC 62056-46 annex) and CRC-16/ARC (DSMR P1 telegrams).

CRC-16/X.25 is the reflected CCITT polynomial 0x1021 with init 0xFFFF and final XOR 0xFFFF.
Instead of a byte loop in Python we use the C implementation of the *non-reflected* CCITT CRC in
:func:`binascii.crc_hqx`: a reflected CRC equals the bit-reversed non-reflected CRC of the
bit-reversed input bytes (the init value 0xFFFF is its own reversal).  ``bytes.translate`` reverses
the bits of every byte in C, so the whole check runs without a Python-level loop — this is the
single largest cost of reading a frame.
"""

from __future__ import annotations

import binascii

__all__ = ["crc16_arc", "crc16_x25"]

_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _reverse16(value: int) -> int:
    return (_BIT_REVERSED[value & 0xFF] << 8) | _BIT_REVERSED[value >> 8]


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-16/X.25 of ``data`` as an int (check value of b"123456789" is 0x906E).

    On the wire the result is sent least significant byte first.
    """
    return _reverse16(binascii.crc_hqx(bytes(data).translate(_BIT_REVERSED), 0xFFFF)) ^ 0xFFFF


def _arc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_ARC_TABLE = _arc_table()


def crc16_arc(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-16/ARC (reflected 0x8005, init 0) used by DSMR P1 telegrams.

    The check value of b"123456789" is 0xBB3D.  Telegrams are short and arrive every second or
    less, so a table-driven loop is fast enough here.
    """
    crc = 0
    table = _ARC_TABLE
    for byte in bytes(data):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc
