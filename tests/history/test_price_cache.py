from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from han2mqtt.errors import StateError
from han2mqtt.history import open_database, schema_version
from han2mqtt.history.prices import PriceCache
from han2mqtt.prices.areas import area
from han2mqtt.prices.ecb import parse_ecb_rates, rate_on
from han2mqtt.prices.entsoe import parse_entsoe
from han2mqtt.prices.table import whole_day

FIXTURES = Path(__file__).parents[1] / "prices" / "fixtures"


def test_a_day_survives_a_reopen_exactly(tmp_path: Path) -> None:
    points = parse_entsoe((FIXTURES / "entsoe_NO1_2025-10-26_PT15M_A03_dst.xml").read_bytes())
    day = whole_day(area("NO1"), date(2025, 10, 26), "EUR", points)
    PriceCache(open_database(tmp_path / "h.sqlite")).store_day(day, "entsoe")
    cache = PriceCache(open_database(tmp_path / "h.sqlite"))
    assert schema_version(cache.connection, "prices") == 1
    assert cache.load_day("NO1", date(2025, 10, 26)) == (day, "entsoe")
    assert cache.load_day("NO1", date(2025, 10, 27)) is None
    assert cache.load_day("NO2", date(2025, 10, 26)) is None


def test_rates_and_cost_energy_survive_a_reopen(tmp_path: Path) -> None:
    rates = parse_ecb_rates((FIXTURES / "ecb_eurofxref-hist-90d.xml").read_bytes())
    PriceCache(open_database(tmp_path / "h.sqlite")).store_rates(rates)
    cache = PriceCache(open_database(tmp_path / "h.sqlite"))
    assert rate_on(cache.rates("NOK"), "NOK", date(2025, 10, 2)) == 11.7130
    since = datetime(2025, 10, 1, 0, tzinfo=UTC)
    energy = {datetime(2025, 10, 1, h, tzinfo=UTC): (h / 3, 0.0) for h in range(3)}
    cache.store_energy("m1", since, energy)
    cache.store_energy("m1", since, dict(list(energy.items())[:2]))
    assert cache.load_energy("m1") == (since, dict(list(energy.items())[:2]))
    assert cache.load_energy("m2") is None


def test_damaged_rows_are_a_state_error(tmp_path: Path) -> None:
    cache = PriceCache(open_database(tmp_path / "h.sqlite"))
    cache.connection.execute(
        "INSERT INTO price_days VALUES ('NO1', '2025-10-01', 'NOK', 'x', '[[\"bad\", 15, 1]]')"
    )
    with pytest.raises(StateError, match="damaged"):
        cache.load_day("NO1", date(2025, 10, 1))
