"""TIC test vectors (``vectors/tic.json``) and the ways a port delivers them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from han2mqtt.protocol.tic import checksum, frames_from_text

__all__ = ["frames_from_text", "group", "items", "text", "wire", "with_parity"]

VECTORS = Path(__file__).resolve().parent / "vectors" / "tic.json"
HISTORIQUE = "fr-generic-electronic-historique-hchp-renedteleinfo"
HISTORIQUE_CUT = "fr-linky-historique-hchp-hallard-teleinfotest"
STANDARD = "fr-linky-standard-3p-base-esphome2060"


@cache
def items() -> tuple[dict[str, Any], ...]:
    """Every TIC vector."""
    return tuple(json.loads(VECTORS.read_text(encoding="utf-8")))


def text(item_id: str) -> str:
    """The capture's text, one group per line, as the source printed it."""
    for item in items():
        if item["id"] == item_id:
            return str(item["hex_or_text"])
    raise KeyError(item_id)


def wire(item_id: str) -> bytes:
    """The capture as the port sends it: STX, LF group CR …, ETX (7-bit characters)."""
    return b"".join(frames_from_text(text(item_id)))


def with_parity(data: bytes) -> bytes:
    """The bytes as a port set to 8N1 reads a 7E1 line: the even-parity bit in bit 7."""
    return bytes(b | 0x80 if b.bit_count() % 2 else b for b in data)


def group(label: str, value: str, *, standard: bool, horodate: str | None = None) -> str:
    """One group's line with its checksum (for tests that need a group no capture has)."""
    if standard:
        body = "\t".join([label, *([horodate] if horodate else []), value]) + "\t"
        return body + chr(checksum(body.encode()))
    body = f"{label} {value}"
    return f"{body} {chr(checksum(body.encode()))}"
