"""Iskra AM550 as Slovenian grid companies provision it (Elektro Ljubljana): position lists.

These pushes carry no OBIS codes and no scaler-units: a structure of bare values whose meaning
is fixed by position.  Two lists are read, each recognised by its *full* structure — the element
count, the A-XDR type of every element, and the COSEM logical device name ("ISK…") first:

* 18 values (three-phase, every few seconds): logical device name, device ID 4, active and
  reactive power import and export, voltages L1-L3, currents L1-L3, active power import L1-L3,
  active power export L1-L3.
* 9 values (single-phase): logical device name, device ID 3, active and reactive power import and
  export, voltage L1, active energy export tariffs 1 and 2.

The positions and their OBIS codes are those amsreader-firmware reads these lists with
(``src/IEC6205675.cpp``, its Iskra list-ID branch, which annotates each position with its OBIS
code), built from the captures and grid-company descriptions posted in its issues #615, #869 and
#956.  Scaling as there: power in W and var, voltage in 0.1 V (long-unsigned), current in 0.01 A
(long-unsigned), energy in Wh.  The captures agree: in each three-phase frame the per-phase import
powers add up to the total within a watt.

Any other list from these meters (the 12-value energy list, the 10-value lists, lists whose
element types differ) matches no layout and is refused, never read by a near-enough table.
"""

from __future__ import annotations

from typing import Final

from han2mqtt import model
from han2mqtt.meters.normalize import TEXT
from han2mqtt.meters.profile import VendorProfile
from han2mqtt.protocol.axdr import DataTag
from han2mqtt.protocol.obis import parse_obis

__all__ = ["PROFILE"]

_TEXT: Final = DataTag.OCTET_STRING
_U16: Final = DataTag.LONG_UNSIGNED
_U32: Final = DataTag.DOUBLE_LONG_UNSIGNED

_THREE_PHASE: Final = (
    ("0-0:42.0.0.255", _TEXT),  # COSEM logical device name
    ("0-0:96.1.3.255", _TEXT),  # device ID 4
    ("1-0:1.7.0.255", _U32),
    ("1-0:2.7.0.255", _U32),
    ("1-0:3.7.0.255", _U32),
    ("1-0:4.7.0.255", _U32),
    ("1-0:32.7.0.255", _U16),
    ("1-0:52.7.0.255", _U16),
    ("1-0:72.7.0.255", _U16),
    ("1-0:31.7.0.255", _U16),
    ("1-0:51.7.0.255", _U16),
    ("1-0:71.7.0.255", _U16),
    ("1-0:21.7.0.255", _U32),
    ("1-0:41.7.0.255", _U32),
    ("1-0:61.7.0.255", _U32),
    ("1-0:22.7.0.255", _U32),
    ("1-0:42.7.0.255", _U32),
    ("1-0:62.7.0.255", _U32),
)
_SINGLE_PHASE: Final = (
    ("0-0:42.0.0.255", _TEXT),  # COSEM logical device name
    ("0-0:96.1.2.255", _TEXT),  # device ID 3
    ("1-0:1.7.0.255", _U32),
    ("1-0:2.7.0.255", _U32),
    ("1-0:3.7.0.255", _U32),
    ("1-0:4.7.0.255", _U32),
    ("1-0:32.7.0.255", _U16),
    ("1-0:2.8.1.255", _U32),
    ("1-0:2.8.2.255", _U32),
)
_LISTS: Final = (_THREE_PHASE, _SINGLE_PHASE)

PROFILE: Final = VendorProfile(
    name="iskra-si",
    manufacturer="Iskraemeco",
    implied_exponents={"voltage": -1, "current": -2},
    positional={len(rows): tuple(parse_obis(code) for code, _ in rows) for rows in _LISTS},
    positional_tags={len(rows): tuple(int(tag) for _, tag in rows) for rows in _LISTS},
    positional_prefix="ISK",
    overrides={(42, 0, 0): (model.FIELD_METER_ID, TEXT)},
)
"""The meter is named by its logical device name (unique per meter by definition)."""
