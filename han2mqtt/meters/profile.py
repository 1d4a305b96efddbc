"""Vendor profiles: what tells a meter's frames apart, and the quirks of its lists, as data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from han2mqtt.meters.normalize import ObisValue
from han2mqtt.protocol.obis import Obis

__all__ = ["Adjust", "VendorProfile", "unchanged"]

Adjust = Callable[[list[ObisValue]], list[ObisValue]]
"""A vendor's correction of values whose scaling depends on the meter (CT meters, firmware)."""


def unchanged(values: list[ObisValue]) -> list[ObisValue]:
    """The adjustment of vendors whose lists need none."""
    return values


@dataclass(frozen=True, slots=True)
class VendorProfile:
    """How to recognise and read one vendor's push lists.

    Attributes:
        name: layout name, also the ``meter.type`` configuration value.
        manufacturer: value of the ``meter_manufacturer`` field.
        list_ids: prefixes of the list version identifier the vendor sends.
        meter_id_prefixes: GS1 company prefixes that start the vendor's meter numbers.
        implied_exponents: quantity kind (``"current"``, ``"energy"``...) → decimal exponent for
            values sent without a scaler-unit (the NEK list documents state them).
        positional: element count → OBIS codes, for lists that send values without OBIS codes;
            None for a position whose meaning no source states (it is never published).
        trust_clock_deviation: False for meters that send local time with deviation 0.
        adjust: vendor-specific correction applied after the implied exponents.
    """

    name: str
    manufacturer: str
    list_ids: tuple[str, ...] = ()
    meter_id_prefixes: tuple[str, ...] = ()
    implied_exponents: dict[str, int] = field(default_factory=dict)
    positional: dict[int, tuple[Obis | None, ...]] = field(default_factory=dict)
    trust_clock_deviation: bool = True
    adjust: Adjust = unchanged

    def matches_list_id(self, list_id: str) -> bool:
        """True when ``list_id`` is one of this vendor's list version identifiers."""
        return list_id.startswith(self.list_ids) if self.list_ids else False

    def matches_meter_id(self, meter_id: str) -> bool:
        """True when ``meter_id`` starts with one of the vendor's GS1 company prefixes."""
        return meter_id.startswith(self.meter_id_prefixes) if self.meter_id_prefixes else False
