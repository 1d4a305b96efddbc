"""Compiled templates: decode repeat frames of a known list with one ``struct`` call.

A meter pushes the same list every few seconds: the same structure, OBIS codes and identifiers,
only numbers and time stamps change.  After the first frame of a shape has been decoded the slow
way (A-XDR tree, layout recognition, :class:`~han2mqtt.meters.detect.Plan`), a template records
where in the APDU each planned value sits.  A later frame of the same length is unpacked by one
precompiled :class:`struct.Struct`; if every constant byte run (tags, lengths, OBIS codes,
identifiers) matches, the plan runs on the unpacked values.  Otherwise the frame takes the slow
path and may teach a template of its own.  The result is identical by construction: the template
only replaces *how* the planned values are read, never what is planned.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from operator import itemgetter
from typing import Final

from han2mqtt.meters.compiled import CompiledPlan
from han2mqtt.meters.detect import Plan, Slot
from han2mqtt.model import MeterReading
from han2mqtt.protocol.axdr import DataTag, leaf_offsets

__all__ = ["Template", "TemplateCache", "build_template"]

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
_STAMP = 12
_HEADER = 5
"""APDU tag and long-invoke-id-and-priority: the invoke id may change and is skipped."""
_MAX_PER_LENGTH: Final = 4
_MAX_TEMPLATES: Final = 32


class Template:
    """One frame shape: a struct over the whole APDU, its constant fields, and the plan."""

    __slots__ = ("_const_of", "_consts", "_header_slot", "_plan", "_unpack")

    def __init__(
        self,
        layout: struct.Struct,
        constants: list[int],
        header_slot: int | None,
        plan: Plan,
        apdu: bytes,
    ) -> None:
        self._unpack = layout.unpack
        self._const_of = itemgetter(*constants)
        self._consts = self._const_of(layout.unpack(apdu))
        self._header_slot = header_slot
        self._plan = CompiledPlan(plan)

    def decode(self, apdu: bytes) -> MeterReading | None:
        """Decode ``apdu`` if it has this shape, else return None."""
        fields = self._unpack(apdu)
        if self._const_of(fields) != self._consts:
            return None
        header = None if self._header_slot is None else fields[self._header_slot]
        return self._plan.run(fields, header)


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
    slot_of_leaf: dict[int, int] = {}
    for step in sorted((s for s in plan.steps if isinstance(s, Slot)), key=lambda s: s.leaf):
        at = offsets[step.leaf]
        tag = apdu[at]
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
    return Template(layout, builder.constants, header_slot, replace(plan, steps=steps), apdu)


class TemplateCache:
    """Templates by APDU length; bounded, so a stream of ever-new shapes cannot grow it."""

    def __init__(self) -> None:
        self._by_length: dict[int, list[Template]] = {}
        self._count = 0
        self.hits = 0

    def decode(self, apdu: bytes) -> MeterReading | None:
        """Decode with a matching template, or return None."""
        for template in self._by_length.get(len(apdu), ()):
            reading = template.decode(apdu)
            if reading is not None:
                self.hits += 1
                return reading
        return None

    def learn(self, apdu: bytes, plan: Plan) -> None:
        """Compile and keep a template for ``apdu`` (already decoded successfully with ``plan``)."""
        template = build_template(apdu, plan)
        if template is None:
            return
        if self._count >= _MAX_TEMPLATES:
            self._by_length.clear()
            self._count = 0
        bucket = self._by_length.setdefault(len(apdu), [])
        if len(bucket) >= _MAX_PER_LENGTH:
            bucket.pop(0)
            self._count -= 1
        bucket.append(template)
        self._count += 1
