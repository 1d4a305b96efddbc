"""Each price source's parser, on fixtures in the source's documented format."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from han2mqtt.errors import PriceError, PriceFormatError
from han2mqtt.prices.areas import area
from han2mqtt.prices.ecb import parse_ecb_rates, rate_on
from han2mqtt.prices.entsoe import parse_entsoe
from han2mqtt.prices.jsonsources import (
    parse_elprisetjustnu,
    parse_energidataservice,
    parse_hvakosterstrommen,
    parse_mqtt_prices,
)
from han2mqtt.prices.table import whole_day

FIXTURES = Path(__file__).parent / "fixtures"
NO1 = area("NO1")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_entsoe_a03_fills_the_omitted_quarters_with_the_previous_price():
    points = parse_entsoe(fixture("entsoe_NO1_2025-10-01_PT15M_A03.xml"))
    assert len(points) == 96
    assert {p.minutes for p in points} == {15}
    assert points[0].start == datetime(2025, 9, 30, 22, tzinfo=UTC)
    # positions 3 and 4 are left out: they carry position 2's price
    assert points[1].price == points[2].price == points[3].price
    assert points[0].price == pytest.approx(60.37 / 1000)
    whole_day(NO1, date(2025, 10, 1), "EUR", points)


def test_entsoe_agrees_with_hvakosterstrommen_on_the_same_day():
    """Two sources, two formats, one day: every quarter's EUR price is the same."""
    entsoe = parse_entsoe(fixture("entsoe_NO1_2025-10-01_PT15M_A03.xml"))
    listed = json.loads(fixture("hvakosterstrommen_2025-10-01_NO1.json"))
    assert [p.price for p in entsoe] == pytest.approx([e["EUR_per_kWh"] for e in listed])
    assert [p.start for p in entsoe] == [datetime.fromisoformat(e["time_start"]) for e in listed]


@pytest.mark.parametrize(
    ("name", "day", "quarters"),
    [
        ("entsoe_NO1_2025-10-26_PT15M_A03_dst.xml", date(2025, 10, 26), 100),
        ("entsoe_NO1_2026-03-29_PT15M_A03_dst.xml", date(2026, 3, 29), 92),
        ("entsoe_NO1_2025-10-01_PT15M_A03.xml", date(2025, 10, 1), 96),
    ],
)
def test_entsoe_dst_days_have_92_and_100_quarters(name, day, quarters):
    prices = whole_day(NO1, day, "EUR", parse_entsoe(fixture(name)))
    assert len(prices.points) == quarters


def test_entsoe_hourly_document_with_two_time_series():
    points = parse_entsoe(fixture("entsoe_NO1_2025-09-15_PT60M_A01_two_days.xml"))
    assert len(points) == 48
    assert {p.minutes for p in points} == {60}
    assert len(whole_day(NO1, date(2025, 9, 16), "EUR", points).points) == 24


def test_entsoe_acknowledgement_is_no_data():
    with pytest.raises(PriceError, match="No matching data") as caught:
        parse_entsoe(fixture("entsoe_acknowledgement_no_data.xml"))
    assert not isinstance(caught.value, PriceFormatError)


def _document(curve: str, points: str, resolution: str = "PT15M", end: str = "01:00Z") -> bytes:
    return f"""<Publication_MarketDocument
      xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"><TimeSeries>
      <currency_Unit.name>EUR</currency_Unit.name><price_Measure_Unit.name>MWH</price_Measure_Unit.name>
      <curveType>{curve}</curveType><Period><timeInterval><start>2025-10-01T00:00Z</start>
      <end>2025-10-01T{end}</end></timeInterval><resolution>{resolution}</resolution>{points}
      </Period></TimeSeries></Publication_MarketDocument>""".encode()


def _points(*pairs: tuple[int, float]) -> str:
    return "".join(
        f"<Point><position>{p}</position><price.amount>{v}</price.amount></Point>" for p, v in pairs
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"<Publication_MarketDocument", "malformed XML"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', "DTD"),
        (_document("A01", _points((1, 1), (2, 2), (4, 4))), "A01 with 3 of 4"),
        (_document("A03", _points((2, 1))), "first position"),
        (_document("A03", _points((1, 1), (5, 1))), "out of 1..4"),
        (_document("A03", _points((1, 1), (1, 2))), "repeated"),
        (_document("A03", _points((1, 1)), "PT30M"), "resolution"),
        (_document("A03", _points((1, 1)), end="00:50Z"), "whole number"),
        (_document("A09", _points((1, 1))), "curve type"),
        (_document("A03", _points((1, 1)).replace("1</price", "x</price")), "not a number"),
        (b"<Other/>", "unexpected document"),
    ],
)
def test_entsoe_refuses_broken_documents(document, message):
    with pytest.raises(PriceFormatError, match=message):
        parse_entsoe(document)


def test_entsoe_two_series_with_different_prices_for_one_quarter_are_refused():
    one = _document("A03", _points((1, 10)))
    two = _document("A03", _points((1, 10), (3, 20)))
    doubled = one.replace(b"</Publication_MarketDocument>", b"") + two[two.index(b"<TimeSeries>") :]
    with pytest.raises(PriceFormatError, match="two prices"):
        parse_entsoe(doubled)


def test_energidataservice_day_ahead_prices_in_dkk_per_kwh():
    currency, points = parse_energidataservice(
        fixture("energidataservice_DayAheadPrices_2025-10-01_DK1.json"), "DK1"
    )
    assert currency == "DKK"
    day = whole_day(area("DK1"), date(2025, 10, 1), currency, points)
    assert len(day.points) == 96
    records = json.loads(fixture("energidataservice_DayAheadPrices_2025-10-01_DK1.json"))
    last = records["records"][0]
    assert day.points[-1].price == pytest.approx(last["DayAheadPriceDKK"] / 1000)
    assert parse_energidataservice(b'{"records": []}', "DK1") == ("DKK", ())


def test_energidataservice_falls_back_to_eur_when_dkk_is_missing():
    body = json.dumps(
        {
            "records": [
                {"TimeUTC": "2025-10-01T00:00:00", "PriceArea": "DK2", "DayAheadPriceEUR": 50},
                {"TimeUTC": "2025-10-01T00:15:00", "PriceArea": "DK2", "DayAheadPriceEUR": 60},
                {"TimeUTC": "2025-10-01T00:15:00", "PriceArea": "DK1", "DayAheadPriceEUR": 1},
            ]
        }
    ).encode()
    currency, points = parse_energidataservice(body, "DK2")
    assert currency == "EUR"
    assert [(p.minutes, p.price) for p in points] == [(15, 0.05), (15, 0.06)]


def test_hvakosterstrommen_and_elprisetjustnu_quarters():
    nok = whole_day(
        NO1,
        date(2025, 10, 1),
        "NOK",
        parse_hvakosterstrommen(fixture("hvakosterstrommen_2025-10-01_NO1.json")),
    )
    assert (
        nok.points[0].price
        == json.loads(fixture("hvakosterstrommen_2025-10-01_NO1.json"))[0]["NOK_per_kWh"]
    )
    dst = parse_hvakosterstrommen(fixture("hvakosterstrommen_2025-10-26_NO1.json"))
    assert len(whole_day(NO1, date(2025, 10, 26), "NOK", dst).points) == 100
    sek = parse_elprisetjustnu(fixture("elprisetjustnu_2025-10-01_SE3.json"))
    assert len(whole_day(area("SE3"), date(2025, 10, 1), "SEK", sek).points) == 96


def _entry(price: object, end: str) -> bytes:
    start = "2025-10-01T00:00:00+02:00"
    return json.dumps([{"NOK_per_kWh": price, "time_start": start, "time_end": end}]).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[{", "malformed JSON"),
        (b'{"a": 1}', "list"),
        (b"[1]", "not an object"),
        (b'[{"time_start": "2025-10-01T00:00:00", "time_end": "x"}]', "bad time|offset"),
        (
            _entry("1", "2025-10-01T00:15:00+02:00"),
            "not a number",
        ),
        (
            _entry(1, "2025-10-01T00:20:00+02:00"),
            "20 minutes",
        ),
    ],
)
def test_hvakosterstrommen_refuses_broken_answers(body, message):
    with pytest.raises(PriceFormatError, match=message):
        parse_hvakosterstrommen(body)


def test_a_day_with_a_hole_or_a_double_is_refused_whole():
    points = list(parse_hvakosterstrommen(fixture("hvakosterstrommen_2025-10-01_NO1.json")))
    with pytest.raises(PriceFormatError, match="missing"):
        whole_day(NO1, date(2025, 10, 1), "NOK", points[:40] + points[41:])
    with pytest.raises(PriceFormatError, match="repeated"):
        whole_day(NO1, date(2025, 10, 1), "NOK", [*points, points[7]])
    with pytest.raises(PriceFormatError, match="end"):
        whole_day(NO1, date(2025, 10, 1), "NOK", points[:-1])


def test_ecb_rates_daily_and_history():
    daily = parse_ecb_rates(fixture("ecb_eurofxref-daily.xml"))
    assert daily == {date(2025, 10, 1): pytest.approx(daily[date(2025, 10, 1)])}
    assert daily[date(2025, 10, 1)]["NOK"] == 11.7045
    history = parse_ecb_rates(fixture("ecb_eurofxref-hist-90d.xml"))
    assert rate_on(history, "SEK", date(2025, 10, 2)) == 11.0395
    assert rate_on(history, "NOK", date(2025, 10, 5)) == 11.7320  # a Sunday: Friday's rate
    assert rate_on(history, "NOK", date(2025, 9, 30)) is None
    assert rate_on(history, "NOK", date(2025, 10, 9), timedelta(days=6)) == 11.7320
    assert rate_on(history, "NOK", date(2025, 10, 10), timedelta(days=6)) is None  # stale
    with pytest.raises(PriceFormatError):
        parse_ecb_rates(b"<gesmes:Envelope/>")


def test_mqtt_prices_a_list_or_the_price_now():
    now = datetime(2025, 10, 1, 10, 7, tzinfo=UTC)
    (point,) = parse_mqtt_prices(b"1.25", now, 15)
    assert (point.start, point.minutes, point.price) == (now.replace(minute=0), 15, 1.25)
    body = json.dumps(
        [
            {"start": "2025-10-01T12:00:00+02:00", "price": 0.5},
            {"start": "2025-10-01T13:00:00+02:00", "price": 0.75},
        ]
    ).encode()
    points = parse_mqtt_prices(body, now, 15)
    assert [(p.start.hour, p.minutes, p.price) for p in points] == [(10, 60, 0.5), (11, 60, 0.75)]
    for bad in (b"[]", b'"x"', b'[{"start": "2025-10-01T12:00:00", "price": 1}]', b"true"):
        with pytest.raises(PriceFormatError):
            parse_mqtt_prices(bad, now, 15)
    assert (points[1].end - points[0].start) == timedelta(hours=2)


def test_the_prices_package_is_sans_io():
    """prices/ never imports asyncio, aiohttp, paho, pydantic or the configuration."""
    code = (
        "import sys, han2mqtt.prices; "
        "print([m for m in sys.modules if m.split('.')[0] in "
        "('asyncio', 'aiohttp', 'paho', 'pydantic') or m == 'han2mqtt.config'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
