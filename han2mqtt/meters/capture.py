"""Self-describing push lists: each value paired with the capture object that names it.

A push setup (interface class 40) sends the attributes its ``push_object_list`` (attribute 2)
names, in that order (IEC 62056-6-2 / Blue Book §4.4.8, "Push setup").  Swiss, Austrian and
Cypriot meters (Landis+Gyr E450/E570, Iskra AM550 on the VSE customer-interface configuration)
put that list itself first, so a notification says what it carries::

    structure(n) {
        array(n) { structure { class-id long-unsigned, logical-name octet-string(6),
                               attribute-index integer, data-index long-unsigned } ... },
        value 2, ..., value n
    }

The first definition names the array itself (class 40, attribute 2); value *i* is the attribute
definition *i* names.  The older two-array form ``structure { array of definitions, array of
values }`` pairs the same way.  A value is either the attribute as sent or a structure of that
value and its scaler-unit.

What is certain and what is not:

* The OBIS code and attribute come from the definition, never from the value's position.
* A number's scaling comes from its own scaler-unit, else from the list's column for the
  register's scaler-unit attribute (Register 3, Demand Register 4), else from a named profile
  whose published capture list is exactly this one (:mod:`han2mqtt.meters.pushprofiles`).
* Without any of these a register's number is published raw under its OBIS code only, marked
  unscaled, and feeds no normalized field: a power of ten is never guessed.
* A list that cannot be paired exactly (a count mismatch, an element that is no definition,
  one value named twice) is a :class:`LayoutError`.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from han2mqtt.errors import LayoutError
from han2mqtt.meters.normalize import TEXT, field_for
from han2mqtt.meters.pushprofiles import PushProfile, profile_for
from han2mqtt.protocol.axdr import AxdrValue
from han2mqtt.protocol.obis import OBIS_LENGTH, Obis

__all__ = ["CaptureItem", "CaptureList", "capture_items", "described_items", "scaler_unit"]

DATA: Final = 1
"""Interface class Data: its value (attribute 2) has no scaler, it is exact as sent."""
REGISTER: Final = 3
EXTENDED_REGISTER: Final = 4
DEMAND_REGISTER: Final = 5
CLOCK: Final = 8
PUSH_SETUP: Final = 40
PUSH_OBJECT_LIST: Final = 2
"""Attribute 2 of a push setup: the capture objects, sent first by self-describing lists."""
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
_VALUED: Final = frozenset({DATA, REGISTER, EXTENDED_REGISTER, DEMAND_REGISTER, CLOCK})


class CaptureItem(NamedTuple):
    """A value paired with its capture object, ready for planning.

    Attributes:
        scaler_unit: the scaling stated for a number (its own, its column's, its profile's, or
            "as sent" for classes without a scaler); None for text and date-times, and for a
            number whose scaling nothing states.
        scaled: False for a number whose scaling nothing states: it is published raw under its
            OBIS code only, marked unscaled.
    """

    obis: Obis
    value: AxdrValue
    scaler_unit: tuple[int, int] | None
    leaf: int
    """Index of the value among the body's leaves in wire order (for templates)."""
    scaled: bool = True


class CaptureList(NamedTuple):
    """The paired items of a self-describing list and the profile that scaled it, if any."""

    items: list[CaptureItem]
    profile: PushProfile | None


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


def _is_own_list(definition: AxdrValue) -> bool:
    """The push setup's own object list: what a self-describing notification sends first."""
    parts = _definition(definition)
    return parts is not None and parts[0] == PUSH_SETUP and parts[2] == PUSH_OBJECT_LIST


def _shape(body: AxdrValue) -> tuple[list[AxdrValue], list[AxdrValue]] | None:
    """(definitions, values) of a self-describing body, or None for any other body.

    The values of the push-list-first form include the list itself at index 0.
    """
    if type(body) is not tuple or len(body) < _PAIR or type(body[0]) is not list:
        return None
    definitions = body[0]
    if definitions and _is_own_list(definitions[0]):
        return definitions, list(body)
    if (
        len(body) == _PAIR
        and type(body[1]) is list
        and definitions
        and _definition(definitions[0]) is not None
    ):
        return definitions, body[1]
    return None


def _columns(definitions: list[AxdrValue], values: list[AxdrValue]) -> list[_Column]:
    """Pair value i with definition i; each value as sent, with its own scaler-unit if any.

    Raises:
        LayoutError: the counts differ, or an element of the first array is no definition.
    """
    if len(definitions) != len(values):
        raise LayoutError(
            f"{len(definitions)} capture objects but {len(values)} values: cannot pair them"
        )
    parsed = [_definition(definition) for definition in definitions]
    for index, parts in enumerate(parsed):
        if parts is None:
            raise LayoutError(f"capture object {index} is not a capture-object definition")
    columns: list[_Column] = []
    leaf = _DEFINITION_SIZE * len(definitions)  # the values' leaves follow the definitions'
    for parts, value in zip(parsed, values, strict=True):
        assert parts is not None  # checked above
        if value is definitions:  # the push object list itself: its leaves are counted
            continue
        own = scaler_unit(value[1]) if type(value) is tuple and len(value) == _PAIR else None
        sent = value[0] if own is not None and type(value) is tuple else value
        columns.append(_Column(*parts, sent, own, leaf))
        leaf += _leaf_count(value)
    return columns


def capture_items(body: AxdrValue) -> CaptureList | None:
    """The values of a self-describing list paired with their OBIS codes; None for other bodies.

    Only the value attribute of Data, Register, Extended Register, Demand Register and Clock is
    published; other attributes (a register's scaler-unit column scales its value) and elements
    of an attribute (data index > 0) are not.

    Raises:
        LayoutError: the list cannot be paired exactly, names one value twice, or carries a
            scaler-unit out of range.
    """
    shape = _shape(body)
    if shape is None:
        return None
    definitions, values = shape
    columns = _columns(definitions, values)
    whole = tuple(parts[:3] for parts in map(_definition, definitions) if parts is not None)
    return _paired(columns, profile_for(whole))


def described_items(body: AxdrValue) -> CaptureList:
    """The values of a body of descriptor/value pairs (:mod:`han2mqtt.protocol.descriptors`).

    Each value is the attribute its own descriptor names; values come without scaler-units,
    so register numbers are unscaled unless a named profile matches the whole list.

    Raises:
        LayoutError: the body is not that shape, or names one value twice.
    """
    if not (type(body) is tuple and len(body) == _PAIR and type(body[1]) is list):
        raise LayoutError("untyped attribute descriptors outside a list of described values")
    columns: list[_Column] = []
    leaf = _leaf_count(body[0])
    for element in body[1]:
        if not (type(element) is tuple and len(element) == _PAIR):
            raise LayoutError(f"described value {len(columns)} is not a descriptor and a value")
        descriptor, value = element
        parts = _definition((*descriptor, 0) if type(descriptor) is tuple else descriptor)
        if parts is None:
            raise LayoutError(f"described value {len(columns)} has no attribute descriptor")
        columns.append(_Column(*parts, value, None, leaf + _leaf_count(descriptor)))
        leaf += _leaf_count(element)
    profile = profile_for(tuple((c.class_id, c.obis, c.attribute) for c in columns))
    return _paired(columns, profile)


def _paired(columns: list[_Column], profile: PushProfile | None) -> CaptureList:
    scalers = _scaler_columns(columns)
    items: list[CaptureItem] = []
    for column in columns:
        if not _is_value(column):
            continue
        if any(item.obis == column.obis for item in items):
            raise LayoutError(f"capture list names the value of {column.obis} twice")
        items.append(_item(column, scalers, profile))
    return CaptureList(items, profile)


def _item(
    column: _Column, scalers: dict[Obis, tuple[int, int]], profile: PushProfile | None
) -> CaptureItem:
    """The value of one column with the scaling something states for it, if anything does."""
    if type(column.value) not in (int, float):
        return CaptureItem(column.obis, column.value, None, column.leaf)
    found = column.scaler_unit or scalers.get(column.obis)
    if found is None and profile is not None:
        found = profile.scalers.get(column.obis)
    if found is None and column.class_id not in SCALER_UNIT_ATTRIBUTE and not _physical(column):
        found = _AS_SENT  # Data, Clock: no scaler by definition, exact as sent
    if found is None:
        return CaptureItem(column.obis, column.value, None, column.leaf, scaled=False)
    return CaptureItem(column.obis, column.value, found, column.leaf)


def _physical(column: _Column) -> bool:
    """A number whose OBIS code names a physical quantity: without a unit it is not known."""
    known = field_for(column.obis)
    return known is not None and known[1] is not TEXT


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
