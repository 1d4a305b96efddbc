"""Named push profiles: the scaling of self-describing lists that send numbers without it.

Some push lists name every object they carry but send register values without scaler-units
(the scaler-unit is a register attribute the push setup does not include).  Their scaling is then
known only where a published source states it for exactly that list.  A profile here is selected
only by the *whole* capture list (class id, logical name and attribute of every column, in
order): one column more, less or different and the numbers are published unscaled instead.

Each profile names the document its scalers come from.  Units are COSEM unit codes (Blue Book
§4.3.2, "Register" unit enumeration): 27 W, 29 var, 30 Wh, 32 varh, 33 A, 35 V.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from han2mqtt.protocol.obis import Obis, parse_obis

__all__ = ["PROFILES", "Column", "PushProfile", "profile_for"]

Column = tuple[int, Obis, int]
"""(class id, logical name, attribute index) of one capture object."""

_W: Final = 27
_WH: Final = 30
_VARH: Final = 32
_A: Final = 33
_V: Final = 35


@dataclass(frozen=True, slots=True)
class PushProfile:
    """A published push list and the scaling its source states for each number in it.

    Attributes:
        name: the profile's name (shown by ``han2mqtt decode`` and in the docs).
        source: the document (or the public test that states the values) the scalers come from.
        columns: every capture object of the list in order, the push setup's own ones included.
        scalers: OBIS code → (scaler, unit) of each register value the list sends bare.
    """

    name: str
    source: str
    columns: tuple[Column, ...]
    scalers: dict[Obis, tuple[int, int]]


def _columns(*rows: tuple[int, str, int]) -> tuple[Column, ...]:
    return tuple((class_id, parse_obis(code), attribute) for class_id, code, attribute in rows)


_VSE_E450_PUSH: Final = "0-8:25.9.0.255"

VSE_LGZ_E450_2026: Final = PushProfile(
    name="vse-lgz-e450-2026",
    source=(
        "Landis+Gyr E450 on the Swiss VSE-standardised customer-interface push (2026 "
        "configuration): values stated for meter LGZ1030653520967 in scs/smartmeter-datacollector "
        "tests/test_lge450.py::test_lge450_vse_standard (frames UNENCRYPTED_VALID_DATA_CFG2026): "
        "energy in Wh and varh, power in W, voltage in V, current in 0.01 A"
    ),
    columns=_columns(
        (40, _VSE_E450_PUSH, 2),
        (40, _VSE_E450_PUSH, 1),
        (1, "0-0:42.0.0.255", 2),
        (1, "0-0:96.1.1.255", 2),
        (8, "0-0:1.0.0.255", 2),
        (3, "1-1:1.8.0.255", 2),
        (3, "1-1:2.8.0.255", 2),
        (3, "1-1:3.8.0.255", 2),
        (3, "1-1:4.8.0.255", 2),
        (3, "1-0:1.7.0.255", 2),
        (3, "1-0:2.7.0.255", 2),
        (3, "1-0:32.7.0.255", 2),
        (3, "1-0:52.7.0.255", 2),
        (3, "1-0:72.7.0.255", 2),
        (3, "1-0:31.7.0.255", 2),
        (3, "1-0:51.7.0.255", 2),
        (3, "1-0:71.7.0.255", 2),
    ),
    scalers={
        parse_obis("1-1:1.8.0.255"): (0, _WH),
        parse_obis("1-1:2.8.0.255"): (0, _WH),
        parse_obis("1-1:3.8.0.255"): (0, _VARH),
        parse_obis("1-1:4.8.0.255"): (0, _VARH),
        parse_obis("1-0:1.7.0.255"): (0, _W),
        parse_obis("1-0:2.7.0.255"): (0, _W),
        parse_obis("1-0:32.7.0.255"): (0, _V),
        parse_obis("1-0:52.7.0.255"): (0, _V),
        parse_obis("1-0:72.7.0.255"): (0, _V),
        parse_obis("1-0:31.7.0.255"): (-2, _A),
        parse_obis("1-0:51.7.0.255"): (-2, _A),
        parse_obis("1-0:71.7.0.255"): (-2, _A),
    },
)

PROFILES: Final = (VSE_LGZ_E450_2026,)
"""Every named profile; a list matches at most one (their column lists differ)."""

_BY_COLUMNS: Final = {profile.columns: profile for profile in PROFILES}


def profile_for(columns: tuple[Column, ...]) -> PushProfile | None:
    """The profile whose capture list is exactly ``columns`` (the push list's own included)."""
    return _BY_COLUMNS.get(columns)
