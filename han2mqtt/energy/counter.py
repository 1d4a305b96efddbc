"""Hour-correct live energy counters: the last register plus the integral of power since it.

Norwegian lists carry the energy registers once an hour (stamped at the hour), power every few
seconds.  A :class:`LiveCounter` holds the last accepted register and integrates the active power
of the frames after it, so its value at any moment is the register the meter *would* send then.
Every new register reconciles it; the published value never decreases (if the estimate ran
ahead of the meter, it holds until the estimate passes it again).

The same estimate, read at the local hour, day and tariff-window boundaries, gives the interval
energies; a register stamped exactly on a boundary replaces the estimate there, so the energy of
an hour bracketed by two registers is exact.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Final

from han2mqtt.energy.clock import day_start, next_day_start, window_start
from han2mqtt.energy.guard import Register

__all__ = ["HOUR", "MAX_GAP", "Interval", "LiveCounter", "PowerIntegral"]

MAX_GAP: Final = timedelta(minutes=5)
"""A power sample is held at most this long; a longer silence is left to the next register."""
HOUR: Final = timedelta(hours=1)
_JOULES_PER_KWH: Final = 3_600_000.0
_HISTORY: Final = 2048
_KEEP_MARKS: Final = 8


class PowerIntegral:
    """∫P dt in kWh over the frames' powers, each held until the next frame (zero-order hold).

    Keeps the recent (time, integral) points so that the integral can be read at any moment of
    the last hour or so: a register stamped at HH:00:00 may arrive after a frame of HH:00:02.
    """

    def __init__(self) -> None:
        self._times: list[datetime] = []
        self._totals: list[float] = []
        self.power: float | None = None
        """The latest power (W)."""

    def __bool__(self) -> bool:
        return bool(self._times)

    @classmethod
    def resume(cls, moment: datetime, total: float, power: float | None) -> PowerIntegral:
        """An integral that continues from a saved point (a restart): ``total`` at ``moment``.

        The saved power is held from ``moment`` as if the daemon had never stopped, up to
        :data:`MAX_GAP`; a longer outage adds nothing and is left to the next register.
        """
        integral = cls()
        integral._times.append(moment)
        integral._totals.append(total)
        integral.power = power
        return integral

    @property
    def last(self) -> tuple[datetime, float] | None:
        """The latest sample's moment and the integral there; None before the first sample."""
        return (self._times[-1], self._totals[-1]) if self._times else None

    def add(self, moment: datetime, power: float) -> None:
        """A power sample (W) at ``moment``; one not after the previous sample is ignored."""
        if self._times:
            if moment <= self._times[-1]:
                return
            total = self._totals[-1] + self._held(moment - self._times[-1])
        else:
            total = 0.0
        self._times.append(moment)
        self._totals.append(total)
        self.power = power
        if len(self._times) > _HISTORY:
            del self._times[: _HISTORY // 2], self._totals[: _HISTORY // 2]

    def _held(self, span: timedelta) -> float:
        if self.power is None or span > MAX_GAP:
            return 0.0
        return self.power * span.total_seconds() / _JOULES_PER_KWH

    def at(self, moment: datetime) -> float | None:
        """The integral at ``moment`` (interpolated; extrapolated with the latest power).

        None before the first sample: what came before is not known.
        """
        if not self._times or moment < self._times[0]:
            return None
        index = bisect_right(self._times, moment) - 1
        if index == len(self._times) - 1:
            return self._totals[-1] + self._held(moment - self._times[-1])
        start, end = self._times[index], self._times[index + 1]
        share = (moment - start) / (end - start)
        return self._totals[index] + (self._totals[index + 1] - self._totals[index]) * share


@dataclass(slots=True)
class Interval:
    """Energy since ``start`` (a local clock boundary) on the counter's scale, never decreasing.

    Attributes:
        start: the interval's start (UTC).
        end: its end (UTC).
        base: the counter at ``start`` (estimated, or the register stamped there); None if the
            counter had no value then.
        value: the energy so far (kWh).
    """

    start: datetime
    end: datetime
    base: float | None
    value: float = 0.0

    def update(self, estimate: float | None) -> None:
        """Raise the value to ``estimate - base`` (never lower it)."""
        if self.base is not None and estimate is not None:
            self.value = max(self.value, estimate - self.base)


class LiveCounter:
    """One direction's live counter with its hour, day and (optional) tariff window.

    Args:
        zone: the local time zone (``meter.timezone``).
        window: the tariff window in minutes, or None without a tariff.
    """

    def __init__(self, zone: tzinfo, window: int | None = None) -> None:
        self.zone = zone
        self.window_minutes = window
        self.integral = PowerIntegral()
        self.register: Register | None = None
        self._anchor = 0.0
        self.live: float | None = None
        """The published counter (kWh): never decreasing except at a meter exchange."""
        self.hour: Interval | None = None
        self.day: Interval | None = None
        self.window: Interval | None = None
        self.marks: dict[datetime, float] = {}
        """Registers stamped exactly on a window/hour boundary (the newest few)."""

    def point(self) -> tuple[datetime, float, float | None] | None:
        """The integration point: the latest sample, the integral since the register, the power.

        What a restart needs to continue the estimate (kept in the state file).
        """
        last = self.integral.last
        if last is None:
            return None
        moment, total = last
        return moment, total - self._anchor, self.integral.power

    def resume(self, moment: datetime, since_register: float, power: float | None) -> None:
        """Continue the estimate from a saved :meth:`point` (after a restart)."""
        self.integral = PowerIntegral.resume(moment, since_register, power)
        self._anchor = 0.0

    def estimate(self, moment: datetime) -> float | None:
        """The counter at ``moment``: register + power integral since (or the integral alone).

        None where it is not known: before the first power sample, unless a register says it.
        """
        integral = self.integral.at(moment)
        if self.register is None:
            return integral
        if integral is None:
            return self.register.value if moment >= self.register.time else None
        return self.register.value + integral - self._anchor

    def anchor(self, register: Register, *, exchange: bool = False) -> None:
        """Reconcile with a new accepted register.

        The first register (and a meter exchange) puts the counter on a new scale: the open
        intervals move with it, so their energy so far is kept.
        """
        # The counter is register - anchor + integral; without a register, the integral alone.
        old_offset = 0.0 if self.register is None else self.register.value - self._anchor
        rescale = self.register is None or exchange
        self.register = register
        # Before the first sample (a register restored from the state file): the integral
        # counts from its first sample, which is as far as anything is known.
        self._anchor = self.integral.at(register.time) or 0.0
        if rescale:
            self._shift(register.value - self._anchor - old_offset)
        if exchange:
            self.marks.clear()
            self.live = None

    def _shift(self, delta: float) -> None:
        for interval in (self.hour, self.day, self.window):
            if interval is not None and interval.base is not None:
                interval.base += delta

    def advance(self, moment: datetime) -> Interval | None:
        """Open the hour, day and window holding ``moment``; return a tariff window just closed."""
        if self.hour is None or moment >= self.hour.end:
            start = window_start(moment, self.zone, 60)
            self.hour = self._open(start, start + HOUR)
        if self.day is None or moment >= self.day.end:
            self.day = self._open(day_start(moment, self.zone), next_day_start(moment, self.zone))
        minutes = self.window_minutes
        if minutes is None or (self.window is not None and moment < self.window.end):
            return None
        closed = self.window
        start = window_start(moment, self.zone, minutes)
        self.window = self._open(start, start + timedelta(minutes=minutes))
        if closed is None or closed.base is None:
            return None
        closed.update(self.estimate(closed.end))
        return closed

    def _open(self, start: datetime, end: datetime) -> Interval:
        base = self.marks.get(start)
        return Interval(start, end, self.estimate(start) if base is None else base)

    def mark(self, register: Register) -> float | None:
        """Remember a register stamped on a boundary; return the exact energy of the hour it ends.

        Also makes the open intervals that start at this moment exact.
        """
        moment = register.time
        if not self._on_grid(moment):
            return None
        self.marks[moment] = register.value
        if len(self.marks) > _KEEP_MARKS:
            del self.marks[min(self.marks)]
        for interval in (self.hour, self.day, self.window):
            if interval is not None and interval.start == moment:
                interval.base = register.value
        opening = self.marks.get(moment - HOUR)
        return None if opening is None else register.value - opening

    def exact_window(self, end: datetime) -> float | None:
        """The exact energy of the tariff window ending at ``end``, if registers bracket it."""
        if self.window_minutes is None:
            return None
        closing = self.marks.get(end)
        opening = self.marks.get(end - timedelta(minutes=self.window_minutes))
        return None if closing is None or opening is None else closing - opening

    def _on_grid(self, moment: datetime) -> bool:
        grid = self.window_minutes or 60
        return window_start(moment, self.zone, grid) == moment

    def update(self, moment: datetime) -> None:
        """Bring the live value and the intervals up to ``moment``."""
        estimate = self.estimate(moment)
        for interval in (self.hour, self.day, self.window):
            if interval is not None:
                interval.update(estimate)
        if self.register is not None and estimate is not None:
            self.live = estimate if self.live is None else max(self.live, estimate)
