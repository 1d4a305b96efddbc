"""Readings for the energy stage's tests, built field by field (values as the decoder gives)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from han2mqtt.energy import EnergyEngine, EnergyParameters, EnergyResult, TariffModel
from han2mqtt.model import MeterReading

OSLO = ZoneInfo("Europe/Oslo")
IMPORT_CODE = "1-0:1.8.0.255"
EXPORT_CODE = "1-0:2.8.0.255"


def reading(
    stamp: datetime | None,
    *,
    power: int | None = None,
    export_power: int | None = None,
    register: float | None = None,
    export_register: float | None = None,
    currents: tuple[float, ...] = (),
) -> MeterReading:
    """One frame; ``stamp`` is local meter time, sent naive as Kamstrup and Aidon do."""
    fields: dict[str, int | float | str] = {}
    obis: dict[str, int | float | str] = {}
    field_obis: dict[str, str] = {}
    if stamp is not None:
        fields["meter_datetime"] = stamp.replace(tzinfo=None).isoformat()
    for name, code, value in (
        ("active_power_import", "1-0:1.7.0.255", power),
        ("active_power_export", "1-0:2.7.0.255", export_power),
        ("active_power_import_total", IMPORT_CODE, register),
        ("active_power_export_total", EXPORT_CODE, export_register),
        *((f"current_l{n}", f"1-0:{11 + 20 * n}.7.0.255", c) for n, c in enumerate(currents, 1)),
    ):
        if value is not None:
            fields[name] = value
            obis[code] = value * 1000 if "total" in name else value
            field_obis[name] = code
    return MeterReading(fields, obis, {}, field_obis, "test")


def engine(
    tariff: TariffModel | None = None, *, ledger: bool = False, **kwargs: float
) -> EnergyEngine:
    return EnergyEngine(EnergyParameters(zone=OSLO, tariff=tariff, ledger=ledger, **kwargs), "m")


def feed(target: EnergyEngine, frame: MeterReading, stamp: datetime | None = None) -> EnergyResult:
    """Feed with a receive time: the meter time if there is one (a live meter), else ``stamp``."""
    received = stamp or datetime(2024, 1, 1, tzinfo=UTC)
    text = frame.fields.get("meter_datetime")
    if isinstance(text, str):
        received = datetime.fromisoformat(text).replace(tzinfo=OSLO).astimezone(UTC)
    return target.feed(frame, received + timedelta(seconds=1))


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A local (Europe/Oslo) wall-clock time, naive as the meter sends it."""
    return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - naive local time
