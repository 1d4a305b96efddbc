"""Self-describing push lists: the capture objects first, then the values, paired one to one.

Swiss meters (the VSE push lists of Landis+Gyr E360/E450/E570 and Iskra AM550) and others send a
notification body that says what it carries::

    structure {
        array { structure { class-id long-unsigned, logical-name octet-string(6),
                            attribute-index integer, data-index long-unsigned } ... },
        array { value ... }
    }

The i-th value is the attribute the i-th capture object names (IEC 62056-6-2 §4.3.6, the
``capture_objects`` of a profile generic / push setup).  A value is either the attribute as
sent or a structure of that value and its scaler-unit.  Scaling comes from the value's own
scaler-unit, else from the list's column for the register's scaler-unit attribute, else from
the default the OBIS code is known by; a register value whose scaling none of these states is
not published, and a list that cannot be paired exactly is a :class:`LayoutError`.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from han2mqtt.errors import LayoutError
from han2mqtt.meters.normalize import field_for
from han2mqtt.protocol.axdr import AxdrValue
from han2mqtt.protocol.obis import OBIS_LENGTH, Obis

__all__ = ["CaptureItem", "capture_items", "scaler_unit"]

DATA: Final = 1
"""Interface class Data: its value (attribute 2) has no scaler, it is exact as sent."""
REGISTER: Final = 3
EXTENDED_REGISTER: Final = 4
DEMAND_REGISTER: Final = 5
CLOCK: Final = 8
VALUE_ATTRIBUTE: Final = 2
"""Attribute 2 is the value of Data, Register, Extended and Demand Register, and Clock's time."""
SCALER_UNIT_ATTRIBUTE: Final = {REGISTER: 3, EXTENDED_REGISTER: 3, DEMAND_REGISTER: 4}
"""Where each register class keeps its scaler-unit (Blue Book: Register 3, Demand Register 4)."""
_AS_SENT: Final = (0, 255)
"""Scaler 0, unit 255 (count / no unit): how a value without a scaler by definition is read."""
_DEFINITION_SIZE: Final = 4
_PAIR: Final = 2
_SCALER_RANGE: Final = range(-9, 10)
"""Scalers a meter uses (an int8 power of ten; real lists use -4..+3): 127 is corruption."""
_UNIT_RANGE: Final = range(256)


class CaptureItem(NamedTuple):
    """A value paired with its capture object, ready for planning."""

    obis: Obis
    value: AxdrValue
    scaler_unit: tuple[int, int] | None
    leaf: int
    """Index of the value among the body's leaves in wire order (for templates)."""


class _Column(NamedTuple):
    class_id: int
    obis: Obis
    attribute: int
    data_index: int
    value: AxdrValue
    scaler_unit: tuple[int, int] | None
    leaf: int


def scaler_unit(value: AxdrValue) -> tuple[int, int] | None:
    """The (scaler, unit) a structure of two integers is, or None when it is something else.

    Raises:
        LayoutError: a scaler-unit whose scaler or unit is out of range (a corrupted frame:
            ignoring it would publish the value with the wrong power of ten).
    """
    if (
        type(value) is tuple
        and len(value) == _PAIR
        and type(value[0]) is int
        and type(value[1]) is int
    ):
        if value[0] not in _SCALER_RANGE or value[1] not in _UNIT_RANGE:
            raise LayoutError(f"scaler-unit ({value[0]}, {value[1]}) out of range")
        return value[0], value[1]
    return None


def _definition(value: AxdrValue) -> tuple[int, Obis, int, int] | None:
    """(class id, logical name, attribute index, data index), or None for anything else."""
    if type(value) is not tuple or len(value) != _DEFINITION_SIZE:
        return None
    class_id, name, attribute, data_index = value
    if (
        type(class_id) is int
        and type(name) is bytes
        and len(name) == OBIS_LENGTH
        and type(attribute) is int
        and type(data_index) is int
    ):
        return class_id, Obis(*name), attribute, data_index
    return None


def _leaf_count(node: AxdrValue) -> int:
    if type(node) is list or type(node) is tuple:
        return sum(map(_leaf_count, node))
    return 1


def _columns(definitions: list[AxdrValue], values: list[AxdrValue]) -> list[_Column]:
    """Pair value i with definition i; each value as sent, with its own scaler-unit if any.

    Raises:
        LayoutError: the counts differ, or an element of the first array is no definition.
    """
    if len(definitions) != len(values):
        raise LayoutError(
            f"{len(definitions)} capture objects but {len(values)} values: cannot pair them"
        )
    columns: list[_Column] = []
    leaf = _DEFINITION_SIZE * len(definitions)  # the values' leaves follow the definitions'
    for definition, value in zip(definitions, values, strict=True):
        parts = _definition(definition)
        if parts is None:
            raise LayoutError(f"capture object {len(columns)} is not a capture-object definition")
        own = scaler_unit(value[1]) if type(value) is tuple and len(value) == _PAIR else None
        sent = value[0] if own is not None and type(value) is tuple else value
        columns.append(_Column(*parts, sent, own, leaf))
        leaf += _leaf_count(value)
    return columns


def capture_items(body: AxdrValue) -> list[CaptureItem] | None:
    """The values of a self-describing list paired with their OBIS codes; None for other bodies.

    Only the value attribute of Data, Register, Extended Register, Demand Register and Clock is
    published; other attributes (a register's scaler-unit column scales its value) and elements
    of an attribute (data index > 0) are not.

    Raises:
        LayoutError: the list cannot be paired exactly, names one value twice, or carries a
            scaler-unit out of range.
    """
    if not (type(body) is tuple and len(body) == _PAIR):
        return None
    definitions, values = body
    if type(definitions) is not list or type(values) is not list or not definitions:
        return None
    if _definition(definitions[0]) is None:
        return None
    columns = _columns(definitions, values)
    scalers = _scaler_columns(columns)
    items: list[CaptureItem] = []
    for column in columns:
        if (
            column.attribute != VALUE_ATTRIBUTE
            or column.data_index
            or column.class_id not in _VALUED
        ):
            continue
        if any(item.obis == column.obis for item in items):
            raise LayoutError(f"capture list names the value of {column.obis} twice")
        found = column.scaler_unit or scalers.get(column.obis)
        if found is None and column.class_id not in SCALER_UNIT_ATTRIBUTE:
            found = _AS_SENT  # Data, Clock: no scaler by definition, exact as sent
        if found is None and not _scale_known(column):
            continue  # a register whose scaling nothing states: never guessed
        items.append(CaptureItem(column.obis, column.value, found, column.leaf))
    return items


_VALUED: Final = frozenset({DATA, REGISTER, EXTENDED_REGISTER, DEMAND_REGISTER, CLOCK})


def _is_value(column: _Column) -> bool:
    """The whole value attribute of a class whose value we know how to read."""
    return (
        column.attribute == VALUE_ATTRIBUTE and not column.data_index and column.class_id in _VALUED
    )


def _scaler_columns(columns: list[_Column]) -> dict[Obis, tuple[int, int]]:
    """Scaler-units sent as columns of their own (a register's attribute 3, or 4 for demand)."""
    found: dict[Obis, tuple[int, int]] = {}
    for column in columns:
        if column.attribute == SCALER_UNIT_ATTRIBUTE.get(column.class_id) and not column.data_index:
            pair = scaler_unit(column.value)
            if pair is not None:
                found[column.obis] = pair
    return found


def _scale_known(column: _Column) -> bool:
    """Without a scaler-unit: Data values are exact as sent; register numbers need a default."""
    if column.class_id in SCALER_UNIT_ATTRIBUTE and type(column.value) in (int, float):
        return field_for(column.obis) is not None
    return True
