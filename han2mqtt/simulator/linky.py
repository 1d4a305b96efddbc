"""Linky TIC frames for ``han2mqtt simulate --meter linky``: a plausible meter, checksums right.

Historique mode, HC/HP option (Enedis-NOI-CPT_54E): the apparent power wanders, the off-peak
or peak register (the tariff period follows the hour of the frame) grows by what that power would
use between two frames, so a bridge fed with them sees consistent registers and power.
"""

from __future__ import annotations

import math
from typing import Final

from han2mqtt.protocol.tic import CR, ETX, LF, STX, checksum

__all__ = ["LINKY_ID", "historique_frame", "is_off_peak", "linky_frames"]

LINKY_ID: Final = "021728123456"
"""The simulated meter's ADCO (text, with its leading zero)."""
_SECONDS_PER_FRAME: Final = 2
"""A historique frame at 1200 baud takes about 1.5 s to send."""
_VOLTS: Final = 230
_OFF_PEAK: Final = range(6)
"""Hours of the off-peak (heures creuses) period: 00:00-06:00."""


def _group(label: str, value: str) -> bytes:
    body = f"{label} {value}".encode("ascii")
    return bytes((LF,)) + body + b" " + bytes((checksum(body), CR))


def historique_frame(hc_wh: int, hp_wh: int, apparent_va: int, hour: int) -> bytes:
    """One historique frame (HC/HP option) of the simulated meter at local ``hour``."""
    off_peak = hour in _OFF_PEAK
    groups = [
        ("ADCO", LINKY_ID),
        ("OPTARIF", "HC.."),
        ("ISOUSC", "30"),
        ("HCHC", f"{hc_wh:09d}"),
        ("HCHP", f"{hp_wh:09d}"),
        ("PTEC", "HC.." if off_peak else "HP.."),
        ("IINST", f"{round(apparent_va / _VOLTS):03d}"),
        ("IMAX", "090"),
        ("PAPP", f"{apparent_va:05d}"),
        ("HHPHC", "A"),
        ("MOTDETAT", "000000"),
    ]
    return bytes((STX,)) + b"".join(_group(*g) for g in groups) + bytes((ETX,))


def is_off_peak(hour: int) -> bool:
    """Whether the off-peak register counts at local ``hour`` (00:00-06:00 here)."""
    return hour in _OFF_PEAK


def linky_frames(count: int = 60, *, start_hour: int = 5) -> list[bytes]:
    """``count`` consecutive historique frames (STX … ETX), two seconds apart."""
    hc, hp = 723_392, 1_742_238  # Wh
    frames = []
    for index in range(count):
        seconds = index * _SECONDS_PER_FRAME
        hour = (start_hour + seconds // 3600) % 24
        papp = round(1200 + 800 * math.sin(index / 7))  # VA
        used = papp * _SECONDS_PER_FRAME / 3600  # Wh, taking VA for W (a resistive load)
        off_peak = hour in _OFF_PEAK
        hc, hp = (hc + round(used), hp) if off_peak else (hc, hp + round(used))
        frames.append(historique_frame(hc, hp, papp, hour))
    return frames
