"""The ledger's intervals costed from the price cache: each part at its own price, sums, nulls.

The prices are the recorded hvakosterstrommen day of ``tests/prices`` (NO1, 1 October 2025,
quarters in NOK), kept in a real price cache beside a real ledger table; every expected number is
computed here from the fixture's quarters and the grid rules, not by the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.config import Settings
from han2mqtt.energy.ledger import LedgerInterval
from han2mqtt.history import open_database
from han2mqtt.history.costing import HistoryCosts
from han2mqtt.history.ledger import LedgerStore
from han2mqtt.history.prices import PriceCache
from han2mqtt.prices.areas import area
from han2mqtt.prices.jsonsources import parse_hvakosterstrommen
from han2mqtt.prices.model import DayPrices
from han2mqtt.prices.table import convert, whole_day

FIXTURE = (
    Path(__file__).parents[1] / "prices" / "fixtures" / "hvakosterstrommen_2025-10-01_NO1.json"
)
OSLO = ZoneInfo("Europe/Oslo")
DAY = datetime(2025, 10, 1, tzinfo=OSLO).astimezone(UTC)
MARKUP, DAY_RATE, NIGHT_RATE, TAXES, VAT = 0.05, 0.30, 0.20, 0.07, 0.25
QUARTER_SHARES = (0.1, 0.2, 0.3, 0.4)
"""How each hour's import falls on its quarters: uneven, so quarter prices matter."""


def settings(resolution: int = 60, **prices: Any) -> Settings:
    return Settings.model_validate(
        {
            "meter": {"timezone": "Europe/Oslo"},
            "prices": {
                "source": "hvakosterstrommen",
                "area": "NO1",
                "vat": VAT,
                "markup": MARKUP,
                "resolution": resolution,
                **prices,
            },
            "grid": {
                "energy": [{"price": DAY_RATE, "hours": "06-22"}, {"price": NIGHT_RATE}],
                "taxes": TAXES,
            },
        }
    )


def grid(hour: int) -> float:
    return DAY_RATE if 6 <= hour < 22 else NIGHT_RATE


def spots() -> list[float]:
    return [entry["NOK_per_kWh"] for entry in json.loads(FIXTURE.read_text())]


def hour_kwh(hour: int) -> float:
    return 0.2 + 0.05 * hour


def ledger_day(day: datetime = DAY) -> Iterator[LedgerInterval]:
    for hour in range(24):
        start = day + timedelta(hours=hour)
        for index, share in enumerate(QUARTER_SHARES):
            quarter = start + timedelta(minutes=15 * index)
            yield LedgerInterval("m", quarter, hour_kwh(hour) * share, 0.01, estimated=True)
        yield LedgerInterval("m", start, hour_kwh(hour), 0.04, False, 60)


@pytest.fixture
def store() -> LedgerStore:
    ledger = LedgerStore(open_database(":memory:"), OSLO)
    ledger.migrate()
    ledger.write(ledger_day())
    ledger.write(ledger_day(DAY + timedelta(days=1)))  # 2 October: no prices kept
    return ledger


def keep(store: LedgerStore, currency: str = "NOK", rate: float = 1.0) -> None:
    points = parse_hvakosterstrommen(FIXTURE.read_bytes())
    day = whole_day(area("NO1"), DAY.astimezone(OSLO).date(), "NOK", points)
    if currency != "NOK":
        day = convert(day, currency, rate)
    PriceCache(store.connection).store_day(day, "hvakosterstrommen")


def import_price(spot: float, hour: int) -> float:
    return (spot + MARKUP + grid(hour) + TAXES) * (1 + VAT)


def costs(s: Settings, store: LedgerStore, resolution: str, days: int = 1) -> list[Any]:
    rows = store.read("m", resolution, DAY, DAY + timedelta(days=days))
    found = HistoryCosts.of(s, store)
    assert found is not None
    return found.money(store, "m", resolution, rows)


def test_hourly_prices_cost_each_hour_at_its_mean_and_sum_days_and_months(store: LedgerStore):
    keep(store)
    s = settings(60)
    quarters = spots()
    expected = []
    for hour in range(24):
        mean = fmean(quarters[hour * 4 : hour * 4 + 4])
        expected.append((hour_kwh(hour) * import_price(mean, hour), 0.04 * mean))
    hours = costs(s, store, "hour")
    assert [c for c, _ in hours] == pytest.approx([c for c, _ in expected], rel=1e-12)
    assert [r for _, r in hours] == pytest.approx([r for _, r in expected], rel=1e-12)
    (day,) = costs(s, store, "day")
    assert day[0] == pytest.approx(sum(c for c, _ in expected), rel=1e-12)
    assert day[1] == pytest.approx(sum(r for _, r in expected), rel=1e-12)
    # a quarter with hourly prices: its kWh at its hour's price
    first = costs(s, store, "quarter")[0]
    assert first[0] == pytest.approx(hour_kwh(0) * 0.1 * expected[0][0] / hour_kwh(0), rel=1e-12)


def test_quarter_prices_cost_each_quarter_at_its_own(store: LedgerStore):
    keep(store)
    s = settings(15)
    quarters = spots()
    by_hour = [
        sum(
            hour_kwh(hour) * share * import_price(quarters[hour * 4 + i], hour)
            for i, share in enumerate(QUARTER_SHARES)
        )
        for hour in range(24)
    ]
    hours = costs(s, store, "hour")
    assert [c for c, _ in hours] == pytest.approx(by_hour, rel=1e-12)
    mean_priced = hour_kwh(9) * import_price(fmean(quarters[36:40]), 9)
    assert hours[9][0] != pytest.approx(mean_priced, rel=1e-6)  # the shares matter
    (month,) = costs(s, store, "month")  # 2 October has no prices: the month is not known
    assert month == (None, None)


def test_a_day_without_prices_is_null_never_zero(store: LedgerStore):
    keep(store)
    s = settings(60)
    rows = costs(s, store, "hour", days=2)
    assert len(rows) == 48
    assert all(cost is not None for cost, _ in rows[:24])
    assert all(money == (None, None) for money in rows[24:])
    assert costs(s, store, "day", days=2)[1] == (None, None)


def test_no_price_source_no_costs_and_no_cache_no_costs(store: LedgerStore):
    assert HistoryCosts.of(Settings.model_validate({}), store) is None
    found = HistoryCosts.of(settings(60), store)  # nothing was ever kept: every cost unknown
    assert found is not None
    rows = store.read("m", "hour", DAY, DAY + timedelta(days=1))
    assert found.money(store, "m", "hour", rows) == [(None, None)] * 24


def test_eur_prices_are_converted_at_the_exchange_rate(store: LedgerStore):
    keep(store, "EUR", 1 / 11.5)
    s = settings(60, currency="NOK", exchange_rate=11.5)
    hours = costs(s, store, "hour")
    mean = fmean(spots()[:4])
    assert hours[0][0] == pytest.approx(hour_kwh(0) * import_price(mean, 0), rel=1e-12)
    without = settings(60, currency="NOK")  # no rate given, none cached: not known
    assert costs(without, store, "hour")[0] == (None, None)


def test_hours_whose_quarters_are_gone_are_not_costed_by_quarters(store: LedgerStore):
    keep(store)
    store.connection.execute(
        "DELETE FROM ledger_intervals WHERE resolution = 'quarter' AND start = ?",
        (int((DAY + timedelta(hours=5, minutes=15)).timestamp()),),
    )
    hours = costs(settings(15), store, "hour")
    assert hours[5] == (None, None)  # its parts no longer add up to it
    assert all(cost is not None for cost, _ in hours[:5] + hours[6:])


def test_norgespris_costs_beyond_the_monthly_volume_at_the_full_price(store: LedgerStore):
    keep(store)
    base = settings(60).model_dump()
    base["grid"]["subsidy"] = {"scheme": "norgespris", "norgespris": 0.4, "monthly_kwh": 1.0}
    s = Settings.model_validate(base)
    hours = costs(s, store, "hour")
    quarters = spots()
    used, expected = 0.0, []
    for hour in range(24):
        mean = fmean(quarters[hour * 4 : hour * 4 + 4])
        full = import_price(mean, hour)
        fixed = import_price(0.4, hour)
        inside = min(hour_kwh(hour), max(0.0, 1.0 - used))
        used += hour_kwh(hour)
        expected.append(inside * fixed + (hour_kwh(hour) - inside) * full)
    assert [c for c, _ in hours] == pytest.approx(expected, rel=1e-12)


def test_the_cache_reader_on_a_database_without_prices():
    connection = open_database(":memory:")
    assert PriceCache.reader(connection) is None
    PriceCache(connection).store_day(
        DayPrices("NO1", DAY.date(), "NOK", ()), "fixed"
    )  # migrates and keeps
    assert PriceCache.reader(connection) is not None
