"""The price fetcher against a real local HTTP server answering in the sources' formats."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from han2mqtt.config import Settings
from han2mqtt.history import open_database
from han2mqtt.history.prices import PriceCache
from han2mqtt.io.prices import PUBLIC_URLS, PriceFetcher, request_for
from han2mqtt.prices.areas import area
from han2mqtt.prices.entsoe import parse_entsoe
from han2mqtt.prices.jsonsources import parse_hvakosterstrommen
from han2mqtt.prices.table import PriceTable
from tests.prices.server import FIXTURES, PriceServer, price_server

DAY = date(2025, 10, 1)
ECB_NOK = 11.7045  # the fixture's rate for 2025-10-01


def settings(server: PriceServer, **prices: object) -> Settings:
    values: dict[str, object] = {
        "source": "entsoe",
        "token": "test-token",
        "area": "NO1",
        "url": f"{server.base}/entsoe/api",
        "urls": {"hvakosterstrommen": f"{server.base}/hks", "ecb": f"{server.base}/ecb.xml"},
        "fallback": ["hvakosterstrommen"],
        "resolution": 15,
    }
    values.update(prices)
    return Settings.model_validate({"prices": values})


async def fetch(config: Settings, day: date = DAY, cache: PriceCache | None = None) -> PriceFetcher:
    table = PriceTable(area("NO1"), "NOK", config.prices.resolution)
    fetcher = PriceFetcher(
        config, table, cache, timeout=aiohttp.ClientTimeout(total=2, sock_read=1)
    )
    fetcher.want(day)
    task = asyncio.create_task(fetcher.run())
    for _ in range(200):
        if table.has(day) or fetcher.faults:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return fetcher


async def test_entsoe_in_eur_is_converted_at_the_ecb_rate_of_the_day():
    async with price_server() as server:
        fetcher = await fetch(settings(server))
    day = fetcher.table.day(DAY)
    assert day is not None
    eur = parse_entsoe((FIXTURES / "entsoe_NO1_2025-10-01_PT15M_A03.xml").read_bytes())
    assert [p.price for p in day.points] == pytest.approx([p.price * ECB_NOK for p in eur])
    assert fetcher.faults == {}
    assert any("periodStart=202509302200" in r for r in server.requests)


async def test_a_fixed_exchange_rate_is_used_instead_of_the_ecb():
    async with price_server() as server:
        fetcher = await fetch(settings(server, exchange_rate=10.0))
    assert not any(r.startswith("/ecb") for r in server.requests)
    spot = fetcher.table.day(DAY)
    assert spot is not None
    assert spot.points[0].price == pytest.approx(0.06037 * 10.0)


async def test_the_fallback_serves_the_day_when_the_primary_answers_503(caplog):
    caplog.set_level(logging.INFO)
    async with price_server(PriceServer(status={"/entsoe": 503})) as server:
        fetcher = await fetch(settings(server))
    day = fetcher.table.day(DAY)
    assert day is not None
    nok = parse_hvakosterstrommen((FIXTURES / "hvakosterstrommen_2025-10-01_NO1.json").read_bytes())
    assert [p.price for p in day.points] == [p.price for p in nok]
    assert fetcher.faults == {"http_5xx": 1}
    assert sum("entsoe failed" in r.message for r in caplog.records) == 1


async def test_a_wrong_token_is_one_clear_line_naming_the_setting(caplog):
    async with price_server() as server:
        fetcher = await fetch(settings(server, token="wrong", fallback=[]))
    assert not fetcher.table.has(DAY)
    assert fetcher.faults == {"http_401": 1}
    errors = [r.message for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["prices: entsoe refuses the request (HTTP 401): check prices.token"]
    assert all("wrong" not in r.message for r in caplog.records)  # the token is never logged


@pytest.mark.parametrize(
    ("server", "fault"),
    [
        (PriceServer(huge={"/entsoe"}), "too_large"),
        (PriceServer(slow={"/entsoe"}), "timeout"),
        (PriceServer(entsoe_days={"2025-10-01": "ecb_eurofxref-daily.xml"}), "malformed"),
    ],
)
async def test_faults_are_counted_and_the_fallback_still_serves(server, fault):
    async with price_server(server) as running:
        fetcher = await fetch(settings(running))
    assert fetcher.faults == {fault: 1}
    assert fetcher.table.has(DAY)


async def test_a_day_without_data_fails_alone_and_is_retried_later():
    async with price_server() as server:
        fetcher = await fetch(settings(server, fallback=[]), day=date(2025, 10, 2))
    assert not fetcher.table.has(date(2025, 10, 2))
    assert fetcher.status()["days_pending"] == 1


async def test_a_cached_day_needs_no_server(tmp_path: Path):
    cache = PriceCache(open_database(tmp_path / "history.sqlite"))
    async with price_server() as server:
        first = await fetch(settings(server), cache=cache)
        config = settings(server)
    assert first.table.has(DAY)
    again = await fetch(config, cache=PriceCache(open_database(tmp_path / "history.sqlite")))
    assert again.table.day(DAY) == first.table.day(DAY)


@pytest.mark.parametrize(
    ("source", "url", "query"),
    [
        (
            "entsoe",
            "https://web-api.tp.entsoe.eu/api",
            {
                "documentType": "A44",
                "in_Domain": "10YNO-1--------2",
                "out_Domain": "10YNO-1--------2",
                "periodStart": "202510252200",  # the autumn DST day: 25 hours
                "periodEnd": "202510262300",
                "securityToken": "tok",
            },
        ),
        (
            "hvakosterstrommen",
            "https://www.hvakosterstrommen.no/api/v1/prices/2025/10-26_NO1.json",
            {},
        ),
        ("elprisetjustnu", "https://www.elprisetjustnu.se/api/v1/prices/2025/10-26_NO1.json", {}),
    ],
)
def test_one_request_per_delivery_day(source, url, query):
    assert request_for(source, PUBLIC_URLS[source], area("NO1"), date(2025, 10, 26), "tok") == (
        url,
        query,
    )


def test_energidataservice_asks_around_the_day_for_its_area():
    url, query = request_for(
        "energidataservice", PUBLIC_URLS["energidataservice"], area("DK1"), DAY, None
    )
    assert url == "https://api.energidataservice.dk/dataset/DayAheadPrices"
    assert query["start"] == "2025-09-30"
    assert query["end"] == "2025-10-03"
    assert query["filter"] == '{"PriceArea":["DK1"]}'


async def test_energidataservice_keeps_the_days_own_quarters_in_dkk():
    async with price_server() as server:
        config = Settings.model_validate(
            {"prices": {"source": "energidataservice", "area": "DK1", "url": f"{server.base}/eds"}}
        )
        table = PriceTable(area("DK1"), "DKK", 15)
        fetcher = PriceFetcher(config, table)
        fetcher.want(DAY)
        task = asyncio.create_task(fetcher.run())
        for _ in range(200):
            if table.has(DAY) or fetcher.faults:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    day = table.day(DAY)
    assert day is not None
    assert len(day.points) == 96
    assert fetcher.faults == {}
    assert any("PriceArea" in r for r in server.requests)


def test_prices_from_mqtt_are_kept_in_the_cache_for_the_history():
    config = Settings.model_validate(
        {"prices": {"source": "mqtt", "topic": "nordpool/prices", "area": "NO1"}}
    )
    cache = PriceCache(open_database(":memory:"))
    table = PriceTable(area("NO1"), "NOK", 60)
    fetcher = PriceFetcher(config, table, cache)
    now = datetime(2025, 10, 1, 10, 20, tzinfo=ZoneInfo("Europe/Oslo"))
    fetcher.on_mqtt(b'[{"start": "2025-10-01T10:00:00+02:00", "price": 1.25}]', now)
    fetcher.on_mqtt(b"1.5", now.replace(hour=11))
    kept = cache.load_day("NO1", DAY)
    assert kept is not None
    day, source = kept
    assert source == "mqtt"
    assert [p.price for p in day.points] == [1.25, 1.5]  # both messages merged
