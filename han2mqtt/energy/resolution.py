"""Kamstrup's energy register resolution, decided per meter from evidence (sans-IO).

Kamstrup meters count their energy registers in 10 Wh (the Kamstrup HAN-NVE description, most
Norwegian meters) or in 1 Wh (Swedish firmware; Danish meters, on which sources disagree).  The
frame does not say which: a wrong choice publishes every register, and every energy figure made
from them, ten times too large or too small.

The meter itself gives the evidence.  Between two register readings about an hour apart, the
register's rise must equal the energy the active power says was drawn (the power integral).
With the resolution the decoder assumed (:func:`assumed_resolution`), that ratio is about 1 when
the assumption holds, about 10 when the meter counts in units ten times smaller, about 0.1 when
ten times larger.  :class:`ResolutionJudge` decides only *beyond doubt*:

* an hour counts only when power was sampled densely (no gap over :data:`MAX_GAP`), the interval
  is close to an hour, and enough energy flowed for the register's own resolution not to matter
  (:data:`MIN_ENERGY`);
* its ratio must lie within :data:`TOLERANCE` of 1, 10 or 0.1; any other ratio, or an hour
  pointing at the other resolution, discards the evidence gathered so far;
* :data:`HOURS_NEEDED` such hours in a row, all pointing the same way, decide.

Until then the decoder's assumption stands (today's default).  A decision is kept per meter (the
caller persists :meth:`ResolutionJudge.decided` and logs each :class:`Decision` once); a
configured resolution (``meter.energy_resolution``) overrides evidence altogether.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from han2mqtt.meters.kamstrup import SWEDISH_TYPE_MARKER
from han2mqtt.meters.normalize import field_for, scale
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.obis import parse_obis

__all__ = [
    "HOURS_NEEDED",
    "MAX_GAP",
    "MIN_ENERGY",
    "RESOLUTIONS",
    "TOLERANCE",
    "Decision",
    "ResolutionJudge",
    "assumed_resolution",
    "rescaled",
]

RESOLUTIONS: Final = (1, 10)
"""Wh per register unit a Kamstrup meter counts in."""
HOURS_NEEDED: Final = 3
"""Consecutive hours that must agree before a resolution is decided."""
MIN_ENERGY: Final = 0.2
"""kWh an hour must see: a 10 Wh register step is then at most 5 % of the rise."""
MAX_GAP: Final = timedelta(seconds=60)
"""Largest gap between power samples for the integral to count (Kamstrup sends every 10 s)."""
HOUR_RANGE: Final = (timedelta(minutes=50), timedelta(minutes=70))
"""How far apart two register readings must be to bracket one hour."""
TOLERANCE: Final = 0.25
"""How far (relative) an hour's ratio may lie from 1, 10 or 0.1: power sampled every 10 s misses
short peaks, while a wrong resolution is off by a factor of ten."""
_SECONDS_PER_HOUR: Final = 3600.0
_W_PER_KW: Final = 1000.0


def assumed_resolution(meter_type: FieldValue | None) -> int:
    """The resolution (Wh) the Kamstrup layout decodes a list's registers with today."""
    text = meter_type if isinstance(meter_type, str) else ""
    return 1 if text[15:17] == SWEDISH_TYPE_MARKER else 10


@dataclass(frozen=True, slots=True)
class Decision:
    """A resolution decided for a meter from ``hours`` agreeing hours (log it once)."""

    meter: str
    resolution: int
    assumed: int
    hours: int


@dataclass(slots=True)
class _Evidence:
    """What one meter has shown since its last register reading."""

    register_time: datetime | None = None
    register: float | None = None
    power_time: datetime | None = None
    power: float | None = None
    integral: float = 0.0
    """kWh the active power says was drawn since ``register_time``."""
    dense: bool = True
    """No gap over MAX_GAP between power samples since ``register_time``."""
    candidate: int | None = None
    agreeing: int = 0

    def restart(self, moment: datetime, register: float) -> None:
        self.register_time, self.register = moment, register
        self.integral, self.dense = 0.0, True

    def forget(self) -> None:
        self.candidate, self.agreeing = None, 0


class ResolutionJudge:
    """Per meter: the register resolution, configured, decided, or not yet known.

    Args:
        configured: ``meter.energy_resolution`` (1 or 10 Wh), or None for ``auto``.
        decided: resolutions decided before (the persisted :attr:`decided`).
    """

    def __init__(
        self, configured: int | None = None, decided: dict[str, int] | None = None
    ) -> None:
        if configured is not None and configured not in RESOLUTIONS:
            raise ValueError(f"energy resolution {configured} Wh is not one of {RESOLUTIONS}")
        self.configured = configured
        self.decided: dict[str, int] = {
            meter: value for meter, value in (decided or {}).items() if value in RESOLUTIONS
        }
        self._evidence: dict[str, _Evidence] = {}

    def resolution(self, meter: str) -> int | None:
        """The meter's resolution in Wh: configured, else decided; None while unknown."""
        return self.configured if self.configured is not None else self.decided.get(meter)

    def factor(self, meter: str, assumed: int) -> float:
        """What registers decoded with ``assumed`` Wh are multiplied by (1 while unknown)."""
        known = self.resolution(meter)
        return 1.0 if known is None else known / assumed

    def observe(
        self,
        meter: str,
        assumed: int,
        moment: datetime,
        power: float | None,
        register: float | None,
    ) -> Decision | None:
        """Take one frame's active power (W) and import register (kWh, decoded with ``assumed``).

        Returns the decision when this frame completes the evidence, else None.
        """
        if self.resolution(meter) is not None:
            self._evidence.pop(meter, None)
            return None
        evidence = self._evidence.setdefault(meter, _Evidence())
        if power is not None:
            _integrate(evidence, moment, power)
        if register is None or _window_open(evidence, moment):
            return None  # (meters that send their registers in every frame: the hour goes on)
        candidate = _judge_hour(evidence, moment, register, assumed)
        evidence.restart(moment, register)
        if candidate is None:
            return None
        return self._count(meter, evidence, candidate, assumed)

    def _count(
        self, meter: str, evidence: _Evidence, candidate: int, assumed: int
    ) -> Decision | None:
        if candidate != evidence.candidate:
            evidence.candidate, evidence.agreeing = candidate, 0
        evidence.agreeing += 1
        if evidence.agreeing < HOURS_NEEDED:
            return None
        self.decided[meter] = candidate
        del self._evidence[meter]
        return Decision(meter, candidate, assumed, HOURS_NEEDED)


def _integrate(evidence: _Evidence, moment: datetime, power: float) -> None:
    """Add the energy since the last power sample (trapezoid); note gaps and clock jumps."""
    previous_time, previous = evidence.power_time, evidence.power
    evidence.power_time, evidence.power = moment, power
    if previous_time is None or previous is None or evidence.register_time is None:
        return
    gap = moment - previous_time
    if gap <= timedelta(0) or gap > MAX_GAP:
        evidence.dense = False
        return
    hours = gap.total_seconds() / _SECONDS_PER_HOUR
    evidence.integral += (previous + power) / 2 / _W_PER_KW * hours


def _window_open(evidence: _Evidence, moment: datetime) -> bool:
    """Whether the register window is still short of an hour (and its clock went forward)."""
    if evidence.register_time is None:
        return False
    elapsed = moment - evidence.register_time
    return timedelta(0) < elapsed < HOUR_RANGE[0]


def _judge_hour(evidence: _Evidence, moment: datetime, register: float, assumed: int) -> int | None:
    """The resolution one hour points at; None when it says nothing (too little, too sparse).

    An hour whose ratio fits no resolution, or whose register went back, discards the evidence
    gathered so far (:meth:`_Evidence.forget`): doubt is never outvoted.
    """
    if evidence.register_time is None or evidence.register is None:
        return None
    elapsed = moment - evidence.register_time
    if not (HOUR_RANGE[0] <= elapsed <= HOUR_RANGE[1]) or not evidence.dense:
        return None
    if evidence.integral < MIN_ENERGY:
        return None
    ratio = (register - evidence.register) / evidence.integral
    for candidate in RESOLUTIONS:
        expected = assumed / candidate  # registers read 10x too large when the meter counts 1 Wh
        if abs(ratio / expected - 1) <= TOLERANCE:
            return candidate
    evidence.forget()
    return None


def rescaled(reading: MeterReading, factor: float) -> MeterReading:
    """The reading with its energy registers (fields and OBIS values) multiplied by ``factor``.

    ``factor`` is 10 or 0.1 (or 1); the product is formed as the decimal it is (``scale``).
    """
    if factor == 1:
        return reading
    shift = 1 if factor > 1 else -1
    codes = {code for code in reading.obis if _is_energy(code)}
    fields = {
        name: _shifted(value, shift) if reading.field_obis.get(name) in codes else value
        for name, value in reading.fields.items()
    }
    obis = {
        code: _shifted(value, shift) if code in codes else value
        for code, value in reading.obis.items()
    }
    return replace(reading, fields=fields, obis=obis)


def _is_energy(code: str) -> bool:
    try:
        known = field_for(parse_obis(code))
    except ValueError:
        return False
    return known is not None and known[1].kind in ("energy", "reactive_energy")


def _shifted(value: FieldValue, shift: int) -> FieldValue:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return scale(value, shift)
