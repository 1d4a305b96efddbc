"""Both DST days and the month's end in Europe/Oslo: 23- and 25-hour days, naive meter clocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from han2mqtt.energy import PRESETS, EnergyEngine, EnergyResult
from tests.energy.helpers import OSLO, engine, feed, reading

STEP = timedelta(seconds=10)


def _run_day(
    first: datetime, last: datetime, target: EnergyEngine | None = None
) -> list[tuple[datetime, EnergyResult]]:
    """Frames every 10 s from ``first`` to ``last`` (UTC) at 1 kW, a register every local hour.

    Returns every result, with the local naive time the meter sent.
    """
    target = target or engine()
    energy, moment = 1000.0, first
    results: list[tuple[datetime, EnergyResult]] = []
    while moment <= last:
        naive = moment.astimezone(OSLO).replace(tzinfo=None)
        on_hour = naive.minute == 0 and naive.second == 0
        frame = reading(naive, power=1000, register=round(energy, 3) if on_hour else None)
        results.append((naive, feed(target, frame, moment)))
        energy += 1000 * 10 / 3_600_000
        moment += STEP
    return results


def test_spring_forward_day_has_23_hours():
    start = datetime(2024, 3, 30, 23, tzinfo=UTC)  # 2024-03-31 00:00 CET
    results = _run_day(start, start + timedelta(hours=23))  # to 2024-04-01 00:00 CEST
    starts = [
        r.values["energy_import_last_hour_start"]
        for _, r in results
        if "energy_import_last_hour" in r.values
    ]
    hours = [
        r.values["energy_import_last_hour"]
        for _, r in results
        if "energy_import_last_hour" in r.values
    ]
    assert len(starts) == 23
    assert hours == [1.0] * 23
    assert starts[1:3] == ["2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00"]
    assert starts[-1] == "2024-03-31T23:00:00+02:00"
    last_of_day = results[-2][1].values
    assert abs(float(last_of_day["energy_import_today"]) - 23.0) <= 0.01
    assert results[-1][1].values["energy_import_today"] == 0.0


def test_fall_back_day_has_25_hours_and_two_2_oclock_hours():
    start = datetime(2024, 10, 26, 22, tzinfo=UTC)  # 2024-10-27 00:00 CEST
    results = _run_day(start, start + timedelta(hours=25))  # to 2024-10-28 00:00 CET
    found = [r.values for _, r in results if "energy_import_last_hour" in r.values]
    starts = [values["energy_import_last_hour_start"] for values in found]
    assert len(starts) == 25
    assert [values["energy_import_last_hour"] for values in found] == [1.0] * 25
    assert starts[2:4] == ["2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"]
    last_of_day = results[-2][1].values
    assert abs(float(last_of_day["energy_import_today"]) - 25.0) <= 0.01
    # The live counter never went back, although the meter's clock did.
    lives = [float(r.values["energy_import"]) for _, r in results if "energy_import" in r.values]
    assert lives == sorted(lives)


def test_month_rollover_starts_new_peaks():
    target = engine(PRESETS["no"])
    start = datetime(2024, 10, 31, 21, tzinfo=UTC)  # 22:00 CET on the month's last day
    results = _run_day(start, start + timedelta(hours=3), target)
    before = next(r.values for naive, r in results if naive == datetime(2024, 10, 31, 23, 59, 50))  # noqa: DTZ001
    peaks = json.loads(str(before["tariff_peaks"]))
    assert peaks == [{"start": "2024-10-31T22:00:00+01:00", "kwh": 1.0}]
    assert before["tariff_average"] == 1.0
    after = next(r.values for naive, r in results if naive == datetime(2024, 11, 1, 0, 0, 10))  # noqa: DTZ001
    assert after["tariff_peaks"] == "[]"
    assert "tariff_average" not in after
    assert after["tariff_tier"] == "0-2"
    assert after["energy_import_today"] == round(1000 * 10 / 3_600_000, 3)
    end = results[-1][1].values
    assert json.loads(str(end["tariff_peaks"]))[0]["start"] == "2024-11-01T00:00:00+01:00"
