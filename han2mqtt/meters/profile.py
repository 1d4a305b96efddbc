"""Vendor profiles: what tells a meter's frames apart, and the quirks of its lists, as data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from han2mqtt.meters.normalize import ObisValue, Quantity
from han2mqtt.protocol.obis import Obis

__all__ = ["Adjust", "Rescaling", "Specialize", "VendorProfile", "unchanged"]

Adjust = Callable[[list[ObisValue]], list[ObisValue]]
"""A vendor's correction of values whose scaling depends on the meter (CT meters, firmware).

It returns one value per value, in order, and changes exponents only."""


class Rescaling(NamedTuple):
    """What a vendor's :data:`Adjust` reduces to for one list once its identifiers are known.

    Attributes:
        exponents: quantity kind → the exponent every number of that kind takes.
        above: quantity kind → (threshold, exponent): an integer of that kind greater than the
            threshold takes that exponent instead (Danish Kamstrup firmware's centivolts).
    """

    exponents: dict[str, int]
    above: dict[str, tuple[int, int]]


Specialize = Callable[[list[ObisValue]], Rescaling | None]
"""Given one value per step of a plan (constants as they are, numbers read per frame as 0, time
stamps as empty text), the rules :data:`Adjust` applies to every frame of that plan; None when it
decides on more than the frame's own numbers one by one (then every frame goes through it)."""


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
        positional_tags: element count → the A-XDR tag every position must have; with it a
            list is recognised only by its full structure (and ``positional_prefix``).
        positional_prefix: text the first position of such a list starts with.
        overrides: field meanings of the vendor's lists that differ from the NEK lists'
            (C.D.E → field, or None for no field).
        trust_clock_deviation: False for meters that send local time with deviation 0.
        adjust: vendor-specific correction applied after the implied exponents.
        specialize: where ``adjust`` reduces to :class:`Rescaling` rules for a list, those rules
            (compiled templates then apply them without calling ``adjust`` per frame).
    """

    name: str
    manufacturer: str
    list_ids: tuple[str, ...] = ()
    meter_id_prefixes: tuple[str, ...] = ()
    implied_exponents: dict[str, int] = field(default_factory=dict)
    positional: dict[int, tuple[Obis | None, ...]] = field(default_factory=dict)
    positional_tags: dict[int, tuple[int, ...]] = field(default_factory=dict)
    positional_prefix: str = ""
    overrides: dict[tuple[int, int, int], tuple[str, Quantity] | None] | None = None
    trust_clock_deviation: bool = True
    adjust: Adjust = unchanged
    specialize: Specialize | None = None

    def matches_list_id(self, list_id: str) -> bool:
        """True when ``list_id`` is one of this vendor's list version identifiers."""
        return list_id.startswith(self.list_ids) if self.list_ids else False

    def matches_meter_id(self, meter_id: str) -> bool:
        """True when ``meter_id`` starts with one of the vendor's GS1 company prefixes."""
        return meter_id.startswith(self.meter_id_prefixes) if self.meter_id_prefixes else False
