"""A plan compiled for speed: every per-value decision made once, only arithmetic per frame.

:func:`han2mqtt.meters.detect.execute` is the reference: it builds :class:`ObisValue` objects and
normalizes them with :func:`~han2mqtt.meters.normalize.build_reading`.  :class:`CompiledPlan`
precomputes the OBIS text, field name and exponents of each step and does only the scaling per
frame.  A vendor that corrects scaling per meter (Kamstrup) is compiled through the
:class:`~han2mqtt.meters.profile.Rescaling` rules its correction reduces to for the plan; where it
does not reduce (a Kamstrup list without meter type is judged by each frame's power balance), the
plan runs the reference way.  Tests pin that both give the same reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Final, NamedTuple

from han2mqtt import model
from han2mqtt.meters.detect import Plan, Slot, Step, execute, stamp_text
from han2mqtt.meters.normalize import ObisValue, describe, field_for, scale
from han2mqtt.meters.profile import Rescaling, unchanged
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
    above: tuple[int, int, int | None] | None = None
    """(threshold, obis_exponent, field_exponent) for an integer above the threshold."""


_DIRECT: Final = Rescaling({}, {})
"""The rules of a vendor that adjusts nothing."""


def _rescaling(plan: Plan) -> Rescaling | None:
    """The rules the profile's adjustment reduces to for ``plan``; None if it does not reduce.

    Plans with unscaled numbers, unmapped codes or field meanings of their own run the
    reference way too.
    """
    if plan.unscaled or plan.unmapped or plan.overrides is not None:
        return None
    profile = plan.profile
    if profile.adjust is unchanged:
        return _DIRECT
    return None if profile.specialize is None else profile.specialize(_sample(plan.steps))


def _sample(steps: Sequence[Step]) -> list[ObisValue]:
    """One value per step: constants as they are, numbers 0 and time stamps empty text."""
    return [
        step
        if isinstance(step, ObisValue)
        else ObisValue(step.obis, "" if step.is_stamp else 0, step.exponent, step.unit)
        for step in steps
    ]


def _compile_steps(plan: Plan, rescaling: Rescaling) -> tuple[_Step, ...]:
    if rescaling is _DIRECT:
        return tuple(_compile_step(step) for step in plan.steps)
    # Constants are corrected the reference way (the rules fix how the adjustment decides).
    fixed = plan.profile.adjust(_sample(plan.steps))
    return tuple(
        _compile_slot(step, rescaling) if isinstance(step, Slot) else _compile_step(constant)
        for step, constant in zip(plan.steps, fixed, strict=True)
    )


def _compile_slot(step: Slot, rescaling: Rescaling) -> _Step:
    known = field_for(step.obis)
    kind = known[1].kind if known is not None and not step.is_stamp else None
    if kind is None:
        return _compile_step(step)
    compiled = _compile_step(step._replace(exponent=rescaling.exponents.get(kind, step.exponent)))
    rule = rescaling.above.get(kind)
    if rule is None:
        return compiled
    threshold, exponent = rule
    other = _compile_step(step._replace(exponent=exponent))
    return compiled._replace(above=(threshold, other.obis_exponent, other.field_exponent))


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
    """Run a plan with precomputed steps (the reference way where the vendor's rules need it)."""

    __slots__ = ("_extra", "_layout", "_plan", "_rescaling", "_steps", "_trust")

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._layout = plan.profile.name
        self._extra = plan.extra
        self._trust = plan.profile.trust_clock_deviation
        self._rescaling = _rescaling(plan)
        self._steps = None if self._rescaling is None else _compile_steps(plan, self._rescaling)

    def with_constants(self, changes: Sequence[tuple[int, ObisValue]]) -> CompiledPlan:
        """This plan with the text constants at the given indices replaced.

        For another meter's identifiers in a frame of the same shape.  Normalization keeps a
        text as it is (under its OBIS code, and as its field's value unless the object is a
        number: then it is dropped, whatever the text), so a compiled text step only takes the
        new text, as long as the vendor's rules stay the same (a Kamstrup meter type decides
        them); else the plan with the new steps is compiled anew.
        """
        steps = list(self._plan.steps)
        for index, value in changes:
            steps[index] = value
        plan = replace(self._plan, steps=tuple(steps))
        texts = all(isinstance(value.value, str) for _, value in changes)
        if self._steps is None or not texts or _rescaling(plan) != self._rescaling:
            return CompiledPlan(plan)
        clone = object.__new__(CompiledPlan)
        clone._layout, clone._extra, clone._trust = self._layout, self._extra, self._trust
        clone._rescaling = self._rescaling
        compiled = list(self._steps)
        for index, value in changes:
            compiled[index] = _with_text(compiled[index], value)
        clone._plan, clone._steps = plan, tuple(compiled)
        return clone

    def run(
        self, slots: Sequence[AxdrValue], header_stamp: CosemDateTime | bytes | None
    ) -> MeterReading:
        """The reading of one frame: same result as :func:`execute` on the plan."""
        if self._steps is None:
            return execute(self._plan, slots, header_stamp)
        fields = self._fields(header_stamp)
        by_obis: dict[str, FieldValue] = {}
        units: dict[str, str] = {}
        field_obis: dict[str, str] = {}
        # One loop, no call per step: this runs for every value of every frame.
        steps = self._steps
        for slot, code, field, exp, field_exp, unit, stamp, const, const_field, above in steps:
            value: FieldValue | None
            field_value: FieldValue | None
            if slot < 0:
                value, field_value = const, const_field
            elif stamp:
                value = field_value = stamp_text(slots[slot], trust_deviation=self._trust)
            else:
                raw = slots[slot]
                if not isinstance(raw, int | float):
                    continue
                if above is not None and isinstance(raw, int) and raw > above[0]:
                    value, field_value = _above(raw, above)
                else:
                    value = scale(raw, exp)
                    field_value = None if field_exp is None else scale(raw, field_exp)
            if value is None:
                continue
            by_obis[code] = value
            if unit:
                units[code] = unit
            if field is not None and field_value is not None:
                fields[field] = field_value
                field_obis[field] = code
        return MeterReading(fields, by_obis, units, field_obis, self._layout)

    def _fields(self, header_stamp: CosemDateTime | bytes | None) -> dict[str, FieldValue]:
        """The fields every frame of the plan starts with, and the header's time stamp."""
        fields: dict[str, FieldValue] = dict(self._extra)
        if header_stamp is not None:
            text = stamp_text(header_stamp, trust_deviation=self._trust)
            if text is not None:
                fields[model.FIELD_METER_DATETIME] = text
        return fields


def _above(raw: int, above: tuple[int, int, int | None]) -> tuple[FieldValue, FieldValue | None]:
    """A value above a vendor's threshold, scaled with the exponents it takes there."""
    _, obis_exponent, field_exponent = above
    return scale(raw, obis_exponent), None if field_exponent is None else scale(raw, field_exponent)
