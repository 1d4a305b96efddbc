"""The quarter-hour ledger: import and export energy per quarter hour, rolled up to hours.

Sans-IO: :class:`Ledger` is fed what one frame says (its meter time, the powers it carries and
the registers it carries, stamped as the energy stage stamps them) and returns the intervals that
this frame closed, as :class:`LedgerInterval` values.  Storing them is the history store's
business (:mod:`han2mqtt.history.ledger`).

How an interval's energy is decided:

* The power of each frame is held until the next frame (at most :data:`MAX_GAP`) and integrated
  per quarter hour: the *estimate* of each quarter, with how many seconds of it were covered.
* A register known at a quarter boundary (an hourly list stamped at the hour, or a register
  interpolated between two frames that bracket the boundary, as P1 meters send one in every
  frame) *books* everything since the previous booked point: the registers' difference is split
  over the quarters in between in proportion to their estimates (a quarter's uncovered seconds
  counted at the span's mean power).  The quarters are kept unrounded, so they sum to the
  registers' difference to the Wh.
* A quarter is ``exact`` when registers bracket it; an hour when registers bracket it (the
  quarters of an hourly meter are estimated, their hour exact).
* An hour whose closing register does not come (a repeated list, a lost frame) is closed from the
  estimate :data:`HOLD` after its end, if power covered it; the next register then splits the
  rest.  A gap longer than the power hold leaves the quarters to the next register; after
  :data:`MAX_PENDING` without one, the quarters that power covered are closed from the estimate
  and the others stay absent.  Every such interval is ``estimated``.
* An hour is emitted once all its four quarters are; one the ledger saw only part of (the first
  hour it ever saw) is absent, never a partial value.

All times are aware UTC ``datetime``; quarters and hours are local clock boundaries (a DST day has
92 or 100 quarters, and the repeated 02:00-03:00 hour of the autumn day is two hours).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final, NamedTuple

from han2mqtt.energy.clock import window_start
from han2mqtt.energy.counter import MAX_GAP

__all__ = [
    "DIRECTIONS",
    "HOLD",
    "MAX_PENDING",
    "QUARTER",
    "Ledger",
    "LedgerInterval",
]

DIRECTIONS: Final = ("import", "export")
QUARTER: Final = timedelta(minutes=15)
HOUR: Final = timedelta(hours=1)
HOLD: Final = timedelta(minutes=2)
"""How long after an hour its closing register may still come (Kamstrup sends its hourly list up
to a minute after the hour)."""
MAX_JUMP: Final = timedelta(days=40)
"""A meter clock further ahead of the booked point than this (or more than an hour behind it)
has jumped (a clock reset, a wrong year): the ledger starts over from it rather than booking,
or waiting, across the jump."""
MAX_PENDING: Final = timedelta(hours=6)
"""How long quarters wait for a register after a gap before the covered ones are closed."""
COMPLETE: Final = 840.0
"""Seconds of a quarter power must cover for its estimate to stand without registers."""
_QUARTER_SECONDS: Final = 900.0
_JOULES_PER_KWH: Final = 3_600_000.0


class LedgerInterval(NamedTuple):
    """One closed interval of one meter.

    Attributes:
        meter: the meter's id.
        start: the interval's start (UTC; a local quarter or hour boundary).
        import_kwh: energy imported (kWh, unrounded); None when not known.
        export_kwh: energy exported (kWh, unrounded); None when not known (no export data).
        estimated: False when registers bracket the interval, else True.
        minutes: 15 (a quarter) or 60 (an hour, emitted after its fourth quarter).
        kind: what is measured: ``electricity`` (kWh), or ``gas`` / ``water`` (the volume in
            m³ in ``import_kwh``, :mod:`han2mqtt.energy.volume`).
    """

    meter: str
    start: datetime
    import_kwh: float | None
    export_kwh: float | None
    estimated: bool
    minutes: int = 15
    kind: str = "electricity"


@dataclass(slots=True)
class _Estimate:
    """One quarter's power integral per direction, and the seconds it covers."""

    energy: dict[str, float] = field(default_factory=dict)
    covered: dict[str, float] = field(default_factory=dict)

    def filled(self, direction: str, mean_power: float) -> float:
        """The estimate with the uncovered seconds counted at ``mean_power`` (kW)."""
        seconds = self.covered.get(direction, 0.0)
        uncovered = max(_QUARTER_SECONDS - seconds, 0.0)
        return self.energy.get(direction, 0.0) + uncovered * mean_power / 3600

    def complete(self, direction: str) -> bool:
        return self.covered.get(direction, 0.0) >= COMPLETE


@dataclass(slots=True)
class _Booked:
    """The point up to which energy is booked, and the counters there."""

    time: datetime
    values: dict[str, float | None] = field(default_factory=dict)
    """Each direction's counter at ``time`` (None: not known)."""
    exact: dict[str, bool] = field(default_factory=dict)
    """Whether that counter is a register (True) or register + booked estimates (False)."""


@dataclass(slots=True)
class _Hour:
    """The quarters of an hour emitted so far."""

    count: int = 0
    energy: dict[str, float | None] = field(default_factory=dict)
    exact: bool = True


class Ledger:
    """The quarter-hour ledger of one meter.

    Args:
        meter: the meter's id (carried into every interval).
        zone: the local time zone (``meter.timezone``).
    """

    def __init__(self, meter: str, zone: tzinfo) -> None:
        self.meter = meter
        self.zone = zone
        self.booked: _Booked | None = None
        self.pending: dict[datetime, _Estimate] = {}
        self.sample: tuple[datetime, dict[str, float]] | None = None
        """The latest power sample (held until the next one)."""
        self.register: tuple[datetime, dict[str, float]] | None = None
        """The latest registers (to interpolate the quarter boundaries between two of them)."""
        self.hours: dict[datetime, _Hour] = {}
        self.directions: set[str] = set()
        """The directions the meter has sent power or registers for."""
        self.jumps = 0
        """Times the meter clock jumped and the ledger started over."""

    def feed(
        self,
        moment: datetime,
        powers: Mapping[str, float],
        registers: Mapping[str, float] = {},
        register_time: datetime | None = None,
        exchanged: Collection[str] = (),
    ) -> list[LedgerInterval]:
        """One frame: its time, powers (W) and registers (kWh, stamped ``register_time``).

        ``exchanged``: directions whose register starts over (a meter exchange): the energy
        since the last booked point is closed from the estimate.  Returns the closed intervals,
        quarters first, then an hour once its last quarter is closed.
        """
        self.directions.update(powers, registers)
        out: list[LedgerInterval] = []
        if self.booked is None or self._jumped(moment, self.booked.time):
            self._start_over(moment)
        assert self.booked is not None
        self._integrate(moment, powers)
        for direction in exchanged:
            self.booked.values[direction] = None
            if self.register is not None:
                self.register[1].pop(direction, None)
        if registers:
            self._registers(register_time or moment, dict(registers), out)
        self._close_due(moment, out)
        return out

    @staticmethod
    def _jumped(moment: datetime, booked: datetime) -> bool:
        return moment < booked - HOUR or moment - booked > MAX_JUMP

    def _start_over(self, moment: datetime) -> None:
        """Begin at ``moment``: the first frame, or the first after the meter clock jumped.

        A jump before the first register is no news: the frames before a meter's first clock
        (Aidon's list 1 and 2 have none) are placed by the receive time, which may be off.
        """
        if self.booked is not None and self.register is not None:
            self.jumps += 1
        self.booked = _Booked(window_start(moment, self.zone, 15))
        self.pending.clear()
        self.hours.clear()
        self.sample = self.register = None

    # -- the power integral -----------------------------------------------------------------

    def _integrate(self, moment: datetime, powers: Mapping[str, float]) -> None:
        sample = self.sample
        if sample is not None and moment <= sample[0]:
            return
        if sample is not None and moment - sample[0] <= MAX_GAP:
            self._hold(sample[0], moment, sample[1])
        if powers:
            self.sample = (moment, dict(powers))

    def _hold(self, start: datetime, end: datetime, powers: Mapping[str, float]) -> None:
        """Add ``powers`` held over [start, end) to the quarters it spans."""
        assert self.booked is not None
        while start < end:
            quarter = window_start(start, self.zone, 15)
            piece_end = min(end, quarter + QUARTER)
            if quarter >= self.booked.time:
                estimate = self.pending.setdefault(quarter, _Estimate())
                seconds = (piece_end - start).total_seconds()
                for direction, power in powers.items():
                    energy = power * seconds / _JOULES_PER_KWH
                    estimate.energy[direction] = estimate.energy.get(direction, 0.0) + energy
                    estimate.covered[direction] = estimate.covered.get(direction, 0.0) + seconds
            start = piece_end

    # -- registers ----------------------------------------------------------------------------

    def _registers(
        self, moment: datetime, values: dict[str, float], out: list[LedgerInterval]
    ) -> None:
        previous, self.register = self.register, (moment, values)
        for boundary, known, exact in self._boundaries(previous, moment, values):
            assert self.booked is not None
            if boundary > self.booked.time:
                self._book(boundary, known, out, exact=exact)
            elif boundary == self.booked.time:
                self._rebase(known, exact=exact)

    def _boundaries(
        self,
        previous: tuple[datetime, dict[str, float]] | None,
        moment: datetime,
        values: dict[str, float],
    ) -> list[tuple[datetime, dict[str, float], bool]]:
        """The quarter boundaries where the registers are known, and whether exactly.

        ``moment`` itself if it is one; else those between the previous registers and these
        (interpolated: exact to the register's resolution) when the two are close enough; else
        the boundary just before ``moment``, less the power integral since (estimated: an
        hourly list sent later than the energy stage snaps to the hour still anchors the
        ledger to the registers).
        """
        start = window_start(moment, self.zone, 15)
        if start == moment:
            return [(moment, values, True)]
        if previous is None or moment - previous[0] > MAX_GAP:
            return self._back_to_boundary(start, moment, values)
        before, old = previous
        boundary = window_start(before, self.zone, 15) + QUARTER
        found = []
        while boundary < moment:
            share = (boundary - before) / (moment - before)
            found.append(
                (
                    boundary,
                    {d: old[d] + (v - old[d]) * share for d, v in values.items() if d in old},
                    True,
                )
            )
            boundary += QUARTER
        return found

    def _back_to_boundary(
        self, start: datetime, moment: datetime, values: dict[str, float]
    ) -> list[tuple[datetime, dict[str, float], bool]]:
        """The registers at ``start``: these less the power integral since, if power covered it."""
        estimate = self.pending.get(start)
        seconds = (moment - start).total_seconds()
        known = {
            direction: value - estimate.energy.get(direction, 0.0)
            for direction, value in values.items()
            if estimate is not None and estimate.covered.get(direction, 0.0) >= seconds - 1
        }
        return [(start, known, False)] if known else []

    def _rebase(self, known: dict[str, float], *, exact: bool) -> None:
        """Registers at the booked point (its hour was closed from the estimate)."""
        assert self.booked is not None
        for direction, value in known.items():
            self.booked.values[direction] = value
            self.booked.exact[direction] = exact

    def _book(
        self,
        end: datetime,
        known: Mapping[str, float],
        out: list[LedgerInterval],
        *,
        exact: bool = True,
    ) -> None:
        """Close the quarters up to ``end``, where the registers ``known`` are (``exact``ly)."""
        closing_exact = exact
        booked = self.booked
        assert booked is not None
        span = self._span(booked.time, end)
        columns: dict[str, list[float | None]] = {}
        for direction in sorted(self.directions):
            base, closing = booked.values.get(direction), known.get(direction)
            if base is not None and closing is not None:
                columns[direction] = _split(
                    max(closing - base, 0.0), [self.pending.get(q) for q in span], direction
                )
                exact = exact and booked.exact.get(direction, False)
                booked.values[direction], booked.exact[direction] = closing, closing_exact
            else:
                columns[direction] = self._alone(span, direction)
                exact = False
                self._advance_value(direction, columns[direction], closing, closing_exact)
        single = len(span) == 1
        self._emit(span, columns, exact=exact, single=single, out=out)
        booked.time = end

    def _advance_value(
        self,
        direction: str,
        energies: list[float | None],
        closing: float | None,
        closing_exact: bool = False,
    ) -> None:
        """Move a direction's booked counter past quarters closed from the estimate."""
        assert self.booked is not None
        base = self.booked.values.get(direction)
        if closing is not None:
            self.booked.values[direction] = closing
            self.booked.exact[direction] = closing_exact
        elif base is not None and None not in energies:
            self.booked.values[direction] = base + sum(e for e in energies if e is not None)
            self.booked.exact[direction] = False
        else:
            self.booked.values[direction] = None

    def _span(self, start: datetime, end: datetime) -> list[datetime]:
        quarters = []
        while start < end:
            quarters.append(start)
            start += QUARTER
        return quarters

    def _alone(self, span: list[datetime], direction: str) -> list[float | None]:
        """Each quarter's own estimate (filled at its mean power); None where power left it."""
        energies: list[float | None] = []
        for quarter in span:
            estimate = self.pending.get(quarter)
            if estimate is None or not estimate.complete(direction):
                energies.append(None)
                continue
            seconds = estimate.covered[direction]
            energies.append(estimate.energy[direction] * _QUARTER_SECONDS / seconds)
        return energies

    # -- closing hours without a register ------------------------------------------------------

    def _close_due(self, moment: datetime, out: list[LedgerInterval]) -> None:
        """Close the hours whose register is overdue, where power covered them."""
        booked = self.booked
        assert booked is not None
        while True:
            end = window_start(booked.time, self.zone, 60) + HOUR
            if moment < end + HOLD:
                return
            span = self._span(booked.time, end)
            covered = all(
                estimate is not None and estimate.complete(direction)
                for estimate in (self.pending.get(q) for q in span)
                for direction in self.directions
            )
            if not covered and moment - booked.time < MAX_PENDING:
                return
            columns = {d: self._alone(span, d) for d in sorted(self.directions)}
            for direction, energies in columns.items():
                self._advance_value(direction, energies, None)
            self._emit(span, columns, exact=False, single=False, out=out)
            booked.time = end

    # -- output ----------------------------------------------------------------------------------

    def _emit(
        self,
        span: list[datetime],
        columns: Mapping[str, list[float | None]],
        *,
        exact: bool,
        single: bool,
        out: list[LedgerInterval],
    ) -> None:
        bounds = (span[0], span[-1] + QUARTER) if span else None
        for index, quarter in enumerate(span):
            self.pending.pop(quarter, None)
            energy = {direction: column[index] for direction, column in columns.items()}
            if all(value is None for value in energy.values()):
                continue  # nothing known of this quarter: absent, not 0
            interval = LedgerInterval(
                self.meter,
                quarter,
                energy.get("import"),
                energy.get("export"),
                not (exact and single),
            )
            out.append(interval)
            assert bounds is not None
            self._roll_up(interval, exact=exact, span=bounds, out=out)
        self._forget_hours()

    def _roll_up(
        self,
        quarter: LedgerInterval,
        *,
        exact: bool,
        span: tuple[datetime, datetime],
        out: list[LedgerInterval],
    ) -> None:
        """Add a quarter to its hour; emit the hour with its fourth quarter.

        The hour is exact when registers bracket every span its quarters were split from, and
        no span reaches outside the hour (then registers bracket the hour itself).
        """
        start = window_start(quarter.start, self.zone, 60)
        hour = self.hours.setdefault(start, _Hour())
        hour.count += 1
        inside = start <= span[0] and span[1] <= start + HOUR
        hour.exact = hour.exact and exact and inside
        for direction, value in (("import", quarter.import_kwh), ("export", quarter.export_kwh)):
            so_far = hour.energy.get(direction, 0.0) if hour.count > 1 else 0.0
            hour.energy[direction] = None if value is None or so_far is None else so_far + value
        if hour.count == len(self._span(start, start + HOUR)):
            del self.hours[start]
            out.append(
                LedgerInterval(
                    self.meter,
                    start,
                    hour.energy.get("import"),
                    hour.energy.get("export"),
                    not hour.exact,
                    60,
                )
            )

    def _forget_hours(self) -> None:
        """Drop hours that can no longer complete (a quarter of them was absent)."""
        assert self.booked is not None
        for start in [s for s in self.hours if s + HOUR <= self.booked.time]:
            del self.hours[start]

    # -- state ---------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """The ledger's state as JSON-ready values (for the state file)."""
        return {
            "booked": None
            if self.booked is None
            else [self.booked.time.isoformat(), self.booked.values, self.booked.exact],
            "pending": [
                [quarter.isoformat(), estimate.energy, estimate.covered]
                for quarter, estimate in self.pending.items()
            ],
            "sample": _moment_values(self.sample),
            "register": _moment_values(self.register),
            "hours": [
                [start.isoformat(), hour.count, hour.energy, hour.exact]
                for start, hour in self.hours.items()
            ],
            "directions": sorted(self.directions),
        }

    def load(self, saved: Mapping[str, Any]) -> None:
        """Restore :meth:`dump`'s output (raises KeyError, TypeError or ValueError if damaged)."""
        booked = saved["booked"]
        if booked is not None:
            time, values, exact = booked
            self.booked = _Booked(
                _time(time),
                {str(k): _number_or_none(v) for k, v in dict(values).items()},
                {str(k): bool(v) for k, v in dict(exact).items()},
            )
        self.pending = {
            _time(quarter): _Estimate(_numbers(energy), _numbers(covered))
            for quarter, energy, covered in saved["pending"]
        }
        self.sample = _read_moment_values(saved["sample"])
        self.register = _read_moment_values(saved["register"])
        self.hours = {
            _time(start): _Hour(int(count), _optional_numbers(energy), bool(exact))
            for start, count, energy, exact in saved["hours"]
        }
        self.directions = {str(direction) for direction in saved["directions"]}


def _split(total: float, estimates: list[_Estimate | None], direction: str) -> list[float | None]:
    """``total`` split over the quarters in proportion to their filled estimates."""
    energy = sum(e.energy.get(direction, 0.0) for e in estimates if e is not None)
    seconds = sum(e.covered.get(direction, 0.0) for e in estimates if e is not None)
    mean_power = energy * 3600 / seconds if seconds else 0.0
    weights = [_Estimate() if e is None else e for e in estimates]
    filled = [max(w.filled(direction, mean_power), 0.0) for w in weights]
    whole = sum(filled)
    if whole <= 0:
        return [total / len(estimates)] * len(estimates)
    return [total * part / whole for part in filled]


def _moment_values(value: tuple[datetime, dict[str, float]] | None) -> list[Any] | None:
    return None if value is None else [value[0].isoformat(), value[1]]


def _read_moment_values(saved: object) -> tuple[datetime, dict[str, float]] | None:
    if saved is None:
        return None
    if not isinstance(saved, list):
        raise TypeError("expected a list")
    moment, values = saved
    return _time(moment), _numbers(values)


def _numbers(saved: object) -> dict[str, float]:
    if not isinstance(saved, dict):
        raise TypeError("expected an object")
    return {str(key): _number(value) for key, value in saved.items()}


def _optional_numbers(saved: object) -> dict[str, float | None]:
    if not isinstance(saved, dict):
        raise TypeError("expected an object")
    return {str(key): _number_or_none(value) for key, value in saved.items()}


def _number_or_none(value: object) -> float | None:
    return None if value is None else _number(value)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, found {type(value).__name__}")
    return float(value)


def _time(value: object) -> datetime:
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"time without offset: {value!r}")
    return moment
