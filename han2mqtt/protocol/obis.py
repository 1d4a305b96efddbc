"""OBIS codes (IEC 62056-6-1): six value groups ``A-B:C.D.E.F`` identifying a COSEM object."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, NamedTuple

__all__ = ["Obis", "format_obis", "parse_obis"]

OBIS_LENGTH: Final = 6
_TEXT: Final = re.compile(
    r"^(?:(\d{1,3})-(\d{1,3}):)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:[.*](\d{1,3}))?$"
)


class Obis(NamedTuple):
    """An OBIS code as its six value groups A..F."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> Obis:
        """Build from the 6-octet encoding used in COSEM logical names."""
        if len(raw) != OBIS_LENGTH:
            raise ValueError(f"an OBIS code has 6 octets, got {len(raw)}")
        return cls(*raw)

    def __str__(self) -> str:
        return f"{self.a}-{self.b}:{self.c}.{self.d}.{self.e}.{self.f}"

    @property
    def cde(self) -> tuple[int, int, int]:
        """Groups C, D, E: quantity, processing and tariff/phase — what a reading means."""
        return (self.c, self.d, self.e)


@lru_cache(maxsize=1024)
def format_obis(raw: bytes) -> str:
    """Format a 6-octet logical name as ``A-B:C.D.E.F`` (cached: lists repeat the same codes)."""
    return str(Obis.from_bytes(raw))


def parse_obis(text: str) -> Obis:
    """Parse ``1-0:1.8.0.255``, ``1-0:1.8.0*255``, ``1-0:1.8.0`` (F = 255) or ``1.8.0`` (A-B = 1-0).

    Raises:
        ValueError: the text is not an OBIS code or a group is above 255.
    """
    match = _TEXT.match(text.strip())
    if match is None:
        raise ValueError(f"not an OBIS code: {text!r}")
    a, b, c, d, e, f = match.groups()
    groups = (
        int(a) if a is not None else 1,
        int(b) if b is not None else 0,
        int(c),
        int(d),
        int(e),
        int(f) if f is not None else 255,
    )
    if any(group > 255 for group in groups):
        raise ValueError(f"OBIS value group above 255: {text!r}")
    return Obis(*groups)
