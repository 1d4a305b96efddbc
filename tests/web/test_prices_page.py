"""The status page with the money stage: the price curve and the costs, over real HTTP."""

from __future__ import annotations

import re
from datetime import timedelta

from han2mqtt.money import Money
from han2mqtt.prices.areas import area
from han2mqtt.prices.model import DayPrices, PricePoint
from han2mqtt.prices.table import PriceTable, day_bounds
from tests.web.conftest import AIDON, AIDON_ID, T0, make_settings


async def test_the_page_shows_the_price_curve_with_the_interval_now_and_the_costs(page_factory):
    settings = make_settings(
        prices={"source": "fixed", "fixed": 1.0, "area": "NO1", "vat": 0.25},
    )
    page = await page_factory(settings)
    table = PriceTable(area("NO1"), "NOK", 60)
    page.bridge.money = Money(settings, table)
    page.feed(AIDON)  # list 3 sets the meter clock
    assert page.bridge.money.latest is not None
    today = page.bridge.money.latest.astimezone(table.area.zone).date()
    start, end = day_bounds(table.area, today)
    hours = int((end - start) / timedelta(hours=1))
    points = tuple(PricePoint(start + timedelta(hours=h), 60, 0.5 + h / 100) for h in range(hours))
    table.add(DayPrices("NO1", today, "NOK", points))
    page.feed(AIDON, start=T0 + timedelta(seconds=10))

    state = await page.json("/api/state")
    prices = state["prices"]
    assert prices["currency"] == "NOK"
    assert len(prices["intervals"]) == hours
    now = [i for i in prices["intervals"] if i["start"] == prices["now"]]
    assert len(now) == 1
    derived = state["meters"][AIDON_ID]["derived"]
    assert derived["price_spot"] == now[0]["spot"]
    assert derived["price_import"] == now[0]["spot"] * 1.25

    html = await (await page.get("/")).text()
    assert '<section class="card prices"><h2>Spot prices NO1' in html
    assert len(re.findall(r'<rect class="now" x="[^"]*" y="[^"]*" width="[^"]*" height', html)) >= 1
    assert re.search(r'<div class="costs" data-need="[^"]*">', html)  # shown
    assert '<b data-v="price_import" data-dp="4">' in html


async def test_without_prices_there_is_no_price_card(page):
    page.feed(AIDON)
    html = await (await page.get("/")).text()
    assert "Spot prices" not in html
    assert (await page.json("/api/state"))["prices"] is None
    assert re.search(r'<div class="costs" data-need="[^"]*" hidden>', html)
