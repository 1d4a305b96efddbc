"""Simulated meters whose clocks move: a household's load, registers that follow it, real frames.

Every meter is driven by :meth:`SimulatedMeter.advance` with the meter time to move to; it
integrates its power since the last step into its energy registers (zero-order hold, as the
energy stage integrates) and returns the frames a real meter of its kind sends meanwhile: a short
list on every step, a full list on every fifth, and the hourly list with the registers stamped
exactly at each hour it passes.  The frames are built with :mod:`han2mqtt.simulator.encode` in
each vendor's own layout (positions, OBIS codes, types, scalers as the sample captures have
them), so the decoder reads them as it reads the meter.

New meters (another vendor, another protocol) are classes with ``advance`` registered in
:data:`METERS` (the one place :func:`han2mqtt.simulator.serve_meters` looks them up).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from han2mqtt.simulator.encode import (
    array,
    cosem_date_time,
    data_notification,
    hdlc_frame,
    i16,
    obis,
    octets,
    p1_telegram,
    p1_time,
    scaler_unit,
    structure,
    u16,
    u32,
    visible,
)

__all__ = [
    "DEFAULT_METERS",
    "METERS",
    "AidonMeter",
    "Household",
    "Instant",
    "KaifaMeter",
    "KamstrupMeter",
    "MeterFactory",
    "P1Meter",
    "ReplayMeter",
    "SimulatedMeter",
    "later",
    "register_meter",
]

HOUR: Final = timedelta(hours=1)
_FULL_LIST_EVERY: Final = 5
"""Norwegian meters send list 1 every 2 s and list 2 every 10 s: every fifth step."""
_NOMINAL_VOLTAGE: Final = 230.0
_PHASE_SHARE: Final = (0.25, 0.45, 0.30)
_UNIT_W: Final = 27
_UNIT_VAR: Final = 29
_UNIT_WH: Final = 30
_UNIT_VARH: Final = 32
_UNIT_A: Final = 33
_UNIT_V: Final = 35
"""Blue Book units (IEC 62056-6-2 §4.3.2)."""


@dataclass(frozen=True)
class Household:
    """A repeatable load (W): base, morning and evening peaks, appliances, solar panels.

    The same meter time always gives the same power, so a replayed day is the same day.
    """

    base: float = 350.0
    peak: float = 2500.0
    solar: float = 0.0
    """Peak solar production (W) at local noon: exported when it exceeds the load."""
    seed: int = 1

    def power(self, moment: datetime) -> tuple[float, float]:
        """(import W, export W) at the local time ``moment``."""
        hour = moment.hour + moment.minute / 60
        minute = int(moment.timestamp() // 60)
        noise = random.Random(self.seed * 1_000_003 + minute).random()  # noqa: S311 - no crypto
        kettle = 2000.0 if noise > 0.93 else 0.0  # an appliance now and then: tariff peaks
        load = self.base * (0.8 + 0.4 * noise) + kettle
        load += self.peak * (_bump(hour, 7.5, 1.0) + 1.3 * _bump(hour, 18.5, 1.5))
        sun = self.solar * max(0.0, math.sin(math.pi * (hour - 6) / 12)) if 6 < hour < 18 else 0.0
        net = load - sun
        return (max(net, 0.0), max(-net, 0.0))


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


class Instant(NamedTuple):
    """What a simulated meter measures now: W and var (whole numbers), A and V per phase."""

    active_import: int
    active_export: int
    reactive_import: int
    reactive_export: int
    currents: list[float]
    voltages: list[float]


class SimulatedMeter:
    """A meter's clock and registers; subclasses say what their frames look like.

    Args:
        start: the meter's first time (aware, in the meter's zone: its clock shows local time).
    """

    household = Household()
    registers_start = (12_345_678.0, 0.0, 123_456.0, 234_567.0)
    """Active import and export (Wh), reactive import and export (varh) at ``start``."""

    def __init__(self, start: datetime) -> None:
        self.time = start
        self.steps = 0
        self.import_wh, self.export_wh, self.q_import, self.q_export = self.registers_start
        self.power = self.household.power(start)
        self.short_lists = True
        """Send the short list (no meter id) between the full ones; off for a shared line."""

    def advance(self, to: datetime) -> list[bytes]:
        """Move the clock to ``to``; the frames sent meanwhile (the hourly lists included)."""
        frames: list[bytes] = []
        hour = _next_hour(self.time)
        while hour <= to:
            self._run_until(hour)
            frames += self.hourly(hour)
            hour = later(hour, HOUR)
        if self.time < to:
            self._run_until(to)
            self.steps += 1
            full = not self.short_lists or self.steps % _FULL_LIST_EVERY == 0
            frames += self.frame(to, full=full)
        return frames

    def _run_until(self, moment: datetime) -> None:
        hours = (moment.timestamp() - self.time.timestamp()) / 3600
        active_import, active_export = self.power
        self.import_wh += active_import * hours
        self.export_wh += active_export * hours
        self.q_import += 0.05 * active_export * hours
        self.q_export += 0.2 * active_import * hours
        self.time = moment
        self.power = self.household.power(moment)

    def frame(self, moment: datetime, *, full: bool) -> list[bytes]:
        """The frames of a step that is no hour: a short list, or the full one."""
        raise NotImplementedError

    def hourly(self, moment: datetime) -> list[bytes]:
        """The frames at the hour ``moment``: the list with the registers."""
        raise NotImplementedError

    def phases(self) -> tuple[list[float], list[float]]:
        """Currents (A) and voltages (V) of the three phases for the current power."""
        active = self.power[0] + self.power[1]
        noise = random.Random(int(self.time.timestamp())).random()  # noqa: S311
        voltages = [_NOMINAL_VOLTAGE + 4 * noise - 2 + phase for phase in (0.6, -0.4, 1.1)]
        currents = [
            active * share / voltage for share, voltage in zip(_PHASE_SHARE, voltages, strict=True)
        ]
        return currents, voltages

    def instant(self) -> Instant:
        """The instantaneous values of a NEK list for the current power, rounded to whole W/var."""
        currents, voltages = self.phases()
        active_import, active_export = (round(value) for value in self.power)
        reactive = (round(0.05 * active_export), round(0.2 * active_import))
        return Instant(active_import, active_export, *reactive, currents, voltages)


def _next_hour(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    floor = utc.replace(minute=0, second=0, microsecond=0)
    return (floor + HOUR).astimezone(moment.tzinfo)


def later(moment: datetime, delta: timedelta) -> datetime:
    """``moment`` + ``delta`` of elapsed time, on ``moment``'s wall clock.

    Python adds to an aware time on its wall clock (02:30 + 1 h is 03:30 even on the night the
    clocks skip an hour); a meter's clock runs in elapsed time.
    """
    return (moment.astimezone(UTC) + delta).astimezone(moment.tzinfo)


class AidonMeter(SimulatedMeter):
    """Aidon 6534 (NEK lists "AIDON_V0001"): OBIS code, value and scaler_unit per element."""

    meter_id = "7359992891237028"
    household = Household(base=400, peak=2800, seed=1)

    def _head(self) -> list[bytes]:
        return [
            structure(obis("1-1:0.2.129.255"), visible("AIDON_V0001")),
            structure(obis("0-0:96.1.0.255"), visible(self.meter_id)),
            structure(obis("0-0:96.1.7.255"), visible("6534")),
        ]

    def _list2(self) -> list[bytes]:
        now = self.instant()
        elements = [
            self._value("1-0:1.7.0.255", u32(now.active_import), 0, _UNIT_W),
            self._value("1-0:2.7.0.255", u32(now.active_export), 0, _UNIT_W),
            self._value("1-0:3.7.0.255", u32(now.reactive_import), 0, _UNIT_VAR),
            self._value("1-0:4.7.0.255", u32(now.reactive_export), 0, _UNIT_VAR),
        ]
        for code, current in zip(("31", "51", "71"), now.currents, strict=True):
            elements.append(
                self._value(f"1-0:{code}.7.0.255", i16(round(current * 10)), -1, _UNIT_A)
            )
        for code, voltage in zip(("32", "52", "72"), now.voltages, strict=True):
            elements.append(
                self._value(f"1-0:{code}.7.0.255", u16(round(voltage * 10)), -1, _UNIT_V)
            )
        return [*self._head(), *elements]

    @staticmethod
    def _value(code: str, value: bytes, scaler: int, unit: int) -> bytes:
        return structure(obis(code), value, scaler_unit(scaler, unit))

    def _send(self, elements: list[bytes]) -> list[bytes]:
        return [hdlc_frame(data_notification(array(*elements)))]

    def frame(self, moment: datetime, *, full: bool) -> list[bytes]:
        """List 2 every fifth step, else list 1 (active power import only; no clock)."""
        del moment
        if full:
            return self._send(self._list2())
        power = self._value("1-0:1.7.0.255", u32(round(self.power[0])), 0, _UNIT_W)
        return self._send([power])

    def hourly(self, moment: datetime) -> list[bytes]:
        """List 3: list 2, the clock and the four registers (in 10 Wh, scaler 1)."""
        registers = [
            self._value(code, u32(int(value // 10)), 1, unit)
            for code, value, unit in (
                ("1-0:1.8.0.255", self.import_wh, _UNIT_WH),
                ("1-0:2.8.0.255", self.export_wh, _UNIT_WH),
                ("1-0:3.8.0.255", self.q_import, _UNIT_VARH),
                ("1-0:4.8.0.255", self.q_export, _UNIT_VARH),
            )
        ]
        clock = structure(obis("0-0:1.0.0.255"), octets(cosem_date_time(moment)))
        return self._send([*self._list2(), clock, *registers])


class KaifaMeter(SimulatedMeter):
    """Kaifa MA304H3E (NEK lists "KFM_001"): bare values by position, the clock in the header."""

    meter_id = "6970631401753985"
    household = Household(base=300, peak=2000, seed=2)
    registers_start = (8_765_432.0, 0.0, 54_321.0, 98_765.0)

    def _list2(self) -> list[bytes]:
        now = self.instant()
        return [
            octets(b"KFM_001"),
            octets(self.meter_id.encode("ascii")),
            octets(b"MA304H3E"),
            u32(now.active_import),
            u32(now.active_export),
            u32(now.reactive_import),
            u32(now.reactive_export),
            *(u32(round(current * 1000)) for current in now.currents),
            *(u32(round(voltage * 10)) for voltage in now.voltages),
        ]

    def _send(self, moment: datetime, elements: list[bytes]) -> list[bytes]:
        information = data_notification(structure(*elements), moment)
        return [hdlc_frame(information, dest=b"\x01", src=b"\x02\x01")]

    def frame(self, moment: datetime, *, full: bool) -> list[bytes]:
        """List 2 (13 positions) every fifth step, else list 1 (active power import)."""
        if full:
            return self._send(moment, self._list2())
        return self._send(moment, [u32(round(self.power[0]))])

    def hourly(self, moment: datetime) -> list[bytes]:
        """List 3 (18 positions): list 2, the clock, the registers in Wh and varh."""
        registers = [
            u32(int(value))
            for value in (self.import_wh, self.export_wh, self.q_import, self.q_export)
        ]
        clock = octets(cosem_date_time(moment))
        return self._send(moment, [*self._list2(), clock, *registers])


class KamstrupMeter(SimulatedMeter):
    """Kamstrup Omnipower ("Kamstrup_V0001"): OBIS code and value pairs in one structure."""

    meter_id = "5706567274389702"
    household = Household(base=500, peak=3500, seed=3)
    registers_start = (4_272_440.0, 0.0, 800.0, 618_130.0)

    def _list(self) -> list[bytes]:
        now = self.instant()
        elements = [
            visible("Kamstrup_V0001"),
            obis("1-1:0.0.5.255"),
            visible(self.meter_id),
            obis("1-1:96.1.1.255"),
            visible("6841121BN243101040"),
        ]
        values = [
            ("1-1:1.7.0.255", u32(now.active_import)),
            ("1-1:2.7.0.255", u32(now.active_export)),
            ("1-1:3.7.0.255", u32(now.reactive_import)),
            ("1-1:4.7.0.255", u32(now.reactive_export)),
            *(
                (f"1-1:{c}.7.0.255", u32(round(i * 100)))
                for c, i in zip(("31", "51", "71"), now.currents, strict=True)
            ),
            *(
                (f"1-1:{c}.7.0.255", u16(round(v)))
                for c, v in zip(("32", "52", "72"), now.voltages, strict=True)
            ),
        ]
        for code, value in values:
            elements += [obis(code), value]
        return elements

    def _send(self, moment: datetime, elements: list[bytes]) -> list[bytes]:
        information = data_notification(structure(*elements), moment)
        return [hdlc_frame(information, dest=b"\x2b", src=b"\x21")]

    def frame(self, moment: datetime, *, full: bool) -> list[bytes]:
        """The 10-second list (Kamstrup has no shorter one)."""
        del full
        return self._send(moment, self._list())

    def hourly(self, moment: datetime) -> list[bytes]:
        """The hourly list: the clock and the registers in 10 Wh (0.01 kWh)."""
        elements = [*self._list(), obis("0-1:1.0.0.255"), octets(cosem_date_time(moment))]
        for code, value in (
            ("1-1:1.8.0.255", self.import_wh),
            ("1-1:2.8.0.255", self.export_wh),
            ("1-1:3.8.0.255", self.q_import),
            ("1-1:4.8.0.255", self.q_export),
        ):
            elements += [obis(code), u32(int(value // 10))]
        return self._send(moment, elements)


class P1Meter(SimulatedMeter):
    """A DSMR 5 P1 port (Netherlands, Belgium): a telegram every step, registers in each.

    This household has solar panels: at midday it exports.  Tariff 1 is the low (night and
    weekend) register, tariff 2 the normal one.
    """

    meter_id = "E0044007131650618"
    household = Household(base=300, peak=1800, solar=3500, seed=4)
    registers_start = (2_345_678.0, 1_234_567.0, 0.0, 0.0)

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.tariff_wh = [
            [self.import_wh * 0.4, self.import_wh * 0.6],
            [self.export_wh * 0.3, self.export_wh * 0.7],
        ]

    def _run_until(self, moment: datetime) -> None:
        before = (self.import_wh, self.export_wh)
        low = self.time.weekday() >= 5 or not 7 <= self.time.hour < 23
        super()._run_until(moment)
        tariff = 0 if low else 1
        self.tariff_wh[0][tariff] += self.import_wh - before[0]
        self.tariff_wh[1][tariff] += self.export_wh - before[1]

    def frame(self, moment: datetime, *, full: bool) -> list[bytes]:
        """One telegram."""
        del full
        currents, voltages = self.phases()
        active_import, active_export = self.power
        low = moment.weekday() >= 5 or not 7 <= moment.hour < 23
        lines = [
            "1-3:0.2.8(50)",
            f"0-0:1.0.0({p1_time(moment)})",
            f"0-0:96.1.1({self.meter_id.encode('ascii').hex().upper()})",
            f"1-0:1.8.1({self.tariff_wh[0][0] / 1000:010.3f}*kWh)",
            f"1-0:1.8.2({self.tariff_wh[0][1] / 1000:010.3f}*kWh)",
            f"1-0:2.8.1({self.tariff_wh[1][0] / 1000:010.3f}*kWh)",
            f"1-0:2.8.2({self.tariff_wh[1][1] / 1000:010.3f}*kWh)",
            f"0-0:96.14.0({1 if low else 2:04d})",
            f"1-0:1.7.0({active_import / 1000:06.3f}*kW)",
            f"1-0:2.7.0({active_export / 1000:06.3f}*kW)",
            *(
                f"1-0:{c}.7.0({v:05.1f}*V)"
                for c, v in zip(("32", "52", "72"), voltages, strict=True)
            ),
            *(
                f"1-0:{c}.7.0({round(i):03d}*A)"
                for c, i in zip(("31", "51", "71"), currents, strict=True)
            ),
        ]
        return [p1_telegram("ISK5\\2M550T-1012", lines)]

    def hourly(self, moment: datetime) -> list[bytes]:
        """A telegram like any other: P1 sends its registers every time."""
        return self.frame(moment, full=True)


class ReplayMeter(SimulatedMeter):
    """A meter whose frames are fixed captures or generated elsewhere: one per step, in a loop.

    For a protocol whose simulated frames come from another module (a list of frames): register
    it with ``register_meter(name, lambda start: ReplayMeter(start, frames()))``.  Its clock is
    whatever the frames say.
    """

    def __init__(self, start: datetime, frames: list[bytes]) -> None:
        super().__init__(start)
        self._frames = frames

    def frame(self, moment: datetime, *, full: bool) -> list[bytes]:
        """The next captured frame."""
        del moment, full
        return [self._frames[(self.steps - 1) % len(self._frames)]]

    def hourly(self, moment: datetime) -> list[bytes]:
        """Nothing extra on the hour: the captures are what they are."""
        del moment
        return []


MeterFactory = Callable[[datetime], SimulatedMeter]
"""Makes a simulated meter whose clock starts at the given (aware, local) time."""

METERS: dict[str, MeterFactory] = {
    "aidon": AidonMeter,
    "kaifa": KaifaMeter,
    "kamstrup": KamstrupMeter,
    "p1": P1Meter,
}
"""The simulated meters by name (``han2mqtt simulate --meter NAME``): add new ones here, or
with :func:`register_meter` from the module that defines them."""


class LinkyMeter(SimulatedMeter):
    """A French Linky in historique mode (TIC, HC/HP option), registers following the power.

    :mod:`han2mqtt.simulator.linky` writes the frame.  TIC sends apparent power; the household's
    load is taken as resistive (VA = W).  A historique frame carries no clock, so the bridge
    times it by arrival: sped up, its registers would rise faster than any meter's, and the demo
    leaves it out (:data:`DEFAULT_METERS`); ``simulate --meter linky`` at ``--speed 1`` serves it.
    """

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.short_lists = False  # TIC sends its whole frame every time
        self._hc = 723_392.0
        self._hp = 1_742_238.0
        self._counted = self.import_wh

    def frame(self, moment: datetime, *, full: bool) -> list[bytes]:
        """The frame of this moment: the registers so far, the power now."""
        from han2mqtt.simulator.linky import historique_frame, is_off_peak  # noqa: PLC0415 - on demand

        del full
        used, self._counted = self.import_wh - self._counted, self.import_wh
        if is_off_peak(moment.hour):
            self._hc += used
        else:
            self._hp += used
        apparent = round(self.power[0])
        return [historique_frame(int(self._hc), int(self._hp), apparent, moment.hour)]

    def hourly(self, moment: datetime) -> list[bytes]:
        """TIC has no hourly list: its registers come in every frame."""
        return self.frame(moment, full=True)


DEFAULT_METERS: list[str] = list(METERS)
"""The meters served when none is named (the demo's): those with a clock of their own."""


def register_meter(name: str, factory: MeterFactory, *, default: bool = True) -> None:
    """Make a simulated meter available by ``name`` (to ``simulate --meter`` and the demo).

    ``default``: served when no meter is named; False for a meter whose frames carry no clock.
    """
    METERS[name] = factory
    if default and name not in DEFAULT_METERS:
        DEFAULT_METERS.append(name)


register_meter("linky", LinkyMeter, default=False)
