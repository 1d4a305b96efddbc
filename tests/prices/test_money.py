"""The money stage: the engine's values in, money fields out; persisted across restarts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.config import Settings
from han2mqtt.model import FieldValue
from han2mqtt.money import Money, area_prices_message
from han2mqtt.prices.areas import area
from han2mqtt.prices.jsonsources import parse_hvakosterstrommen
from han2mqtt.prices.table import PriceTable, whole_day

FIXTURES = Path(__file__).parent / "fixtures"
OSLO = ZoneInfo("Europe/Oslo")
DAY = date(2025, 10, 1)
SETTINGS = Settings.model_validate(
    {
        "prices": {"source": "hvakosterstrommen", "area": "NO1", "vat": 0.25, "markup": 0.05},
        "grid": {"energy": [{"price": 0.3, "hours": "06-22"}, {"price": 0.2}], "taxes": 0.07},
    }
)


def table() -> PriceTable:
    body = (FIXTURES / "hvakosterstrommen_2025-10-01_NO1.json").read_bytes()
    prices = PriceTable(area("NO1"), "NOK", 60)
    prices.add(whole_day(area("NO1"), DAY, "NOK", parse_hvakosterstrommen(body)))
    return prices


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 10, 1, hour, minute, second, tzinfo=OSLO)


def frame(moment: datetime, hour_kwh: float, **more: FieldValue) -> dict[str, FieldValue]:
    return {"meter_time": moment.isoformat(), "energy_import_hour": hour_kwh, **more}


def closing(moment: datetime, kwh: float) -> dict[str, FieldValue]:
    start = (moment - timedelta(hours=1)).replace(minute=0, second=0).isoformat()
    return frame(moment, 0.0, energy_import_last_hour=kwh, energy_import_last_hour_start=start)


def test_the_fields_of_a_priced_hour_and_what_is_wanted():
    wanted: list[tuple[date, bool]] = []
    money = Money(SETTINGS, table(), want=lambda d, ahead: wanted.append((d, ahead)))
    values = money.values("m", frame(at(10, 0, 10), 0.01), at(10, 0, 10))
    spot = money.pricing.table.spot(at(10))
    assert spot is not None
    assert values["price_spot"] == spot
    assert values["price_import"] == pytest.approx((spot + 0.05 + 0.3 + 0.07) * 1.25)
    assert values["cost_hour"] == pytest.approx(0.01 * float(str(values["price_import"])))
    assert "cost_today" not in values  # started at 10:00: the day's energy is not known whole
    assert "revenue_today" not in values  # no export counted: not known
    assert wanted == [(DAY, False)]
    money.values("m", frame(at(13, 5), 0.2), at(13, 5))
    assert wanted[-1] == (DAY + timedelta(days=1), True)


def test_a_closed_hour_costs_its_register_energy_and_survives_a_restart():
    saved: dict[str, tuple[datetime, dict[datetime, tuple[float, float]]]] = {}

    def persist(meter: str, since: datetime, energy: dict[datetime, tuple[float, float]]) -> None:
        saved[meter] = (since, energy)

    money = Money(SETTINGS, table(), persist=persist)
    for minute in range(0, 60, 10):
        money.values("m", frame(at(10, minute, 10), 0.3 * (minute + 10) / 60), at(10, minute))
    values = money.values("m", closing(at(11, 0, 5), 2.5), at(11, 0, 5))
    price = money.pricing.at(at(10))
    assert price is not None
    assert price.import_ is not None
    assert values["cost_last_hour"] == 2.5 * price.import_
    assert values["cost_last_hour_start"] == at(10).isoformat()
    assert "m" in saved

    restarted = Money(SETTINGS, table(), restore=saved.get)
    again = restarted.values("m", frame(at(11, 20), 0.7), at(11, 20))
    assert again["cost_last_hour"] == values["cost_last_hour"]
    later = Money(SETTINGS, table(), restore=saved.get)  # an hour went by unseen
    assert "cost_last_hour" not in later.values("m", frame(at(12, 20), 0.7), at(12, 20))


def test_the_area_message_lists_todays_intervals():
    money = Money(SETTINGS, table())
    message = area_prices_message("han2mqtt", money.pricing, (DAY, DAY + timedelta(days=1)))
    assert message is not None
    assert message.topic == "han2mqtt/prices/NO1"
    assert message.retain
    assert message.payload.count('"start"') == 24
    empty = PriceTable(area("NO1"), "NOK", 60)
    assert area_prices_message("h", Money(SETTINGS, empty).pricing, (DAY,)) is None


def test_a_bug_in_the_money_stage_costs_the_money_fields_not_the_reading(caplog):
    from han2mqtt.bridge import Bridge, PrintPublisher  # noqa: PLC0415
    from tests.web.conftest import AIDON  # noqa: PLC0415

    def broken_restore(_meter: str) -> None:
        raise ZeroDivisionError  # a bug met on the meter's first reading

    printed: list[str] = []
    bridge = Bridge(SETTINGS, PrintPublisher("han2mqtt", printed.append))
    bridge.money = Money(SETTINGS, table(), restore=broken_restore)
    for content in AIDON:
        bridge.handle_content(content, datetime(2026, 1, 15, 12, tzinfo=OSLO))
    assert any("/state" in line and "active_power_import" in line for line in printed)
    assert bridge.internal_errors == 3
    assert sum("money stage" in r.message for r in caplog.records) == 1


def test_a_clock_going_back_across_the_hour_counts_nothing_twice():
    money = Money(SETTINGS, table())
    money.values("m", frame(at(10, 59, 50), 1.0), at(10, 59, 50))
    money.values("m", frame(at(11, 0, 10), 0.02), at(11, 0, 10))
    money.values("m", frame(at(10, 59, 55), 1.01), at(10, 59, 55))  # a resynced clock
    values = money.values("m", frame(at(11, 0, 20), 0.03), at(11, 0, 20))
    price = money.pricing.at(at(11))
    assert price is not None
    assert price.import_ is not None
    assert values["cost_hour"] == pytest.approx(0.03 * price.import_)


def quarter_table() -> PriceTable:
    body = (FIXTURES / "hvakosterstrommen_2025-10-01_NO1.json").read_bytes()
    prices = PriceTable(area("NO1"), "NOK", 15)
    prices.add(whole_day(area("NO1"), DAY, "NOK", parse_hvakosterstrommen(body)))
    return prices


def quarters_of(hour: int, kwh: tuple[float, ...], *, estimated: bool = False) -> list[Any]:
    from han2mqtt.energy.ledger import LedgerInterval  # noqa: PLC0415

    return [
        LedgerInterval("m", at(hour, 15 * i).astimezone(UTC), k, 0.0, estimated)
        for i, k in enumerate(kwh)
    ]


def test_quarter_prices_cost_the_ledgers_quarters_and_never_change_a_closed_hour():
    settings = SETTINGS.model_copy(
        update={"prices": SETTINGS.prices.model_copy(update={"resolution": 15})}
    )
    money = Money(settings, quarter_table())

    def price(hour: int, minute: int) -> float:
        found = money.pricing.at(at(hour, minute))
        assert found is not None
        assert found.import_ is not None
        return found.import_

    # The live counter sees the hour's 1.0 kWh evenly; the ledger knows 0.1/0.2/0.3/0.4.
    shares = (0.1, 0.2, 0.3, 0.4)
    for minute in range(0, 60, 5):
        money.values("m", frame(at(10, minute, 1), (minute + 5) / 60), at(10, minute, 1))
        if minute in (15, 30, 45):  # the ledger closes the quarter before
            index = minute // 15 - 1
            closed = quarters_of(10, shares[: index + 1])[index:]
            live = money.values(
                "m", frame(at(10, minute, 2), (minute + 5) / 60), at(10, minute, 2), closed
            )
            known = sum(shares[i] * price(10, 15 * i) for i in range(index + 1))
            running = (5 / 60) * price(10, minute)
            assert live["cost_hour"] == pytest.approx(known + running, rel=1e-9)
    values = money.values("m", closing(at(11, 0, 5), 1.0), at(11, 0, 5), quarters_of(10, shares))
    expected = sum(k * price(10, 15 * i) for i, k in enumerate(shares))
    assert values["cost_last_hour"] == pytest.approx(expected, rel=1e-12)
    evenly = sum(0.25 * price(10, 15 * i) for i in range(4))
    assert values["cost_last_hour"] != pytest.approx(evenly, rel=1e-6)  # the split mattered
    # The ledger re-closing the hour later (a repeated list) changes nothing closed.
    late = money.values(
        "m", closing(at(11, 2, 5), 1.0), at(11, 2, 5), quarters_of(10, (0.4, 0.3, 0.2, 0.1))
    )
    assert late["cost_last_hour"] == values["cost_last_hour"]
