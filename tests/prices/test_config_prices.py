"""The prices and grid settings: what is refused, in one line naming the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from han2mqtt.config import Settings
from han2mqtt.money import currency_of, price_rules
from han2mqtt.prices.grid import Norgespris, Stromstotte


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"source": "entsoe", "area": "NO1"}, "needs prices.token"),
        ({"source": "hvakosterstrommen"}, "needs prices.area"),
        ({"source": "mqtt", "area": "NO1"}, "needs prices.topic"),
        ({"source": "fixed", "area": "NO1"}, "needs prices.fixed"),
        ({"fallback": ["hvakosterstrommen"]}, "fallback needs prices.source"),
        ({"source": "fixed", "fixed": 1, "area": "XX9"}, "unknown bidding zone"),
        ({"url": "ftp://example.org"}, "http:// or https://"),
        ({"urls": {"nordpool": "http://x"}}, "unknown source"),
        ({"resolution": 30}, "60 .hours. or 15"),
        ({"vat": 25}, "less than 1"),
        ({"source": "nordpool"}, "Input should be"),
    ],
)
def test_bad_prices_settings_are_refused(prices, message):
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({"prices": prices})


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"price": 1, "hours": "6-"}, "ranges"),
        ({"price": 1, "hours": ["06-22", "25-26"]}, "ranges"),
        ({"price": 1, "months": [13]}, "1-12"),
        ({"price": 1, "weekdays": ["monday"]}, "Input should be"),
        ({"hours": "06-22"}, "price"),
    ],
)
def test_bad_grid_rules_are_refused(rule, message):
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({"grid": {"energy": [rule]}})


def test_rules_and_subsidies_come_out_as_configured():
    settings = Settings.model_validate(
        {
            "prices": {"source": "fixed", "fixed": 1.0, "area": "SE3", "markup": 0.1, "vat": 0.25},
            "grid": {
                "holidays": "SE",
                "taxes": 0.5,
                "energy": [{"price": 0.9, "hours": ["06-12", "14-22"], "weekdays": ["sat"]}],
                "subsidy": {"scheme": "norgespris", "norgespris": 0.5, "monthly_kwh": 1000},
            },
        }
    )
    assert currency_of(settings) == "SEK"
    rules = price_rules(settings)
    assert (rules.markup, rules.vat, rules.grid.taxes) == (0.1, 0.25, 0.5)
    (rule,) = rules.grid.rules
    assert rule.hours == ((6, 12), (14, 22))
    assert rule.weekdays == frozenset({5})
    assert rules.subsidy == Norgespris(0.5, 1000.0)
    settings = Settings.model_validate({"grid": {"subsidy": {"scheme": "stromstotte"}}})
    assert price_rules(settings).subsidy == Stromstotte(0.75, 0.9)


def test_the_token_is_redacted():
    settings = Settings.model_validate(
        {"prices": {"source": "entsoe", "area": "NO1", "token": "secret-token"}}
    )
    assert settings.redacted()["prices"]["token"] == "**********"
    assert "secret-token" not in repr(settings)
