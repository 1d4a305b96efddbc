"""The status page's history views (``/history``) over a real database, by HTTP and in Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from han2mqtt.history.ledger import Retention
from han2mqtt.history.writer import HistoryWriter
from tests.history.test_ledger_store import OSLO, day_of_hours, utc
from tests.web.chromium import CHROMIUM, Chromium
from tests.web.conftest import Page, make_settings

LOADED = "document.readyState === 'complete'"
"""A navigation has finished parsing (not only begun: a section may come before its table)."""


@pytest.fixture
async def history_page(page_factory: Any, tmp_path: Path) -> Page:
    """A page whose state directory holds two October days, one hour of them estimated."""
    state = tmp_path / "state"
    writer = HistoryWriter(state / "history.sqlite", OSLO, Retention())
    writer.open()
    writer.submit(day_of_hours(utc(2026, 10, 25), estimated=frozenset({2})))  # 02:00+01:00
    writer.submit(day_of_hours(utc(2026, 10, 26), 0.25))
    writer.close()
    settings = make_settings(meter={"timezone": "Europe/Oslo"}, state={"dir": str(state)})
    made: Page = await page_factory(settings)
    return made


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr( class=\"est\")?><td>", body)


async def test_a_day_has_its_25_hours_with_quarters_on_demand(history_page: Page):
    response = await history_page.get("/history?view=day&date=2026-10-25")
    html = await response.text()
    assert response.status == 200
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert len(_rows(html)) == 25
    assert html.count("<details>") == 25
    assert "02:00 +02:00" in html
    assert "02:00 +01:00" in html
    assert _rows(html)[2] == ' class="est"'  # the repeated hour's second occurrence
    assert html.count('<table class="quarters">') == 25
    assert "<script" not in html
    assert 'rel="prev" href="/history?view=day&amp;date=2026-10-24' in html
    assert 'rel="up" href="/history?view=month&amp;date=2026-10' in html
    assert "<td>12.500</td>" in html  # the day's total import


async def test_month_and_year_views_link_down(history_page: Page):
    month = await (await history_page.get("/history?view=month&date=2026-10")).text()
    assert len(_rows(month)) == 2
    assert 'href="/history?view=day&amp;date=2026-10-25&amp;meter=m"' in month
    year = await (await history_page.get("/history?view=year&date=2026")).text()
    assert len(_rows(year)) == 1
    assert 'href="/history?view=month&amp;date=2026-10&amp;meter=m"' in year
    empty = await (await history_page.get("/history?view=day&date=2026-11-25")).text()
    assert "No intervals in this period" in empty


@pytest.mark.parametrize(
    "query",
    ["view=week", "view=day&date=2026-13-01", "view=month&date=2026", "view=year&date=26",
     "view=day&view=day", "colour=red", "meter=nobody"],
)  # fmt: skip
async def test_bad_parameters_are_400(history_page: Page, query: str):
    response = await history_page.get(f"/history?{query}")
    assert response.status == 400


async def test_no_database_yet(page_factory: Any, tmp_path: Path):
    settings = make_settings(state={"dir": str(tmp_path / "empty")})
    page = await page_factory(settings)
    response = await page.get("/history")
    assert response.status == 200
    assert "No history yet" in await response.text()


async def _click(browser: Chromium, selector: str) -> None:
    """Click the first ``selector`` once the page has it (a navigation may still be loading)."""
    found = json.dumps(selector)
    await browser.wait_for(
        f"(() => {{ const e = document.querySelector({found}); if (e) e.click(); return !!e; }})()"
    )


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test.sh)")
async def test_navigating_the_views_in_chromium(history_page: Page, tmp_path: Path):
    profile = tmp_path / "profile"
    profile.mkdir()
    async with Chromium(profile) as browser:
        await browser.open(history_page.url + "/")
        await _click(browser, 'footer a[href="/history"]')
        await browser.wait_for(f"{LOADED} && location.pathname === '/history'")
        await browser.open(history_page.url + "/history?view=year&date=2026")
        await browser.wait_for(f"{LOADED} && location.search.includes('year')")
        await _click(browser, "tbody a")
        await browser.wait_for(f"{LOADED} && document.querySelector('[data-view=month]') !== null")
        await _click(browser, "tbody a")
        await browser.wait_for(f"{LOADED} && document.querySelector('[data-view=day]') !== null")
        assert (
            await browser.evaluate("document.querySelectorAll('table.ledger > tbody > tr').length")
            == 25
        )
        bars = "document.querySelectorAll('svg[data-ledger-bars] rect')"
        assert await browser.evaluate(f"{bars}.length") == 25
        assert await browser.evaluate(f"{bars}[2].getAttribute('class')") == "est"
        quarters = "document.querySelector('details table.quarters')"
        assert not await browser.evaluate(f"{quarters}.checkVisibility()")
        await _click(browser, "details summary")
        assert await browser.evaluate(f"{quarters}.checkVisibility()")
        assert await browser.evaluate(f"{quarters}.querySelectorAll('tr').length") == 4
        await _click(browser, "a[rel=next]")
        await browser.wait_for(
            f"{LOADED} && document.querySelector('h2').textContent.startsWith('2026-10-26')"
        )
        rows = "document.querySelectorAll('table.ledger > tbody > tr').length"
        assert await browser.evaluate(rows) == 24


async def test_the_views_show_cost_from_the_cached_prices(page_factory: Any, tmp_path: Path):
    """A fixed price kept for 25 October only: its hours and day are costed, 26 October is not."""
    from han2mqtt.history import open_database  # noqa: PLC0415
    from han2mqtt.history.prices import PriceCache  # noqa: PLC0415
    from han2mqtt.prices.areas import area  # noqa: PLC0415
    from han2mqtt.prices.table import fixed_day  # noqa: PLC0415

    state = tmp_path / "state"
    writer = HistoryWriter(state / "history.sqlite", OSLO, Retention())
    writer.open()
    writer.submit(day_of_hours(utc(2026, 10, 25)))  # 0.5 kWh an hour, 25 hours
    writer.submit(day_of_hours(utc(2026, 10, 26), 0.25))
    writer.close()
    connection = open_database(state / "history.sqlite")
    day = fixed_day(area("NO1"), utc(2026, 10, 25).astimezone(OSLO).date(), "NOK", 1.2)
    PriceCache(connection).store_day(day, "entsoe")
    connection.close()
    settings = make_settings(
        meter={"timezone": "Europe/Oslo"},
        state={"dir": str(state)},
        prices={"source": "entsoe", "token": "t", "area": "NO1", "vat": 0.25},
    )
    page: Page = await page_factory(settings)
    html = await (await page.get("/history?view=day&date=2026-10-25")).text()
    assert "<th>Cost NOK</th>" in html
    assert html.count("<td>0.75</td>") == 25  # 0.5 kWh × 1.2 × 1.25 each hour
    assert "<td>18.75</td>" in html  # the day
    month = await (await page.get("/history?view=month&date=2026-10")).text()
    assert "<td>18.75</td>" in month
    assert month.count("<td>—</td>") == 4  # 26 October has no price: cost, revenue, totals
    assert "<th>Revenue NOK</th>" in html
    assert html.count("<td>0.05</td>") == 25  # 0.04 kWh exported × 1.2 (no VAT on export)


async def test_gas_is_shown_beside_electricity_and_costed_on_its_own_page(
    page_factory: Any, tmp_path: Path
):
    from han2mqtt.energy.ledger import LedgerInterval  # noqa: PLC0415

    state = tmp_path / "state"
    writer = HistoryWriter(state / "history.sqlite", OSLO, Retention())
    writer.open()
    writer.submit(day_of_hours(utc(2026, 10, 26)))
    gas = [
        LedgerInterval("G1", utc(2026, 10, 26, hour), 0.1 * hour, None, False, 60, "gas")
        for hour in range(24)
    ]
    writer.submit(gas)
    writer.close()
    settings = make_settings(
        meter={"timezone": "Europe/Oslo"}, state={"dir": str(state)}, prices={"gas": 2.0}
    )
    page: Page = await page_factory(settings)
    html = await (await page.get("/history?view=day&date=2026-10-26")).text()
    assert 'data-meter="m"' in html  # the electricity meter is the default beside its gas meter
    assert "<th>Gas m³</th>" in html
    assert "<td>2.300</td>" in html  # the gas meter's 23:00 hour, beside the electricity's
    assert "<td>27.600</td>" in html  # the gas day's total
    own = await (await page.get("/history?view=day&date=2026-10-26&meter=G1")).text()
    assert "<th>Gas m³</th><th>Export</th><th>Cost EUR</th><th>Revenue EUR</th>" in own
    assert "<td>4.60</td>" in own  # 2.3 m³ × 2.0
    api = await (await page.get("/api/history?resolution=day&from=2026-10-26&meter=G1")).json()
    assert (api["unit"], api["currency"]) == ("m³", "EUR")
    assert api["intervals"][0]["cost"] == pytest.approx(27.6 * 2.0)
    default = await (await page.get("/api/history?resolution=day&from=2026-10-26")).json()
    assert (default["meter"], default["unit"]) == ("m", "kWh")
