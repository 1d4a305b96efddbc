"""A Flemish month change from P1 telegrams: Fluvius's rule through the decoder and the engine.

Telegrams shaped like the corpus's Fluvius one (e-MUCS: two import registers, the meter clock
with its DST letter) every 10 s from 30 November 22:00 to 1 December 01:00 (Europe/Brussels),
through :class:`AutoDecoder` into the energy engine with the ``be`` preset, a price per kW and
October's value from the bill.  November's hot quarter goes to the kept months at midnight, and
December starts from the floor.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.autodecoder import AutoDecoder
from han2mqtt.bridge import energy_parameters
from han2mqtt.config import Settings
from han2mqtt.energy import EnergyEngine
from han2mqtt.model import FieldValue
from han2mqtt.protocol.crc import crc16_arc

BRUSSELS = ZoneInfo("Europe/Brussels")
STEP = timedelta(seconds=10)


def _telegram(moment: datetime, night: float, watts: float) -> bytes:
    stamp = moment.strftime("%y%m%d%H%M%S") + ("S" if moment.dst() else "W")
    body = (
        "/FLU5\\253769484_A\r\n\r\n"
        "0-0:96.1.4(50217)\r\n"
        "0-0:96.1.1(3153414733313031303231363035)\r\n"
        f"0-0:1.0.0({stamp})\r\n"
        "1-0:1.8.1(000100.000*kWh)\r\n"
        f"1-0:1.8.2({night:010.3f}*kWh)\r\n"
        "1-0:2.8.1(000000.000*kWh)\r\n"
        "1-0:2.8.2(000000.000*kWh)\r\n"
        f"1-0:1.7.0({watts / 1000:06.3f}*kW)\r\n"
        "1-0:2.7.0(00.000*kW)\r\n"
        "!"
    ).encode()
    return body + f"{crc16_arc(body):04X}\r\n".encode()


def _watts(local: datetime) -> float:
    if (local.day, local.hour, local.minute // 15) == (30, 23, 1):
        return 8000.0  # November's peak: 2 kWh in a quarter hour
    if (local.day, local.hour, local.minute // 15) == (1, 0, 2):
        return 4000.0  # December's first real peak
    return 1200.0


def _replay(until: datetime) -> dict[str, FieldValue]:
    settings = Settings.model_validate(
        {
            "meter": {"timezone": "Europe/Brussels"},
            "tariff": {
                "preset": "be",
                "price_per_kw": 3.37,
                "currency": "EUR",
                "past": {"2026-10": 3.0},
            },
        }
    )
    engine, decoder = EnergyEngine(energy_parameters(settings)), AutoDecoder()
    moment, night = datetime(2026, 11, 30, 22, tzinfo=BRUSSELS), 12_000.0
    values: dict[str, FieldValue] = {}
    while moment <= until:
        reading = decoder.decode(_telegram(moment, round(night, 3), _watts(moment)))
        values = engine.feed(reading, moment.astimezone(UTC) + timedelta(seconds=1)).values
        night += _watts(moment) * STEP.total_seconds() / 3.6e6
        moment = (moment.astimezone(UTC) + STEP).astimezone(BRUSSELS)
    return values


def test_before_midnight_november_and_october_are_averaged():
    values = _replay(datetime(2026, 11, 30, 23, 50, tzinfo=BRUSSELS))
    peaks = json.loads(str(values["tariff_peaks"]))
    assert peaks == [{"start": "2026-11-30T23:15:00+01:00", "kwh": 2.0}]
    assert values["tariff_average"] == pytest.approx((3.0 + 8.0) / 2)
    assert values["tariff_capacity_cost"] == pytest.approx(5.5 * 3.37)


def test_after_midnight_december_starts_at_the_floor():
    values = _replay(datetime(2026, 12, 1, 0, 5, tzinfo=BRUSSELS))
    assert values["tariff_peaks"] == "[]"
    assert values["tariff_average"] == pytest.approx((3.0 + 8.0 + 2.5) / 3)
    # December may reach what the bill already holds: 3 * 4.5 - 3 - 8 = 2.5 kW, 0.625 kWh a
    # quarter; 1.2 kW for 5 minutes used 0.1 of it.
    assert values["tariff_headroom"] == pytest.approx(0.525, abs=0.001)
    assert values["tariff_headroom_power"] == pytest.approx(0.525 * 3.6e6 / 600, abs=10)


def test_december_s_first_peak_raises_the_rolling_mean():
    values = _replay(datetime(2026, 12, 1, 0, 50, tzinfo=BRUSSELS))
    peaks = json.loads(str(values["tariff_peaks"]))
    assert peaks == [{"start": "2026-12-01T00:30:00+01:00", "kwh": 1.0}]
    assert values["tariff_average"] == pytest.approx((3.0 + 8.0 + 4.0) / 3)
    assert values["tariff_capacity_cost"] == pytest.approx(5.0 * 3.37)
    assert values["tariff_headroom"] == pytest.approx(0.9, abs=0.001)  # up to 1 kWh, 0.1 used
    assert values["tariff_headroom_power"] == pytest.approx(5400, abs=10)
