"""A plan compiled for speed: every per-value decision made once, only arithmetic per frame.

:func:`han2mqtt.meters.detect.execute` is the reference: it builds :class:`ObisValue` objects and
normalizes them with :func:`~han2mqtt.meters.normalize.build_reading`.  For vendors whose values
need no value-dependent correction (every vendor but Kamstrup), :class:`CompiledPlan` precomputes
the OBIS text, field name and exponents of each step and does only the scaling per frame.  Tests
pin that both give the same reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from han2mqtt import model
from han2mqtt.meters.detect import Plan, Slot, execute, stamp_text
from han2mqtt.meters.normalize import ObisValue, describe, scale
from han2mqtt.meters.profile import unchanged
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.axdr import AxdrValue
from han2mqtt.protocol.cosem import CosemDateTime

__all__ = ["CompiledPlan"]


class _Step(NamedTuple):
    slot: int
    """Index into the slots, or -1 for a constant."""
    code: str
    field: str | None
    obis_exponent: int
    field_exponent: int | None
    """None when the unit cannot be converted to the field's unit: OBIS topic only."""
    unit: str | None
    is_stamp: bool
    constant: FieldValue | None
    constant_field: FieldValue | None


def _compile_step(step: Slot | object) -> _Step:
    if isinstance(step, Slot):
        code, known = describe(step.obis)
        field, shift = (None, None)
        if known is not None:
            field, quantity = known
            shift = None if step.is_stamp else quantity.exponents.get(step.unit)
            if shift is None and not step.is_stamp:
                field = None
        field_exponent = None if shift is None else step.exponent + shift
        return _Step(
            step.leaf,
            code,
            field,
            step.exponent,
            field_exponent,
            step.unit,
            is_stamp=step.is_stamp,
            constant=None,
            constant_field=None,
        )
    reading = _constant_reading(step)
    if not reading.obis:  # dropped by normalization (text sent for a number): publish nothing
        return _Step(
            -1, "", None, 0, None, None, is_stamp=False, constant=None, constant_field=None
        )
    code, value = next(iter(reading.obis.items()))
    field, field_value = next(iter(reading.fields.items()), (None, None))
    unit = reading.units.get(code)
    return _Step(
        -1, code, field, 0, None, unit, is_stamp=False, constant=value, constant_field=field_value
    )


def _with_text(step: _Step, value: ObisValue) -> _Step:
    """A compiled text constant with another text (see :meth:`CompiledPlan.with_constants`)."""
    if not isinstance(value.value, str) or not step.code:
        return _compile_step(value)  # not a text, or dropped by normalization: the long way
    field_value = None if step.constant_field is None else value.value
    return step._replace(constant=value.value, constant_field=field_value)


def _constant_reading(step: object) -> MeterReading:
    """Normalize one constant value the reference way, so constants cannot diverge."""
    from han2mqtt.meters.normalize import ObisValue, build_reading  # noqa: PLC0415

    assert isinstance(step, ObisValue)
    return build_reading([step], layout="")


class CompiledPlan:
    """Run a plan with precomputed steps (falls back to the reference for adjusting vendors)."""

    __slots__ = ("_extra", "_layout", "_plan", "_steps", "_trust")

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._layout = plan.profile.name
        self._extra = plan.extra
        self._trust = plan.profile.trust_clock_deviation
        direct = plan.profile.adjust is unchanged
        self._steps = tuple(_compile_step(step) for step in plan.steps) if direct else None

    def with_constants(self, changes: Sequence[tuple[int, ObisValue]]) -> CompiledPlan:
        """This plan with the text constants at the given indices replaced.

        For another meter's identifiers in a frame of the same shape.  Normalization keeps a
        text as it is (under its OBIS code, and as its field's value unless the object is a
        number: then it is dropped, whatever the text), so a compiled text step only takes the
        new text; vendors that adjust values get the plan itself with the new steps.
        """
        clone = object.__new__(CompiledPlan)
        clone._layout, clone._extra, clone._trust = self._layout, self._extra, self._trust
        if self._steps is None:
            steps = list(self._plan.steps)
            for index, value in changes:
                steps[index] = value
            clone._plan, clone._steps = replace(self._plan, steps=tuple(steps)), None
            return clone
        compiled = list(self._steps)
        for index, value in changes:
            compiled[index] = _with_text(compiled[index], value)
        clone._plan, clone._steps = self._plan, tuple(compiled)
        return clone

    def run(
        self, slots: Sequence[AxdrValue], header_stamp: CosemDateTime | bytes | None
    ) -> MeterReading:
        """The reading of one frame: same result as :func:`execute` on the plan."""
        if self._steps is None:
            return execute(self._plan, slots, header_stamp)
        fields: dict[str, FieldValue] = dict(self._extra)
        if header_stamp is not None:
            text = stamp_text(header_stamp, trust_deviation=self._trust)
            if text is not None:
                fields[model.FIELD_METER_DATETIME] = text
        by_obis: dict[str, FieldValue] = {}
        units: dict[str, str] = {}
        field_obis: dict[str, str] = {}
        for step in self._steps:
            value, field_value = self._values(step, slots)
            if value is None:
                continue
            by_obis[step.code] = value
            if step.unit:
                units[step.code] = step.unit
            if step.field is not None and field_value is not None:
                fields[step.field] = field_value
                field_obis[step.field] = step.code
        return MeterReading(fields, by_obis, units, field_obis, self._layout)

    def _values(
        self, step: _Step, slots: Sequence[AxdrValue]
    ) -> tuple[FieldValue | None, FieldValue | None]:
        """The value as sent (scaled) and the normalized field value of one step."""
        if step.slot < 0:
            return step.constant, step.constant_field
        raw = slots[step.slot]
        if step.is_stamp:
            text = stamp_text(raw, trust_deviation=self._trust)
            return text, text
        if not isinstance(raw, int | float):
            return None, None
        exponent = step.field_exponent
        return scale(raw, step.obis_exponent), None if exponent is None else scale(raw, exponent)
