"""The capacity tariff: peaks, ties, the distinct-day rule, tiers and the headroom, by hand."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from han2mqtt.energy import PRESETS, CapacityTariff, TariffModel
from tests.energy.helpers import OSLO, engine, feed, local, reading


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=OSLO)


def _march(model: TariffModel) -> CapacityTariff:
    tariff = CapacityTariff(model, OSLO)
    for start, energy in (
        (at(2024, 3, 1, 8), 4.0),
        (at(2024, 3, 1, 18), 6.0),
        (at(2024, 3, 2, 19), 5.0),
        (at(2024, 3, 2, 20), 5.0),  # a tie on the same day: the earlier one stands for it
        (at(2024, 3, 3, 7), 3.0),
        (at(2024, 3, 4, 7), 5.0),  # a tie with 2 March's best
    ):
        tariff.close(start, energy)
    return tariff


def _starts(tariff: CapacityTariff) -> list[str]:
    return [peak.start.astimezone(OSLO).strftime("%d %H") for peak in tariff.peaks()]


def test_a_month_with_ties_and_the_distinct_day_rule():
    tariff = _march(PRESETS["no"])
    assert _starts(tariff) == ["01 18", "02 19", "04 07"]
    assert tariff.average() == pytest.approx(16 / 3)
    assert PRESETS["no"].tier(16 / 3) == ("5-10", 10)
    # 5 March 09:00, 1 kWh so far: the other days' best are 6, 5, 5, 3; the month's mean of
    # three reaches 10 kW when this hour reaches 3 × 10 - 6 - 5 = 19 kWh: 18 kWh more.
    assert tariff.headroom(at(2024, 3, 5, 9), 1.0) == pytest.approx(18.0)
    # 1 March 21:00 (the day's best is 6 kWh): this hour may reach 3 × 10 - 5 - 5 = 20 kWh.
    assert tariff.headroom(at(2024, 3, 1, 21), 2.0) == pytest.approx(18.0)
    # Already past the threshold: (6 + 5 + 19.5) / 3 > 10.
    assert tariff.headroom(at(2024, 3, 5, 9), 19.5) == 0.0


def test_without_distinct_days_two_peaks_of_one_day_count():
    tariff = _march(TariffModel(60, 3, tiers=(2, 5, 10)))
    assert _starts(tariff) == ["01 18", "02 19", "02 20"]
    assert tariff.average() == pytest.approx(16 / 3)
    assert tariff.headroom(at(2024, 3, 5, 9), 1.0) == pytest.approx(18.0)


def test_headroom_of_the_month_s_first_window():
    tariff = CapacityTariff(PRESETS["no"], OSLO)
    tariff.roll(at(2024, 3, 1, 0))
    assert tariff.peaks() == []
    assert tariff.average() is None
    assert tariff.headroom(at(2024, 3, 1, 0), 0.5) == pytest.approx(1.5)  # tier 0-2: 2 kWh


def test_filters_and_quarter_hours():
    daytime = TariffModel(60, 1, tiers=(5,), hours=((6, 22),), months=frozenset({11, 12, 1, 2, 3}))
    tariff = CapacityTariff(daytime, OSLO)
    tariff.close(at(2024, 3, 1, 22), 9.0)  # after 22:00: does not count
    tariff.close(at(2024, 3, 1, 5), 9.0)  # before 06:00: does not count
    tariff.close(at(2024, 3, 1, 12), 3.0)
    assert [peak.energy for peak in tariff.peaks()] == [3.0]
    assert tariff.headroom(at(2024, 3, 1, 23), 0.0) is None
    summer = CapacityTariff(daytime, OSLO)
    summer.close(at(2024, 6, 3, 12), 3.0)
    assert summer.peaks() == []
    weekdays = CapacityTariff(TariffModel(weekdays=frozenset({0, 1, 2, 3, 4})), OSLO)
    weekdays.close(at(2024, 3, 2, 12), 3.0)  # a Saturday
    assert weekdays.peaks() == []
    flanders = CapacityTariff(PRESETS["be"], OSLO)
    flanders.close(at(2024, 3, 1, 12, 15), 1.0)
    flanders.close(at(2024, 3, 1, 12, 30), 0.5)
    assert flanders.average() == 4.0  # 1 kWh in a quarter hour: 4 kW
    # No tiers: the headroom keeps to the peak already paid for (1 kWh in a quarter hour).
    assert flanders.headroom(at(2024, 3, 1, 12, 45), 0.0) == 1.0
    assert PRESETS["no"].tier(150) == ("100+", None)


def test_engine_tariff_values():
    target = engine(PRESETS["no"])
    feed(target, reading(local(2024, 3, 5, 10), power=2000, register=100.0))
    moment = local(2024, 3, 5, 10)
    while moment < local(2024, 3, 5, 10, 30):
        moment += timedelta(seconds=10)
        values = feed(target, reading(moment, power=2000)).values
    assert values["tariff_window_energy"] == 1.0
    assert values["tariff_window_projection"] == 2.0
    assert values["tariff_peaks"] == "[]"
    assert values["tariff_tier"] == "0-2"
    assert values["tariff_headroom"] == 1.0  # 2 kWh in the hour keeps the month at 0-2
    assert values["tariff_headroom_power"] == 2000  # 1 kWh in the remaining half hour
    while moment < local(2024, 3, 5, 10, 59, 50):
        moment += timedelta(seconds=10)
        feed(target, reading(moment, power=2000))
    values = feed(target, reading(local(2024, 3, 5, 11), power=500, register=102.1)).values
    peaks = json.loads(str(values["tariff_peaks"]))
    assert peaks == [{"start": "2024-03-05T10:00:00+01:00", "kwh": 2.1}]  # the exact register
    assert values["tariff_average"] == 2.1
    assert values["tariff_tier"] == "2-5"
    assert values["tariff_window_energy"] == 0.0
    # Another 2.1 kWh hour on the same day would not raise the mean; up to 5 kWh keeps 2-5.
    assert values["tariff_headroom"] == 5.0
