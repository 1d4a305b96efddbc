"""Frames of many meters: the Aidon captures re-encoded with other meter ids (tests, benchmarks).

The information field of each real frame is kept byte for byte except the 16-digit meter id of
lists 2 and 3; the HDLC frame around it is built anew by the test encoder (fresh HCS and FCS).
"""

from __future__ import annotations

from han2mqtt.simulator import load_samples
from tests.encoder import hdlc

AIDON_LISTS = load_samples()[:3]
"""Aidon 6534 lists 2, 1 and 3 (the real captures)."""
AIDON_ID = b"7359992891237028"
_HEADER = 9
"""Flag, format (2), destination (1), source (2), control, HCS (2): the information follows."""
_TRAILER = 3
"""FCS (2) and the closing flag."""


def meter_id(number: int) -> str:
    """The id of fleet meter ``number``: 16 digits, as Aidon's."""
    return f"{7359990000000000 + number:016d}"


def information(frame: bytes, number: int) -> bytes:
    """The LLC header and APDU of ``frame``, naming meter ``number``."""
    return frame[_HEADER:-_TRAILER].replace(AIDON_ID, meter_id(number).encode("ascii"))


def meter_frames(number: int, *, segmented: bool = False) -> list[bytes]:
    """Lists 2, 1 and 3 of meter ``number``; ``segmented`` splits each into two HDLC segments.

    With ``segmented``, every list is two separate frames (first with the segmentation bit).
    """
    frames = []
    for frame in AIDON_LISTS:
        info = information(frame, number)
        if segmented:
            half = len(info) // 2
            frames += [hdlc(info[:half], segmented=True), hdlc(info[half:])]
        else:
            frames.append(hdlc(info))
    return frames
