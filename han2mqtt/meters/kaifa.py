"""Kaifa (NEK list "KFM_001"): positional lists without OBIS codes, and the Swedish OBIS-coded list.

The Norwegian lists send bare values in a fixed order; the NEK Kaifa HAN document assigns each
position an OBIS code, which we attach so that per-OBIS topics work for Kaifa too.  No scalers are
sent: current is in mA, voltage in 0.1 V, power in W and var, energy in Wh and varh.
"""

from __future__ import annotations

from han2mqtt.meters.profile import VendorProfile
from han2mqtt.protocol.obis import Obis, parse_obis

__all__ = ["PROFILE", "decode_frame_content"]


def _codes(*texts: str) -> tuple[Obis | None, ...]:
    return tuple(parse_obis(text) for text in texts)


_HEAD = ("1-1:0.2.129.255", "0-0:96.1.0.255", "0-0:96.1.7.255")
_POWER = ("1-0:1.7.0.255", "1-0:2.7.0.255", "1-0:3.7.0.255", "1-0:4.7.0.255")
_PHASE_1 = ("1-0:31.7.0.255", "1-0:32.7.0.255")
_PHASE_3 = (
    "1-0:31.7.0.255",
    "1-0:51.7.0.255",
    "1-0:71.7.0.255",
    "1-0:32.7.0.255",
    "1-0:52.7.0.255",
    "1-0:72.7.0.255",
)
_HOURLY = ("0-0:1.0.0.255", "1-0:1.8.0.255", "1-0:2.8.0.255", "1-0:3.8.0.255", "1-0:4.8.0.255")

POSITIONAL = {
    1: _codes("1-0:1.7.0.255"),  # list 1: active power import only
    9: _codes(*_HEAD, *_POWER, *_PHASE_1),  # list 2, single phase
    13: _codes(*_HEAD, *_POWER, *_PHASE_3),  # list 2, three phase
    14: _codes(*_HEAD, *_POWER, *_PHASE_1, *_HOURLY),  # list 3, single phase
    18: _codes(*_HEAD, *_POWER, *_PHASE_3, *_HOURLY),  # list 3, three phase
}
"""Element count → OBIS code of each position (NEK Kaifa HAN interface, lists 1-3)."""

PROFILE = VendorProfile(
    name="kaifa",
    manufacturer="Kaifa",
    list_ids=("KFM_",),
    meter_id_prefixes=("6970631", "7340157"),
    implied_exponents={"current": -3, "voltage": -1},
    positional=POSITIONAL,
)


def decode_frame_content(content: bytes) -> dict[str, int | float | str]:
    """Decode HDLC frame content (LLC + APDU) as a Kaifa list into the normalized dictionary."""
    from han2mqtt.meters.detect import decode_content  # noqa: PLC0415 - avoids an import cycle

    return decode_content(content, PROFILE).as_dict()
