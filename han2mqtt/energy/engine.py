"""The energy stage of one meter: readings in, guarded readings and derived values out.

:class:`EnergyEngine` is sans-IO: it never reads a clock.  Each reading comes with the time it was
received, which is used only when the frame carries no meter time (and then shifted by the
meter clock's offset learned from the last frame that had one), so a recording replayed at full
speed gives what the day gave.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from han2mqtt.energy.clock import local_iso, parse_meter_time, window_start
from han2mqtt.energy.counter import HOUR, LiveCounter
from han2mqtt.energy.guard import CounterGuard, Register, Verdict
from han2mqtt.energy.ledger import Ledger, LedgerInterval
from han2mqtt.energy.tariff import CapacityTariff, Peak, TariffModel
from han2mqtt.energy.volume import VOLUME_FIELDS, VolumeLedger
from han2mqtt.meters.submeter import SUB_METER_FIELDS
from han2mqtt.model import (
    FIELD_ACTIVE_POWER_EXPORT,
    FIELD_ACTIVE_POWER_EXPORT_TOTAL,
    FIELD_ACTIVE_POWER_IMPORT,
    FIELD_ACTIVE_POWER_IMPORT_TOTAL,
    FIELD_METER_DATETIME,
    FieldValue,
    MeterReading,
)

__all__ = [
    "DIRECTIONS",
    "SNAP",
    "EnergyEngine",
    "EnergyParameters",
    "EnergyResult",
    "GuardEvent",
    "is_register",
]

SNAP: Final = timedelta(minutes=2)
"""An hourly register sent this long after the hour is the hour's register (Kamstrup stamps its
hourly list with the time it sends it, up to a minute after the hour; Aidon with HH:00:00)."""
HOURLY: Final = timedelta(minutes=30)
DIRECTIONS: Final = (
    ("import", FIELD_ACTIVE_POWER_IMPORT, FIELD_ACTIVE_POWER_IMPORT_TOTAL),
    ("export", FIELD_ACTIVE_POWER_EXPORT, FIELD_ACTIVE_POWER_EXPORT_TOTAL),
)
_JOULES_PER_KWH: Final = 3_600_000.0
_UNLIMITED: Final = frozenset({"water_total", "heat_total", "cooling_total"})
_PHASES: Final = ((1, "current_l1"), (2, "current_l2"), (3, "current_l3"))
_TARIFF_NAMES: Final = {
    total: tuple(f"{total}_t{n}" for n in range(1, 11)) for _, _, total in DIRECTIONS
}


@dataclass(frozen=True, slots=True)
class EnergyParameters:
    """The engine's settings, as plain values.

    Attributes:
        zone: local time (``meter.timezone``): hours, days, months, naive meter times.
        max_power: kW the installation can draw at most (``meter.max_power``).
        main_fuse: the main fuse in A (``meter.main_fuse``), for ``phase_load_l1..3``.
        tariff: the capacity tariff, or None.
        max_gas_flow: m³/h a gas meter behind the P1 port can pass at most
            (``meter.max_gas_flow``): the counter guard's limit for ``gas_total``.
        ledger: keep the quarter-hour ledger (the history store is on).
    """

    zone: tzinfo = UTC
    max_power: float = 50.0
    main_fuse: float | None = None
    tariff: TariffModel | None = None
    max_gas_flow: float = 16.0

    def max_rate(self, register: str) -> float:
        """How fast ``register`` may rise per hour: kW for energy, m³/h for gas.

        Water, heat and cooling registers of sub-meters have no limit of ours (only a register
        going backwards is refused): their units and flows differ too much to guess one.
        """
        if register == "gas_total":
            return self.max_gas_flow
        if register in _UNLIMITED:
            return math.inf
        return self.max_power

    ledger: bool = False


@dataclass(frozen=True, slots=True)
class GuardEvent:
    """A register the counter guard rejected (or accepted as a meter exchange)."""

    field: str
    verdict: Verdict
    value: float
    previous: float | None


@dataclass(frozen=True, slots=True)
class EnergyResult:
    """What one reading gives: the reading without rejected registers, and derived values."""

    reading: MeterReading
    values: dict[str, FieldValue]
    events: tuple[GuardEvent, ...] = ()
    repeated: bool = False
    """The frame repeated the previous list (meter clock and registers): not a new register."""
    intervals: tuple[LedgerInterval, ...] = ()
    """Ledger intervals the frame closed (quarters, then hours)."""


def is_register(name: str) -> bool:
    """Whether a normalized field is an energy register (``active_power_import_total``, ...)."""
    return "_total" in name


_NUMBERS: Final = (int, float)


def _number(value: object) -> bool:
    return type(value) in _NUMBERS


class EnergyEngine:
    """Live counters, interval energy, the counter guard and the capacity tariff of one meter."""

    def __init__(self, parameters: EnergyParameters, meter: str = "") -> None:
        self.parameters = parameters
        self.meter = meter
        self.ledger = Ledger(meter, parameters.zone) if parameters.ledger else None
        self.volume: VolumeLedger | None = None
        """A gas or water meter's ledger (made at its first reading)."""
        zone, model = parameters.zone, parameters.tariff
        self.counters = {
            "import": LiveCounter(zone, model.window if model else None),
            "export": LiveCounter(zone),
        }
        self.guards: dict[str, CounterGuard] = {}
        self.tariff = CapacityTariff(model, zone) if model else None
        self.latest: datetime | None = None
        """The latest frame time (a naive clock's repeated autumn hour is read after it)."""
        self.clock_offset: timedelta | None = None
        """Meter clock minus receive time, from the last frame with a clock (for those without)."""
        self._after_plain_frame = False
        self._peaks_text: tuple[list[Peak], str] = ([], "[]")
        self._rejected: set[str] = set()
        self._last_list: tuple[FieldValue | None, list[tuple[str, FieldValue]]] | None = None

    def feed(self, reading: MeterReading, received: datetime) -> EnergyResult:
        """Take one reading (``received``: aware receive time) and return what it gives."""
        registers = [
            (name, value)
            for name, value in reading.fields.items()
            if "_total" in name and type(value) in _NUMBERS
        ]
        sent = reading
        repeated = self._repeats(reading.fields, registers)
        if repeated:
            # Aidon meters sometimes send the previous hour's list again: its clock and registers
            # are an hour old.  Only its power is news; the hour it should have closed is left
            # to the power integral and the next register.
            reading = _without_time_and_registers(reading, {name for name, _ in registers})
            registers = []
        moment, timed = self._frame_time(reading.fields, received)
        stamp = self._register_time(bool(registers), moment)
        rejected, exchanged, events = self._guard(registers, stamp)
        self._rejected = rejected
        if rejected:
            reading = _without(reading, rejected)
        values: dict[str, FieldValue] = {}
        if timed:
            values["meter_time"] = local_iso(moment, self.parameters.zone)
        self._power_values(reading.fields, values)
        for direction, power, total in DIRECTIONS:
            self._count(
                direction,
                power_name=power,
                total_name=total,
                fields=reading.fields,
                moment=moment,
                stamp=stamp,
                exchanged=exchanged,
                values=values,
            )
        if self.tariff is not None:
            self._tariff_values(moment, values)
        intervals = (
            [] if self.ledger is None else self._book(reading.fields, moment, stamp, exchanged)
        )
        if timed:  # a repeated reading carries no time any more
            volume = self._book_volume(reading.fields, moment)
            if self.parameters.ledger:  # kept for the gas costs even without the history
                intervals += volume
        return EnergyResult(
            sent if repeated else reading, values, tuple(events), repeated, tuple(intervals)
        )

    def _book(
        self, fields: dict[str, FieldValue], moment: datetime, stamp: datetime, exchanged: set[str]
    ) -> list[LedgerInterval]:
        """Feed the ledger the frame's powers and accepted registers."""
        assert self.ledger is not None
        powers: dict[str, float] = {}
        registers: dict[str, float] = {}
        exchanges: list[str] = []
        for direction, power_name, total_name in DIRECTIONS:
            power = fields.get(power_name)
            if _number(power):
                powers[direction] = float(power)  # type: ignore[arg-type]
            found = _register_value(fields, total_name, self._rejected)
            if found is not None:
                registers[direction] = found[0]
                if not exchanged.isdisjoint(found[1]):
                    exchanges.append(direction)
        return self.ledger.feed(moment, powers, registers, stamp, exchanges)

    def _book_volume(self, fields: dict[str, FieldValue], moment: datetime) -> list[LedgerInterval]:
        """A gas or water meter's accepted register, at its capture time (``moment``)."""
        for name, kind in VOLUME_FIELDS.items():
            value = fields.get(name)
            if _number(value):
                if self.volume is None or self.volume.kind != kind:
                    self.volume = VolumeLedger(self.meter, self.parameters.zone, kind)
                return self.volume.feed(moment, float(value))  # type: ignore[arg-type]
        return []

    def _repeats(
        self, fields: dict[str, FieldValue], registers: list[tuple[str, FieldValue]]
    ) -> bool:
        """Whether a list with registers repeats the previous one's meter clock and registers.

        A meter without a clock can send the same registers twice in earnest (nothing used), so
        only a repeated clock makes a repeat.
        """
        if not registers or not SUB_METER_FIELDS.isdisjoint(fields):
            return False  # a gas or water meter's reading is repeated in every telegram: no fault
        clock = fields.get(FIELD_METER_DATETIME)
        previous, self._last_list = self._last_list, (clock, registers)
        return clock is not None and previous == (clock, registers)

    # -- time -------------------------------------------------------------------------------

    def _frame_time(
        self, fields: dict[str, FieldValue], received: datetime
    ) -> tuple[datetime, bool]:
        text = fields.get(FIELD_METER_DATETIME)
        zone = self.parameters.zone
        moment = parse_meter_time(text, zone, after=self.latest) if isinstance(text, str) else None
        timed = moment is not None
        if moment is not None:
            self.clock_offset = moment - received
        else:
            moment = received if self.clock_offset is None else received + self.clock_offset
        if self.latest is None or moment > self.latest:
            self.latest = moment
        return moment, timed

    def _register_time(self, has_registers: bool, moment: datetime) -> datetime:
        """The time the frame's registers hold: hourly lists snap to the hour they close.

        Registers are hourly when the frame before had none, or the last register is half an
        hour old (the first frame after a restart); P1 telegrams carry them in every frame.
        """
        last = self.counters["import"].register
        stale = last is not None and moment - last.time >= HOURLY
        hourly = has_registers and (self._after_plain_frame or stale)
        self._after_plain_frame = not has_registers
        if not hourly:
            return moment
        hour = window_start(moment, self.parameters.zone, 60)
        return hour if moment - hour <= SNAP else moment

    # -- the counter guard --------------------------------------------------------------------

    def _guard(
        self, registers: list[tuple[str, FieldValue]], stamp: datetime
    ) -> tuple[set[str], set[str], list[GuardEvent]]:
        rejected: set[str] = set()
        exchanged: set[str] = set()
        events: list[GuardEvent] = []
        for name, value in registers:
            guard = self.guards.get(name)
            if guard is None:
                guard = self.guards[name] = CounterGuard(self.parameters.max_rate(name))
            previous = None if guard.last is None else guard.last.value
            verdict = guard.check(Register(float(value), stamp))
            if verdict is Verdict.ACCEPTED:
                continue
            events.append(GuardEvent(name, verdict, float(value), previous))
            (exchanged if verdict is Verdict.EXCHANGE else rejected).add(name)
        return rejected, exchanged, events

    # -- derived values -----------------------------------------------------------------------

    def _power_values(self, fields: dict[str, FieldValue], values: dict[str, FieldValue]) -> None:
        imported = fields.get(FIELD_ACTIVE_POWER_IMPORT)
        exported = fields.get(FIELD_ACTIVE_POWER_EXPORT)
        if _number(imported) and _number(exported):
            net = float(imported) - float(exported)  # type: ignore[arg-type]
            values["power_net"] = int(net) if net.is_integer() else round(net, 3)
        fuse = self.parameters.main_fuse
        if fuse is None:
            return
        for phase, name in _PHASES:
            current = fields.get(name)
            if _number(current):
                values[f"phase_load_l{phase}"] = round(abs(float(current)) * 100 / fuse, 1)  # type: ignore[arg-type]

    def _count(  # noqa: PLR0913 - one direction's names, the frame and its times
        self,
        direction: str,
        *,
        power_name: str,
        total_name: str,
        fields: dict[str, FieldValue],
        moment: datetime,
        stamp: datetime,
        exchanged: set[str],
        values: dict[str, FieldValue],
    ) -> None:
        counter = self.counters[direction]
        power = fields.get(power_name)
        if _number(power):
            counter.integral.add(moment, float(power))  # type: ignore[arg-type]
        closed = counter.advance(moment)
        tariff = self.tariff if direction == "import" else None
        if tariff is not None and closed is not None:
            tariff.close(closed.start, closed.value)
        found = _register_value(fields, total_name, self._rejected)
        if found is not None:
            value, names = found
            register = Register(value, stamp)
            counter.anchor(register, exchange=not exchanged.isdisjoint(names))
            last_hour = counter.mark(register)
            if last_hour is not None:
                values[f"energy_{direction}_last_hour"] = round(last_hour, 3)
                start = local_iso(stamp - HOUR, self.parameters.zone)
                values[f"energy_{direction}_last_hour_start"] = start
            exact = counter.exact_window(stamp)
            if tariff is not None and exact is not None:
                tariff.close(stamp - timedelta(minutes=tariff.model.window), exact)
        counter.update(moment)
        _emit(direction, counter, values)

    def _tariff_values(self, moment: datetime, values: dict[str, FieldValue]) -> None:
        tariff, counter = self.tariff, self.counters["import"]
        window = counter.window
        assert tariff is not None
        assert window is not None
        tariff.roll(window.start)
        values["tariff_peaks"] = self._peaks_json(tariff.peaks())
        average = tariff.average()
        if average is not None:
            values["tariff_average"] = round(average, 3)
        tier = tariff.model.tier(average or 0.0)
        if tier is not None:
            values["tariff_tier"] = tier[0]
        cost = tariff.cost()
        if cost is not None:
            values["tariff_capacity_cost"] = cost
        if window.base is None:
            return
        energy = window.value
        values["tariff_window_energy"] = round(energy, 3)
        remaining = max((window.end - moment).total_seconds(), 0.0)
        if counter.integral.power is not None:
            projection = energy + counter.integral.power * remaining / _JOULES_PER_KWH
            values["tariff_window_projection"] = round(projection, 3)
        room = tariff.headroom(window.start, energy)
        if room is not None:
            values["tariff_headroom"] = round(room, 3)
            if remaining > 0:
                values["tariff_headroom_power"] = round(room * _JOULES_PER_KWH / remaining)

    def _peaks_json(self, peaks: list[Peak]) -> str:
        if peaks != self._peaks_text[0]:
            zone = self.parameters.zone
            text = json.dumps(
                [{"start": local_iso(p.start, zone), "kwh": round(p.energy, 3)} for p in peaks],
                separators=(",", ":"),
            )
            self._peaks_text = (peaks, text)
        return self._peaks_text[1]


def _register_value(
    fields: dict[str, FieldValue], total_name: str, rejected: set[str]
) -> tuple[float, tuple[str, ...]] | None:
    """The direction's register: the total, else the sum of the tariff registers (DSMR).

    None when the frame has none, or the guard rejected one it would be made of.
    """
    total = fields.get(total_name)
    if total_name in rejected:
        return None
    if _number(total):
        return float(total), (total_name,)  # type: ignore[arg-type]
    names = _TARIFF_NAMES[total_name]
    if rejected and not rejected.isdisjoint(names):
        return None
    names = tuple(name for name in names if name in fields)
    parts = [fields[name] for name in names]
    if not names or not all(_number(part) for part in parts):
        return None
    return round(sum(float(part) for part in parts), 6), names


_NAMES: Final = {
    direction: (f"energy_{direction}", f"energy_{direction}_hour", f"energy_{direction}_today")
    for direction, _, _ in DIRECTIONS
}


def _emit(direction: str, counter: LiveCounter, values: dict[str, FieldValue]) -> None:
    live, hour, today = _NAMES[direction]
    if counter.live is not None:
        values[live] = round(counter.live, 3)
    if counter.hour is not None and counter.hour.base is not None:
        values[hour] = round(counter.hour.value, 3)
    if counter.day is not None and counter.day.base is not None:
        values[today] = round(counter.day.value, 3)


def _without_time_and_registers(reading: MeterReading, registers: set[str]) -> MeterReading:
    """A repeated list as the engine counts it: its power, without its old clock and registers.

    The published reading keeps them (they are what the meter sent); only the engine ignores
    them.
    """
    fields = {
        k: v for k, v in reading.fields.items() if k not in registers and k != FIELD_METER_DATETIME
    }
    return MeterReading(fields, reading.obis, reading.units, reading.field_obis, reading.layout)


def _without(reading: MeterReading, rejected: set[str]) -> MeterReading:
    """The reading without the rejected registers (fields and their OBIS values)."""
    codes = {reading.field_obis[name] for name in rejected if name in reading.field_obis}
    return replace(
        reading,
        fields={k: v for k, v in reading.fields.items() if k not in rejected},
        obis={k: v for k, v in reading.obis.items() if k not in codes},
        units={k: v for k, v in reading.units.items() if k not in codes},
        field_obis={k: v for k, v in reading.field_obis.items() if k not in rejected},
    )
