"""Aidon (NEK list "AIDON_V0001"; Swedish 27-object list): OBIS + value + scaler-unit structures.

Aidon sends every register with its scaler-unit, so no exponents are implied.  Its clock object
(0-0:1.0.0.255) carries local time with deviation 0, so the deviation is not trusted.
"""

from __future__ import annotations

from han2mqtt.meters.profile import VendorProfile

__all__ = ["PROFILE", "decode_frame_content"]

PROFILE = VendorProfile(
    name="aidon",
    manufacturer="Aidon",
    list_ids=("AIDON_",),
    meter_id_prefixes=("7359992",),
    trust_clock_deviation=False,
)


def decode_frame_content(content: bytes) -> dict[str, int | float | str]:
    """Decode HDLC frame content (LLC + APDU) as an Aidon list into the normalized dictionary."""
    from han2mqtt.meters.detect import decode_content  # noqa: PLC0415 - avoids an import cycle

    return decode_content(content, PROFILE).as_dict()
