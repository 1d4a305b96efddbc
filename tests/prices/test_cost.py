"""The price table's resolutions, the grid rules, the subsidies and the cost sums."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import fmean
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt.energy.calendar import PublicHolidays
from han2mqtt.prices.areas import area
from han2mqtt.prices.cost import CostAccumulator, PriceRules, Pricing
from han2mqtt.prices.grid import EnergyRule, GridRates, Norgespris, Stromstotte, parse_hours
from han2mqtt.prices.jsonsources import parse_hvakosterstrommen
from han2mqtt.prices.model import DayPrices, PricePoint
from han2mqtt.prices.table import PriceTable, convert, whole_day

FIXTURES = Path(__file__).parent / "fixtures"
NO1 = area("NO1")
OSLO = ZoneInfo("Europe/Oslo")
DAY = date(2025, 10, 1)


def oct_first() -> DayPrices:
    body = (FIXTURES / "hvakosterstrommen_2025-10-01_NO1.json").read_bytes()
    return whole_day(NO1, DAY, "NOK", parse_hvakosterstrommen(body))


def table(resolution: int, *days: DayPrices) -> PriceTable:
    prices = PriceTable(NO1, "NOK", resolution)
    for day in days or (oct_first(),):
        prices.add(day)
    return prices


def local(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=OSLO)


def test_resolution_60_is_the_mean_of_the_hours_quarters_and_15_each_quarter():
    day = oct_first()
    hourly, quarterly = table(60), table(15)
    for hour in range(24):
        quarters = [p.price for p in day.points[hour * 4 : hour * 4 + 4]]
        for minute in (0, 14, 15, 59):
            assert hourly.spot(local(hour, minute)) == pytest.approx(fmean(quarters))
        assert [quarterly.spot(local(hour, m)) for m in (0, 15, 30, 45)] == quarters
    assert hourly.spot(local(0, day=date(2025, 10, 2))) is None
    assert len(hourly.intervals(DAY)) == 24
    assert len(quarterly.intervals(DAY)) == 96


def test_an_hourly_day_prices_its_quarters_alike_and_dst_days_count_right():
    start = datetime(2025, 10, 25, 22, tzinfo=UTC)  # 26 October: 25 local hours
    points = [PricePoint(start + timedelta(hours=h), 60, h / 10) for h in range(25)]
    day = whole_day(NO1, date(2025, 10, 26), "NOK", points)
    quarterly = table(15, day)
    assert len(quarterly.intervals(date(2025, 10, 26))) == 100
    assert quarterly.spot(start + timedelta(hours=2, minutes=45)) == 0.2
    assert len(table(60, day).intervals(date(2025, 10, 26))) == 25


def test_a_replaced_day_changes_the_version_and_the_prices():
    prices = table(60)
    before = prices.version
    prices.add(convert(oct_first(), "NOK", 2.0))
    assert prices.version == before + 1
    assert prices.spot(local(12)) == pytest.approx(2 * (table(60).spot(local(12)) or 0))
    with pytest.raises(ValueError, match="expected NOK"):
        prices.add(convert(oct_first(), "EUR", 1.0))


NORWAY = GridRates(
    rules=(
        EnergyRule(0.3604, hours=((6, 22),), weekdays=frozenset(range(5)), holidays=False),
        EnergyRule(0.2804),
    ),
    taxes=0.0713,
    calendar=PublicHolidays("NO"),
)


@pytest.mark.parametrize(
    ("moment", "rate"),
    [
        (local(6), 0.3604),  # Wednesday day
        (local(5, 45), 0.2804),  # night
        (local(22), 0.2804),
        (local(12, day=date(2025, 10, 4)), 0.2804),  # Saturday
        (local(12, day=date(2025, 12, 25)), 0.2804),  # Christmas Day, a Thursday
        (local(12, day=date(2025, 12, 23)), 0.3604),  # an ordinary Tuesday
    ],
)
def test_norwegian_day_night_weekend_and_holiday_rates(moment, rate):
    assert NORWAY.energy(moment) == rate


def test_danish_seasons_and_wrapping_hours_first_match_wins():
    winter, summer = frozenset({10, 11, 12, 1, 2, 3}), frozenset(range(4, 10))
    rules = GridRates(
        rules=(
            EnergyRule(0.15, hours=(parse_hours("00-06"),)),
            EnergyRule(1.35, hours=(parse_hours("17-21"),), months=winter),
            EnergyRule(0.52, hours=(parse_hours("17-21"),), months=summer),
            EnergyRule(0.45, hours=(parse_hours("06-17"), parse_hours("21-24")), months=winter),
            EnergyRule(0.23, months=summer),
        )
    )
    assert rules.energy(local(18, day=date(2025, 1, 8))) == 1.35
    assert rules.energy(local(18, day=date(2025, 7, 8))) == 0.52
    assert rules.energy(local(3, day=date(2025, 7, 8))) == 0.15
    assert rules.energy(local(22, day=date(2025, 1, 8))) == 0.45
    assert rules.energy(local(22, day=date(2025, 7, 8))) == 0.23
    night = GridRates(rules=(EnergyRule(1.0, hours=(parse_hours("22-06"),)),))
    assert night.energy(local(23)) == night.energy(local(2)) == 1.0
    assert night.energy(local(12)) is None  # no rule matches: not known
    assert GridRates().energy(local(12)) == 0.0
    with pytest.raises(ValueError, match="ranges"):
        parse_hours("6")


def test_price_import_is_spot_plus_markup_grid_taxes_minus_subsidy_times_vat():
    prices = table(60)
    rules = PriceRules(markup=0.05, export_markup=-0.02, vat=0.25, grid=NORWAY)
    price = Pricing(prices, rules).at(local(8, 20))
    assert price is not None
    spot = prices.spot(local(8))
    assert spot is not None
    assert price.spot == spot
    assert price.import_ == pytest.approx((spot + 0.05 + 0.3604 + 0.0713) * 1.25)
    assert price.export == pytest.approx(spot - 0.02)
    assert Pricing(prices, rules).at(local(8, day=date(2025, 10, 2))) is None


def test_stromstotte_pays_90_percent_of_the_hour_mean_above_the_threshold():
    high = convert(oct_first(), "NOK", 3.0)  # raise the spot above 0.75
    for resolution in (15, 60):
        prices = table(resolution, high)
        rules = PriceRules(vat=0.25, subsidy=Stromstotte(threshold=0.75, share=0.9))
        price = Pricing(prices, rules).at(local(18, 30))
        assert price is not None
        mean = prices.hour_mean(local(18))
        assert mean is not None
        assert mean > 0.75
        expected = (price.spot - 0.9 * (mean - 0.75)) * 1.25
        assert price.import_ == pytest.approx(expected)
    cheap = Pricing(table(60), PriceRules(subsidy=Stromstotte(threshold=2.0))).at(local(3))
    assert cheap is not None
    assert cheap.import_ == cheap.spot  # below the threshold: nothing


def test_norgespris_fixes_the_spot_up_to_the_monthly_volume():
    prices = table(60)
    rules = PriceRules(vat=0.25, subsidy=Norgespris(price=0.40, monthly_kwh=10.0))
    pricing = Pricing(prices, rules)
    price = pricing.at(local(12))
    assert price is not None
    assert price.import_ == pytest.approx(0.40 * 1.25)
    assert price.import_beyond == pytest.approx(price.spot * 1.25)
    costs = CostAccumulator(pricing, local(0))
    costs.add(local(12), 8.0, 0.0)
    costs.add(local(13), 4.0, 0.0)  # 2 within the volume, 2 beyond
    totals = costs.totals(local(14))
    later = pricing.at(local(13))
    assert later is not None
    assert later.import_beyond is not None
    expected = 8 * 0.5 + 2 * 0.5 + 2 * later.import_beyond
    assert totals.cost_today == pytest.approx(expected)


def test_each_closed_hour_costs_its_energy_times_its_price():
    pricing = Pricing(table(60), PriceRules(markup=0.1, vat=0.25, grid=NORWAY))
    costs = CostAccumulator(pricing, local(0))
    for minute in range(0, 24 * 60, 5):  # 0.1 kWh every 5 minutes, 0.02 exported
        costs.add(local(minute // 60, minute % 60), 0.1, 0.02)
    totals = costs.totals(local(23, 59))
    expected_hours = []
    for hour in range(24):
        price = pricing.at(local(hour))
        assert price is not None
        assert price.import_ is not None
        expected_hours.append(1.2 * price.import_)
    assert totals.cost_today == pytest.approx(sum(expected_hours))
    assert totals.cost_month == totals.cost_today
    assert totals.cost_hour == pytest.approx(expected_hours[23])
    assert totals.cost_last_hour == pytest.approx(expected_hours[22])
    assert totals.cost_last_hour_start == local(22)
    spots = [pricing.at(local(h)) for h in range(24)]
    assert totals.revenue_today == pytest.approx(sum(0.24 * p.export for p in spots if p))


def test_a_cost_is_absent_when_a_price_or_the_energy_before_the_start_is_not_known():
    pricing = Pricing(PriceTable(NO1, "NOK", 60), PriceRules())
    costs = CostAccumulator(pricing, local(10, 30))
    costs.add(local(11), 1.0, 0.0)
    totals = costs.totals(local(12, 5))
    assert totals.cost_last_hour is None  # no price for 11:00
    assert totals.cost_hour == 0  # nothing used yet this hour: known, and 0
    assert totals.cost_today is None  # the day's energy is only known since 10:30
    pricing.table.add(oct_first())  # the prices arrive late: the energy is costed after all
    later = costs.totals(local(12, 6))
    spot = pricing.table.spot(local(11))
    assert later.cost_last_hour == spot
    assert later.cost_today is None
    assert CostAccumulator(pricing, local(0)).totals(local(12)).cost_last_hour is None


def test_a_late_increment_for_a_closed_hour_is_counted():
    pricing = Pricing(table(15), PriceRules())
    costs = CostAccumulator(pricing, local(0))
    costs.add(local(10), 1.0, 0.0)
    first = costs.totals(local(11, 1)).cost_today
    costs.add(local(10, 45), 1.0, 0.0)  # the ledger closes 10:45-11:00 after 11:00
    second = costs.totals(local(11, 2)).cost_today
    assert first is not None
    assert second == pytest.approx(first + (pricing.table.spot(local(10, 45)) or 0))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 24 * 60 - 1), st.floats(0, 5), st.floats(0, 5)),
        max_size=60,
    )
)
def test_the_sums_do_not_depend_on_the_order_of_the_increments(increments):
    pricing = Pricing(table(15), PriceRules(vat=0.25, grid=NORWAY))
    forward, backward = CostAccumulator(pricing, local(0)), CostAccumulator(pricing, local(0))
    for minute, imported, exported in increments:
        forward.add(local(minute // 60, minute % 60), imported, exported)
    for minute, imported, exported in reversed(increments):
        backward.add(local(minute // 60, minute % 60), imported, exported)
    end = local(23, 59)
    a, b = forward.totals(end), backward.totals(end)
    assert a.cost_today == pytest.approx(b.cost_today)
    assert a.revenue_today == pytest.approx(b.revenue_today)
    expected = 0.0
    for minute, imported, _ in increments:
        price = pricing.at(local(minute // 60, minute % 60))
        assert price is not None
        assert price.import_ is not None
        expected += imported * price.import_
    assert a.cost_today == pytest.approx(expected)


@pytest.mark.parametrize("resolution", [15, 60])
def test_a_settled_hour_costs_exactly_its_register_energy_times_its_price(resolution):
    pricing = Pricing(table(resolution), PriceRules(vat=0.25, grid=NORWAY))
    costs = CostAccumulator(pricing, local(9).replace(second=30))
    for minute in range(0, 60, 10):
        costs.add(local(9, minute), 0.31, 0.0)  # the estimate: 1.86 kWh
    costs.settle(local(9), 2.173)
    totals = costs.totals(local(10).replace(second=5))
    if resolution == 60:
        price = pricing.at(local(9))
        assert price is not None
        assert price.import_ is not None
        assert totals.cost_last_hour == 2.173 * price.import_  # exact: one product
    else:
        quarter = [pricing.at(local(9, m)) for m in (0, 15, 30, 45)]
        shares = [2 / 6, 1 / 6, 2 / 6, 1 / 6]  # the estimate's frames per quarter
        expected = sum(
            2.173 * s * (q.import_ or 0) for s, q in zip(shares, quarter, strict=True) if q
        )
        assert totals.cost_last_hour == pytest.approx(expected)
    assert totals.cost_today is None  # 00:00-09:00 was never seen
    assert costs.complete_since == local(9)


def test_forgotten_days_leave_the_others_alone():
    prices = table(15)
    second = convert(oct_first(), "NOK", 1.0)
    shifted = tuple(
        PricePoint(p.start + timedelta(days=1), p.minutes, p.price) for p in second.points
    )
    prices.add(DayPrices("NO1", date(2025, 10, 2), "NOK", shifted))
    prices.forget_before(date(2025, 10, 2))
    assert not prices.has(DAY)
    assert prices.spot(local(12)) is None
    assert prices.hour_mean(local(12)) is None
    assert prices.spot(local(12, day=date(2025, 10, 2))) == oct_first().points[48].price
    assert len(prices.intervals(date(2025, 10, 2))) == 96
