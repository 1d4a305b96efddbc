"""The capacity-tariff rules one by one and combined: weights, holidays, floor, rolling mean, fee.

Each test states the bill by hand; the headroom is checked by spending it and reading the
billed value back (it lands exactly on the boundary).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.energy import CapacityTariff, SeasonPrice, TariffModel, Weight
from han2mqtt.energy.calendar import PublicHolidays
from han2mqtt.energy.tariff import previous_months

STOCKHOLM = ZoneInfo("Europe/Stockholm")
BRUSSELS = ZoneInfo("Europe/Brussels")
NIGHT = (Weight(0.5, ((22, 24),)), Weight(0.5, ((0, 6),)))
WINTER = frozenset({11, 12, 1, 2, 3})


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=STOCKHOLM)


def spend(tariff: CapacityTariff, start: datetime, energy: float) -> float:
    """Close the window at ``start`` with ``energy`` plus its headroom; the billed value after."""
    room = tariff.headroom(start, energy)
    assert room is not None
    tariff.close(start, energy + room)
    average = tariff.average()
    assert average is not None
    return average


# -- weights ---------------------------------------------------------------------------------


def test_a_night_hour_counts_half_and_its_headroom_doubles():
    model = TariffModel(60, 1, tiers=(5, 10), weights=NIGHT)
    tariff = CapacityTariff(model, STOCKHOLM)
    tariff.close(at(2026, 12, 1, 23), 8.0)  # counts 4 kWh
    tariff.close(at(2026, 12, 2, 3), 6.0)  # counts 3 kWh
    assert [peak.energy for peak in tariff.peaks()] == [4.0, 3.0][:1]
    assert tariff.average() == 4.0
    assert tariff.boundary() == 5.0
    # Day: 5 kWh reach the boundary; at night twice that, 10 kWh of real energy.
    assert tariff.headroom(at(2026, 12, 2, 12), 1.0) == pytest.approx(4.0)
    assert tariff.headroom(at(2026, 12, 2, 22), 1.0) == pytest.approx(9.0)
    assert spend(tariff, at(2026, 12, 2, 22), 1.0) == pytest.approx(5.0)


def test_the_first_matching_weight_wins_and_weekdays_and_months_select():
    model = TariffModel(
        weights=(
            Weight(0.25, (), frozenset({5, 6})),  # weekends a quarter
            Weight(0.5, ((22, 24),)),
            Weight(2.0, (), frozenset(), frozenset({1})),  # January double
        )
    )
    assert model.factor(at(2026, 12, 5, 23)) == 0.25  # a Saturday night: the first rule
    assert model.factor(at(2026, 12, 7, 23)) == 0.5
    assert model.factor(at(2027, 1, 4, 12)) == 2.0
    assert model.factor(at(2026, 12, 7, 12)) == 1.0
    with pytest.raises(ValueError, match="factor"):
        Weight(0.0)


def test_weights_follow_the_local_clock_across_daylight_saving():
    # 29 March 2026: clocks go 02:00 -> 03:00 in Stockholm.  01:00 UTC is 03:00 local (night).
    model = TariffModel(60, 1, weights=(Weight(0.5, ((0, 6),)),))
    tariff = CapacityTariff(model, STOCKHOLM)
    tariff.close(datetime.fromisoformat("2026-03-29T01:00:00+00:00"), 4.0)
    assert tariff.peaks()[0].energy == 2.0


# -- holidays --------------------------------------------------------------------------------


def test_windows_on_public_holidays_do_not_count_and_have_no_headroom():
    model = TariffModel(60, 3, True, (5,), holidays=PublicHolidays("SE", de_facto=True))
    tariff = CapacityTariff(model, STOCKHOLM)
    tariff.close(at(2026, 12, 24, 17), 9.0)  # Christmas Eve (julafton)
    tariff.close(at(2026, 12, 25, 17), 9.0)  # Christmas Day
    tariff.close(at(2026, 12, 31, 17), 9.0)  # New Year's Eve (nyårsafton)
    tariff.close(at(2026, 12, 23, 17), 2.0)
    assert [peak.energy for peak in tariff.peaks()] == [2.0]
    assert not PublicHolidays("SE").is_holiday(at(2026, 12, 24).date())  # de facto only
    assert tariff.headroom(at(2026, 12, 26, 12), 0.0) is None  # Boxing Day: unlimited
    assert tariff.headroom(at(2026, 12, 28, 12), 0.0) == pytest.approx(8.0)  # 2 + x = 2 * 5


# -- floor -----------------------------------------------------------------------------------


def test_the_floor_raises_the_month_and_the_headroom_reaches_it():
    model = TariffModel(15, 1, floor=2.5, prices=(SeasonPrice((4.0,)),), per_kw=True)
    tariff = CapacityTariff(model, BRUSSELS)
    tariff.roll(at(2026, 12, 1))
    assert tariff.average() == 2.5  # no quarter yet: the floor
    assert tariff.cost() == pytest.approx(10.0)
    start = datetime(2026, 12, 1, 8, tzinfo=BRUSSELS)
    # Billed per kW without tiers: the quarter may reach what is paid anyway, 2.5 kW = 0.625 kWh.
    assert tariff.headroom(start, 0.125) == pytest.approx(0.5)
    tariff.close(start, 0.5)  # 2 kW: under the floor
    assert tariff.average() == 2.5
    tariff.close(datetime(2026, 12, 1, 9, tzinfo=BRUSSELS), 1.0)  # 4 kW
    assert tariff.average() == 4.0
    assert tariff.cost() == pytest.approx(16.0)


def test_a_month_without_floor_or_windows_has_no_value():
    tariff = CapacityTariff(TariffModel(tiers=(2, 5)), STOCKHOLM)
    tariff.roll(at(2026, 12, 1))
    assert tariff.average() is None
    assert tariff.cost() is None  # no price configured: absent, never 0


# -- rolling 12 months -----------------------------------------------------------------------


def test_previous_months_cross_the_year():
    assert previous_months("2026-02", 3) == ["2026-01", "2025-12", "2025-11"]


def test_rolling_mean_of_the_months_that_exist_with_the_floor_first():
    model = TariffModel(15, 1, period="rolling-12", floor=2.5, past=(("2026-10", 6.0),))
    tariff = CapacityTariff(model, BRUSSELS)
    tariff.close(datetime(2026, 11, 3, 18, tzinfo=BRUSSELS), 0.5)  # November: 2 kW -> 2.5
    assert tariff.average() == pytest.approx((6.0 + 2.5) / 2)
    tariff.roll(datetime(2026, 12, 1, 0, tzinfo=BRUSSELS))  # November closes at 2 kW
    assert tariff.history == {"2026-11": 2.0}
    assert tariff.past() == {"2026-11": 2.0, "2026-10": 6.0}
    assert tariff.average() == pytest.approx((6.0 + 2.5 + 2.5) / 3)  # December so far: floor
    tariff.close(datetime(2026, 12, 2, 18, tzinfo=BRUSSELS), 1.75)  # 7 kW
    assert tariff.average() == pytest.approx((6.0 + 2.5 + 7.0) / 3)


def test_rolling_headroom_solves_the_mean_for_this_month():
    # Tiers make a boundary; past months 3 and 4 kW, this month 2 kW: mean 3, tier 0-5.
    model = TariffModel(60, 1, tiers=(5,), period="rolling-12", past=(("2026-10", 3.0),))
    tariff = CapacityTariff(model, STOCKHOLM)
    tariff.history = {"2026-11": 4.0}
    tariff.close(at(2026, 12, 1, 12), 2.0)
    assert tariff.average() == pytest.approx(3.0)
    # The mean reaches 5 when this month reaches 3 * 5 - 3 - 4 = 8 kW: 8 kWh in an hour.
    assert tariff.headroom(at(2026, 12, 2, 12), 1.0) == pytest.approx(7.0)
    assert spend(tariff, at(2026, 12, 2, 12), 1.0) == pytest.approx(5.0)


def test_a_value_from_the_bill_wins_and_old_months_leave():
    model = TariffModel(period="rolling-12", past=(("2026-11", 5.0),))
    tariff = CapacityTariff(model, STOCKHOLM)
    tariff.history = {"2026-11": 3.0, "2025-11": 9.0}
    tariff.roll(at(2026, 12, 1))
    assert tariff.past() == {"2026-11": 5.0}
    assert "2025-11" not in tariff.history  # 13 months back: forgotten at the month change
    assert CapacityTariff(TariffModel(past=(("2026-11", 5.0),)), STOCKHOLM).past() == {}


def test_a_year_of_months_keeps_eleven_behind_this_one():
    model = TariffModel(60, 1, period="rolling-12")
    tariff = CapacityTariff(model, STOCKHOLM)
    for month in range(1, 13):
        tariff.close(at(2026, month, 10, 12), float(month))
    tariff.close(at(2027, 1, 10, 12), 13.0)
    assert sorted(tariff.past()) == [f"2026-{m:02d}" for m in range(2, 13)]
    assert tariff.average() == pytest.approx(sum(range(2, 14)) / 12)


# -- prices ----------------------------------------------------------------------------------


def test_tier_prices_and_seasons():
    winter, summer = SeasonPrice((100.0, 200.0, 300.0), WINTER), SeasonPrice((50.0, 60.0, 70.0))
    model = TariffModel(60, 1, tiers=(2, 5), prices=(winter, summer))
    assert model.cost(12, 1.0) == 100.0
    assert model.cost(12, 2.0) == 200.0  # at the threshold: the next tier, as tier() says
    assert model.cost(7, 9.0) == 70.0
    per_kw = TariffModel(per_kw=True, prices=(SeasonPrice((111.5,), WINTER),))
    assert per_kw.cost(1, 5.7) == pytest.approx(635.55)  # SEOM's own example
    assert per_kw.cost(6, 5.7) is None  # no summer price given: absent
    with pytest.raises(ValueError, match="price"):
        TariffModel(tiers=(2, 5), prices=(SeasonPrice((1.0, 2.0)),))


# -- combinations ----------------------------------------------------------------------------


@pytest.mark.parametrize("period", ["month", "rolling-12"])
@pytest.mark.parametrize("floor", [0.0, 2.5])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("holidays", [False, True])
def test_weights_holidays_floor_and_rolling_together(period, floor, weighted, holidays):
    model = TariffModel(
        60,
        3,
        True,
        (5, 10),
        months=WINTER,
        period=period,
        floor=floor,
        weights=NIGHT if weighted else (),
        holidays=PublicHolidays("SE", de_facto=True) if holidays else None,
        past=(("2026-11", 6.0),),
    )
    tariff = CapacityTariff(model, STOCKHOLM)
    tariff.close(at(2026, 12, 1, 23), 6.0)  # night: 3 or 6
    tariff.close(at(2026, 12, 2, 12), 2.0)  # a day hour: 2 kWh, under the floor or not
    tariff.close(at(2026, 12, 25, 12), 12.0)  # Christmas: counts only without holidays
    counted = sorted([3.0 if weighted else 6.0, 2.0, *([] if holidays else [12.0])])[::-1]
    month = sum(counted[:3]) / len(counted[:3])
    value = max(floor, month)
    expected = value if period == "month" else (max(floor, 6.0) + value) / 2
    assert tariff.average() == pytest.approx(expected)
    boxing_day = tariff.headroom(at(2026, 12, 26, 12), 0.0)  # annandag jul
    assert (boxing_day is None) == holidays
    start = at(2026, 12, 22, 23)  # a night hour on its own day
    room = tariff.headroom(start, 0.5)
    boundary = tariff.boundary()
    assert room is not None
    assert boundary is not None
    assert spend(tariff, start, 0.5) == pytest.approx(boundary)
    assert tariff.headroom(at(2027, 4, 1, 12), 0.0) is None  # April: outside the months


def test_an_exact_register_after_the_month_s_end_corrects_the_kept_month():
    # The last hour of November closes on the power integral at midnight; the hourly register
    # (list 3) comes a few seconds into December and corrects it.
    tariff = CapacityTariff(TariffModel(60, 1, period="rolling-12"), STOCKHOLM)
    tariff.close(at(2026, 11, 30, 22), 3.0)
    tariff.close(at(2026, 11, 30, 23), 4.0)  # estimated
    tariff.roll(at(2026, 12, 1, 0))
    assert tariff.history == {"2026-11": 4.0}
    tariff.close(at(2026, 11, 30, 23), 4.5)  # exact
    assert tariff.history == {"2026-11": 4.5}
    assert tariff.average() == pytest.approx(4.5 / 2)  # December has nothing yet: 0 so far
    assert tariff.peaks() == []  # December's own record is untouched
    tariff.close(at(2026, 10, 31, 23), 9.0)  # older months are not reopened
    assert tariff.history == {"2026-11": 4.5}


def test_rounding_never_takes_the_floor_s_headroom_away():
    # (2.5 + 3.2 + 2.5) / 3 * 3 - (2.5 + 3.2) is 2.499999999999999 in floats: still the floor.
    past = (("2026-10", 2.5), ("2026-11", 3.2))
    model = TariffModel(15, 1, period="rolling-12", floor=2.5, past=past)
    tariff = CapacityTariff(model, BRUSSELS)
    start = datetime(2026, 12, 1, tzinfo=BRUSSELS)
    tariff.roll(start)
    assert tariff.headroom(start, 0.1) == pytest.approx(0.525)
    # And a mean against the level it came from: the 3rd of three equal days may reach it.
    level = CapacityTariff(TariffModel(60, 3), STOCKHOLM)
    for day, energy in ((1, 0.1), (2, 0.2), (3, 0.3)):
        level.close(at(2026, 12, day, 12), energy + 0.7)
    assert level.headroom(at(2026, 12, 4, 12), 0.0) == pytest.approx(0.8)
