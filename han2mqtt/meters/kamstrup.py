"""Kamstrup (NEK list "Kamstrup_V0001"): a flat structure of OBIS/value pairs without scalers.

The Kamstrup HAN-NVE interface description fixes the scaling: power in W and var, current in
0.01 A, voltage in V, energy in 10 Wh and 10 varh, power factor in 0.01.  Meters in the field
deviate from it, and the deviations are recognisable:

* **CT meters** (current-transformer connected, meter type ``685...``) send current in 0.001 A.
  Lists without a meter type (Danish firmware) are checked by power balance.  The net apparent
  power √(P² + Q²) can never exceed Σ U·I of the true currents, so read with 0.01 A a CT meter
  always shows Σ U·I ≥ 10·S, while a direct meter shows about S/PF, unless local generation on
  one phase cancels another's load (solar), which makes any ratio possible.  So one frame can
  *prove* a meter direct (ratio below √10 at a real load), never CT: a proven-direct meter stays
  direct, a meter seen with a ratio near 10 or above stays CT (also at low load), per meter id.
* **Swedish firmware** (meter type ending ``09x``) sends energy in Wh.
* **Danish firmware** ("5-digit voltage") sends voltage in 0.01 V: a value above 1000 cannot be
  volts on a low-voltage grid.
* Single-phase meters keep the three-phase structure and send null-data where L2/L3 would be.
"""

from __future__ import annotations

import math
from typing import Final

from han2mqtt.meters.normalize import ObisValue, field_for
from han2mqtt.meters.profile import Rescaling, VendorProfile

__all__ = ["PROFILE", "decode_frame_content"]

CT_METER_TYPE_PREFIX: Final = "685"
SWEDISH_TYPE_MARKER: Final = "09"
"""Characters 16-17 of the 18-character meter type on Swedish firmware (e.g. 6841131BN245101092)."""
CT_CURRENT_EXPONENT: Final = -3
CENTI_VOLT_THRESHOLD: Final = 1000
CENTI_VOLT_EXPONENT: Final = -2
WH_ENERGY_EXPONENT: Final = 0
_DIRECT_RATIO: Final = math.sqrt(10)
"""Σ U·I / S below this (at a real load) proves currents are not read ten times too large."""
_CT_RATIO: Final = 7.5
"""Σ U·I / S at or above this looks like a CT meter (10 and more; some room for rounding)."""
_MIN_APPARENT_POWER: Final = 200.0
"""Below this (VA) the power balance is too noisy to decide anything."""
_REMEMBERED: Final = 1024
"""Meters whose connection is remembered; a bound, not a number a household reaches."""
_proven_direct: set[str] = set()
_seen_ct: set[str] = set()


def _by_field(values: list[ObisValue]) -> dict[str, ObisValue]:
    result: dict[str, ObisValue] = {}
    for item in values:
        known = field_for(item.obis)
        if known is not None:
            result[known[0]] = item
    return result


def _number(item: ObisValue | None) -> float:
    if item is None or isinstance(item.value, str):
        return 0.0
    return item.value * 10.0**item.exponent


def _balance_ratio(fields: dict[str, ObisValue]) -> float | None:
    """Σ U·I / √(P² + Q²) with currents in 0.01 A; None at too low a load to tell."""
    p = _number(fields.get("active_power_import")) - _number(fields.get("active_power_export"))
    q = _number(fields.get("reactive_power_import")) - _number(fields.get("reactive_power_export"))
    apparent = math.hypot(p, q)
    if apparent < _MIN_APPARENT_POWER:
        return None
    ui = sum(
        _number(fields.get(f"voltage_l{phase}")) * _number(fields.get(f"current_l{phase}"))
        for phase in (1, 2, 3)
    )
    return ui / apparent


def _is_ct_by_power_balance(fields: dict[str, ObisValue]) -> bool:
    """Decide (and remember, per meter id) whether a list without meter type is a CT meter."""
    meter_item = fields.get("meter_id")
    meter = str(meter_item.value) if meter_item is not None else ""
    ratio = _balance_ratio(fields)
    if meter in _proven_direct or (ratio is not None and ratio < _DIRECT_RATIO):
        _remember(_proven_direct, meter)
        _seen_ct.discard(meter)
        return False
    if ratio is not None and ratio >= _CT_RATIO:
        _remember(_seen_ct, meter)
        return True
    return meter in _seen_ct  # low load or an ambiguous ratio: what the meter showed before


def _remember(meters: set[str], meter: str) -> None:
    if not meter:
        return  # a list without meter id: nothing to remember it by
    if len(meters) >= _REMEMBERED:
        meters.clear()
    meters.add(meter)


def _type_text(fields: dict[str, ObisValue]) -> str:
    meter_type = fields.get("meter_type")
    return meter_type.value if meter_type and isinstance(meter_type.value, str) else ""


def adjust(values: list[ObisValue]) -> list[ObisValue]:
    """Apply the meter-dependent scaling described in the module docstring."""
    fields = _by_field(values)
    type_text = _type_text(fields)
    ct = type_text.startswith(CT_METER_TYPE_PREFIX) or (
        not type_text and _is_ct_by_power_balance(fields)
    )
    swedish = type_text[15:17] == SWEDISH_TYPE_MARKER
    result = []
    for item in values:
        known = field_for(item.obis)
        kind = known[1].kind if known else None
        if kind == "current" and ct:
            item = item._replace(exponent=CT_CURRENT_EXPONENT)  # noqa: PLW2901
        elif (
            kind == "voltage" and isinstance(item.value, int) and item.value > CENTI_VOLT_THRESHOLD
        ):
            item = item._replace(exponent=CENTI_VOLT_EXPONENT)  # noqa: PLW2901
        elif kind in ("energy", "reactive_energy") and swedish:
            item = item._replace(exponent=WH_ENERGY_EXPONENT)  # noqa: PLW2901
        result.append(item)
    return result


def specialize(values: list[ObisValue]) -> Rescaling | None:
    """:func:`adjust` as rules for a list that sends its meter type (see ``Specialize``).

    The meter type decides CT and Swedish scaling once for the list; only the centivolt check
    looks at each frame's numbers.  A list without a meter type is decided frame by frame from
    its power balance: None.
    """
    type_text = _type_text(_by_field(values))
    if not type_text:
        return None
    exponents: dict[str, int] = {}
    if type_text.startswith(CT_METER_TYPE_PREFIX):
        exponents["current"] = CT_CURRENT_EXPONENT
    if type_text[15:17] == SWEDISH_TYPE_MARKER:
        exponents["energy"] = exponents["reactive_energy"] = WH_ENERGY_EXPONENT
    return Rescaling(exponents, {"voltage": (CENTI_VOLT_THRESHOLD, CENTI_VOLT_EXPONENT)})


PROFILE = VendorProfile(
    name="kamstrup",
    manufacturer="Kamstrup",
    list_ids=("Kamstrup_",),
    meter_id_prefixes=("5706567",),
    implied_exponents={
        "current": -2,
        "energy": 1,
        "reactive_energy": 1,
        "power_factor": -2,
    },
    adjust=adjust,
    specialize=specialize,
)


def decode_frame_content(content: bytes) -> dict[str, int | float | str]:
    """Decode HDLC frame content (LLC + APDU) as a Kamstrup list into the normalized dictionary."""
    from han2mqtt.meters.detect import decode_content  # noqa: PLC0415 - avoids an import cycle

    return decode_content(content, PROFILE).as_dict()
