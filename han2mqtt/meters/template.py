"""Compiled templates: decode repeat frames of a known shape with one ``struct`` call.

A meter pushes the same list every few seconds: the same structure and OBIS codes, only numbers,
time stamps and (from meter to meter) identifiers change.  After the first frame of a shape has
been decoded the slow way (A-XDR tree, layout recognition, :class:`~han2mqtt.meters.detect.Plan`),
a template records where in the APDU each planned value sits.  A later frame of the same length is
unpacked by one precompiled :class:`struct.Struct`; if every constant byte run (tags, lengths,
OBIS codes, scalers) matches, the plan runs on the unpacked values.  Otherwise the frame takes the
slow path and may teach a template of its own.

Identifiers (meter id, meter type, list id: the octet and visible strings a plan publishes as
text) are read as values, not compared as constants, so one template serves a whole fleet of
meters of one model.  A frame whose identifiers differ from the learned ones gets the plan with
its own texts, and only if every identifier keeps the traits the plan was decided on
(:func:`~han2mqtt.meters.detect.identifier_traits`: text or not, vendor prefixes ...); else the
slow path decides.  The result is identical by construction: the template only replaces *how*
the planned values are read, never what is planned.

Memory is bounded whatever the number of meters: at most :data:`MAX_TEMPLATES` templates (least
recently used evicted), each remembering the plans of its last :data:`MAX_PLANS_PER_TEMPLATE`
identifier sets.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from operator import itemgetter
from typing import Final

from han2mqtt.meters.compiled import CompiledPlan
from han2mqtt.meters.detect import Plan, Slot, identifier_text, identifier_traits
from han2mqtt.meters.normalize import ObisValue
from han2mqtt.model import MeterReading
from han2mqtt.protocol.axdr import DataTag, decode_length, leaf_offsets

__all__ = ["MAX_PLANS_PER_TEMPLATE", "MAX_TEMPLATES", "Template", "TemplateCache", "build_template"]

_STRUCT_CODES: Final[dict[int, str]] = {
    DataTag.DOUBLE_LONG: "i",
    DataTag.DOUBLE_LONG_UNSIGNED: "I",
    DataTag.INTEGER: "b",
    DataTag.LONG: "h",
    DataTag.UNSIGNED: "B",
    DataTag.LONG_UNSIGNED: "H",
    DataTag.LONG64: "q",
    DataTag.LONG64_UNSIGNED: "Q",
    DataTag.ENUM: "B",
    DataTag.FLOAT32: "f",
    DataTag.FLOAT64: "d",
}
_STRINGS: Final = (DataTag.OCTET_STRING, DataTag.VISIBLE_STRING)
"""The identifier types a template reads as values (octet-strings as bytes, visible as text)."""
_STAMP = 12
_HEADER = 5
"""APDU tag and long-invoke-id-and-priority: the invoke id may change and is skipped."""
_MAX_PER_LENGTH: Final = 8
MAX_TEMPLATES: Final = 32
"""Templates kept in all; the least recently used goes first."""
MAX_PLANS_PER_TEMPLATE: Final = 8
"""Identifier sets (meters) whose plans a template remembers; a fleet rebuilds the rest cheaply."""


def _getter(fields: list[int]) -> Callable[[tuple[object, ...]], tuple[object, ...]]:
    """``itemgetter`` that returns a tuple for any number of fields (one included)."""
    if len(fields) == 1:
        index = fields[0]
        return lambda values: (values[index],)
    return itemgetter(*fields)


class _Identifier:
    """One identifier field of a template: where it is read, and the steps it feeds."""

    __slots__ = ("steps", "traits", "visible")

    def __init__(
        self, *, visible: bool, steps: tuple[tuple[int, ObisValue], ...], value: object
    ) -> None:
        self.visible = visible
        self.steps = steps
        """(index, step) of each constant step whose text is this identifier's."""
        self.traits = identifier_traits(self.text_of(value))

    def text_of(self, raw: object) -> bytes | str:
        """The value as the A-XDR decoder gives it (visible-strings are latin-1 text)."""
        assert isinstance(raw, bytes)
        return raw.decode("latin-1") if self.visible else raw


class Template:
    """One frame shape: a struct over the whole APDU, its constant fields, and the plan."""

    __slots__ = (
        "_const_of",
        "_consts",
        "_header_slot",
        "_identifiers",
        "_ids",
        "_ids_of",
        "_plan",
        "_plans",
        "_unpack",
    )

    def __init__(  # noqa: PLR0913 - the parts of a compiled shape
        self,
        layout: struct.Struct,
        constants: list[int],
        header_slot: int | None,
        plan: Plan,
        apdu: bytes,
        *,
        identifiers: dict[int, _Identifier],
    ) -> None:
        self._unpack = layout.unpack
        fields = layout.unpack(apdu)
        self._const_of = _getter(constants)
        self._consts = self._const_of(fields)
        self._header_slot = header_slot
        self._plan = CompiledPlan(plan)
        self._identifiers = tuple(identifiers.values())
        self._ids_of = _getter(list(identifiers)) if identifiers else None
        self._ids = self._ids_of(fields) if self._ids_of is not None else ()
        self._plans: dict[tuple[object, ...], CompiledPlan | None] = {}

    def decode(self, apdu: bytes) -> MeterReading | None:
        """Decode ``apdu`` if it has this shape, else return None."""
        fields = self._unpack(apdu)
        if self._const_of(fields) != self._consts:
            return None
        plan = self._plan
        if self._ids_of is not None:
            ids = self._ids_of(fields)
            if ids != self._ids:
                found = self._plan_for(ids)
                if found is None:
                    return None
                plan = found
        header = None if self._header_slot is None else fields[self._header_slot]
        return plan.run(fields, header)

    def _plan_for(self, ids: tuple[object, ...]) -> CompiledPlan | None:
        """The plan for another meter's identifiers; None when they change a layout decision."""
        if ids in self._plans:
            return self._plans[ids]
        changes: list[tuple[int, ObisValue]] = []
        plan: CompiledPlan | None = None
        for identifier, raw, learned in zip(self._identifiers, ids, self._ids, strict=True):
            if raw == learned:
                continue
            value = identifier.text_of(raw)
            if identifier_traits(value) != identifier.traits:
                break
            text = identifier_text(value)
            changes += [(index, step._replace(value=text)) for index, step in identifier.steps]
        else:
            plan = self._plan.with_constants(changes)
        if len(self._plans) >= MAX_PLANS_PER_TEMPLATE:
            del self._plans[next(iter(self._plans))]
        self._plans[ids] = plan
        return plan


class _Builder:
    """Accumulates a struct format: constant runs as ``Ns`` fields, planned values typed."""

    def __init__(self) -> None:
        self.codes = [">"]
        self.constants: list[int] = []
        self.cursor = 0
        self.fields = 0

    def constant_until(self, offset: int) -> None:
        if offset > self.cursor:
            self.codes.append(f"{offset - self.cursor}s")
            self.constants.append(self.fields)
            self.fields += 1
            self.cursor = offset

    def skip(self, size: int) -> None:
        self.codes.append(f"{size}x")
        self.cursor += size

    def value(self, offset: int, code: str, size: int) -> int:
        self.constant_until(offset)
        self.codes.append(code)
        self.fields += 1
        self.cursor = offset + size
        return self.fields - 1


def _identifier_steps(plan: Plan) -> dict[int, list[tuple[int, ObisValue]]]:
    """Leaf → the constant steps whose text was read from that leaf's string."""
    by_leaf: dict[int, list[tuple[int, ObisValue]]] = {}
    for index, (step, leaf) in enumerate(zip(plan.steps, plan.sources, strict=False)):
        if leaf is not None and isinstance(step, ObisValue):
            by_leaf.setdefault(leaf, []).append((index, step))
    return by_leaf


def build_template(apdu: bytes, plan: Plan) -> Template | None:
    """Compile a template for frames shaped like ``apdu`` (a data-notification) under ``plan``."""
    builder = _Builder()
    builder.constant_until(1)
    builder.skip(_HEADER - 1)
    marker = apdu[_HEADER]
    header_slot = None
    body = _HEADER + 1
    if marker:
        stamp_at = _HEADER + (2 if marker == DataTag.OCTET_STRING else 1)
        header_slot = builder.value(stamp_at, f"{_STAMP}s", _STAMP)
        body = stamp_at + _STAMP
    offsets = leaf_offsets(apdu, body)
    slots = {step.leaf: step for step in plan.steps if isinstance(step, Slot)}
    texts = _identifier_steps(plan)
    slot_of_leaf: dict[int, int] = {}
    identifiers: dict[int, _Identifier] = {}
    for leaf in sorted({*slots, *texts}):
        at = offsets[leaf]
        tag = apdu[at]
        if leaf in texts:
            length, content_at = decode_length(apdu, at + 1)
            if tag in _STRINGS and length:
                field = builder.value(content_at, f"{length}s", length)
                raw = apdu[content_at : content_at + length]
                visible = tag == DataTag.VISIBLE_STRING
                fed = tuple(texts[leaf])
                identifiers[field] = _Identifier(visible=visible, steps=fed, value=raw)
            continue  # other types stay constant: a frame that differs there misses
        step = slots[leaf]
        if step.is_stamp:
            value_at = at + (2 if tag == DataTag.OCTET_STRING else 1)
            slot_of_leaf[step.leaf] = builder.value(value_at, f"{_STAMP}s", _STAMP)
            continue
        code = _STRUCT_CODES.get(tag)
        if code is None:
            return None
        slot_of_leaf[step.leaf] = builder.value(at + 1, code, struct.calcsize(">" + code))
    builder.constant_until(len(apdu))
    steps = tuple(
        s._replace(leaf=slot_of_leaf[s.leaf]) if isinstance(s, Slot) else s for s in plan.steps
    )
    layout = struct.Struct("".join(builder.codes))
    if layout.size != len(apdu):
        return None
    compiled = replace(plan, steps=steps)
    return Template(layout, builder.constants, header_slot, compiled, apdu, identifiers=identifiers)


class TemplateCache:
    """Templates by APDU length, the least recently used evicted first.

    Memory grows neither with the number of meters (identifiers are values, not part of a
    template's key) nor with the number of shapes seen.
    """

    def __init__(self) -> None:
        self._by_length: dict[int, list[Template]] = {}
        self._recent: OrderedDict[Template, int] = OrderedDict()
        """Every template (oldest use first) with its APDU length."""
        self.hits = 0

    def __len__(self) -> int:
        return len(self._recent)

    def decode(self, apdu: bytes) -> MeterReading | None:
        """Decode with a matching template, or return None."""
        for template in self._by_length.get(len(apdu), ()):
            reading = template.decode(apdu)
            if reading is not None:
                self.hits += 1
                self._recent.move_to_end(template)
                return reading
        return None

    def learn(self, apdu: bytes, plan: Plan) -> None:
        """Compile and keep a template for ``apdu`` (already decoded successfully with ``plan``)."""
        template = build_template(apdu, plan)
        if template is None:
            return
        length = len(apdu)
        if len(self._by_length.get(length, ())) >= _MAX_PER_LENGTH:
            self._forget(next(t for t, size in self._recent.items() if size == length))
        if len(self._recent) >= MAX_TEMPLATES:
            self._forget(next(iter(self._recent)))
        self._by_length.setdefault(length, []).insert(0, template)
        self._recent[template] = length

    def _forget(self, template: Template) -> None:
        length = self._recent.pop(template)
        bucket = self._by_length[length]
        bucket.remove(template)
        if not bucket:
            del self._by_length[length]
