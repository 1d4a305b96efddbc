"""Landis+Gyr E450 as Austrian grid companies provision it: a positional list without OBIS codes.

Netz Burgenland's E450 pushes (AES-GCM, general-block-transfer) a structure of 14 bare values:
voltages L1-L3 (V), currents L1-L3 (0.01 A), active power import and export (W), active energy
import and export (Wh), three values whose meaning no source we have states, and the meter
number as an octet-string.  The order is the one the published captures are described with; the
scaling is the one published readers of the same meter model use (Wiener Netze: current /100,
energy /1000 to kWh), and it agrees with the captures (U·I ≈ 71 VA beside P = 29 W).
"""

from __future__ import annotations

from han2mqtt.meters.profile import VendorProfile
from han2mqtt.protocol.obis import Obis, parse_obis

__all__ = ["E450_AT"]


def _code(text: str | None) -> Obis | None:
    return None if text is None else parse_obis(text)


_E450_AT_14 = tuple(
    _code(text)
    for text in (
        "1-0:32.7.0.255",  # voltage L1
        "1-0:52.7.0.255",  # voltage L2
        "1-0:72.7.0.255",  # voltage L3
        "1-0:31.7.0.255",  # current L1
        "1-0:51.7.0.255",  # current L2
        "1-0:71.7.0.255",  # current L3
        "1-0:1.7.0.255",  # active power import
        "1-0:2.7.0.255",  # active power export
        "1-0:1.8.0.255",  # active energy import
        "1-0:2.8.0.255",  # active energy export
        None,  # not stated by any source: never published
        None,
        None,
        "0-0:96.1.0.255",  # meter number
    )
)

E450_AT = VendorProfile(
    name="landisgyr-e450-at",
    manufacturer="Landis+Gyr",
    implied_exponents={"current": -2},
    positional={14: _E450_AT_14},
)
"""Recognised by shape: 13 numbers and a text, which no other positional list has."""
