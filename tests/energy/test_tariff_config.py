"""The ``tariff:`` section's rule keys: what they become, what they refuse, what they publish."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from pydantic import ValidationError

from han2mqtt.bridge import tariff_model
from han2mqtt.config import HomeAssistantSettings, MqttSettings, Settings, TariffSettings
from han2mqtt.energy import SeasonPrice, Weight
from han2mqtt.energy.state import TARIFF_VERSION
from han2mqtt.errors import StateError
from han2mqtt.model import MeterReading
from han2mqtt.mqtt.discovery import discovery_messages
from tests.energy.test_bridge_energy import BASE, _bridge, _feed, _hour


def test_every_rule_key_reaches_the_model():
    settings = TariffSettings(
        preset="custom",
        period="rolling-12",
        floor=1.5,
        weights=[
            {"hours": "22-24", "factor": 0.5},
            {"hours": ["00-06"], "weekdays": ["sat"], "months": [1], "factor": 0.25},
        ],
        holidays=False,
        price_per_kw=[{"months": [11, 12, 1, 2, 3], "price": 111.5}, {"price": 55.75}],
        currency="SEK",
        past={"2026-11": 4.5, "2026-10": 3.0},
    )
    model = tariff_model(settings, "SE")
    assert model is not None
    assert (model.period, model.floor, model.per_kw) == ("rolling-12", 1.5, True)
    assert model.weights == (
        Weight(0.5, ((22, 24),)),
        Weight(0.25, ((0, 6),), frozenset({5}), frozenset({1})),
    )
    assert model.holidays is not None
    assert model.holidays.country == "SE"
    assert model.prices == (
        SeasonPrice((111.5,), frozenset({11, 12, 1, 2, 3})),
        SeasonPrice((55.75,)),
    )
    assert model.past == (("2026-10", 3.0), ("2026-11", 4.5))
    plain = tariff_model(TariffSettings(preset="no", prices=list(range(10)), currency="NOK"))
    assert plain is not None
    assert plain.prices == (SeasonPrice(tuple(float(n) for n in range(10))),)
    assert not plain.per_kw
    assert plain.holidays is None  # holidays count unless tariff.holidays is false


def test_the_be_preset_is_fluvius_rule():
    model = tariff_model(TariffSettings(preset="be"))
    assert model is not None
    assert (model.window, model.peaks, model.floor, model.period) == (15, 1, 2.5, "rolling-12")


@pytest.mark.parametrize(
    ("tariff", "grid", "message"),
    [
        ({"preset": "no", "prices": [1] * 10}, {}, "currency"),
        ({"preset": "no", "prices": [1] * 3, "currency": "NOK"}, {}, "10 prices"),
        (
            {"preset": "custom", "tiers": [2], "prices": [{"months": [1], "prices": [1]}]},
            {},
            "currency",
        ),
        (
            {"preset": "custom", "prices": [1], "price_per_kw": 2, "currency": "SEK"},
            {},
            "not both",
        ),
        (
            {"preset": "custom", "price_per_kw": [{"months": [1]}], "currency": "SEK"},
            {},
            "price",
        ),
        ({"preset": "custom", "holidays": False}, {}, "grid.holidays"),
        ({"preset": "custom", "past": {"2026-13": 1}}, {}, "past"),
        ({"preset": "custom", "past": {"2026-01": -1}}, {}, "past"),
        ({"preset": "custom", "floor": -1}, {}, "floor"),
        ({"preset": "custom", "period": "year"}, {}, "period"),
        ({"preset": "custom", "weights": [{"hours": "22-06", "factor": 0.5}]}, {}, "hours"),
        ({"preset": "custom", "weights": [{"hours": "22-24", "factor": 0}]}, {}, "factor"),
        ({"preset": "custom", "weights": [{"hours": "22-24"}]}, {}, "factor"),
        ({"period": "month"}, {}, "needs tariff.preset"),
    ],
)
def test_rule_keys_refuse_what_they_cannot_mean(tariff, grid, message):
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({"tariff": tariff, "grid": grid})


def test_the_capacity_cost_is_published_and_announced_as_money():
    bridge, printed = _bridge(
        tariff={"preset": "no", "prices": [100 * n for n in range(1, 11)], "currency": "NOK"}
    )
    _hour(bridge, 10, 10_000)  # 3.6 kWh: tier 2-5
    _feed(bridge, datetime(2024, 5, 6, 11, 0, 5), 3600, (10_360, 0))  # noqa: DTZ001
    fields = {t: p for t, p, _ in printed.messages()}
    assert fields[f"{BASE}/tariff_tier"] == "2-5"
    assert fields[f"{BASE}/tariff_capacity_cost"] == "200.0"
    discovery = [p for t, p, _ in printed.messages() if t.startswith("homeassistant/device/")]
    cost = json.loads(discovery[-1])["cmps"]["tariff_capacity_cost"]
    assert (cost["dev_cla"], cost["stat_cla"], cost["unit_of_meas"]) == ("monetary", "total", "NOK")


def test_without_prices_there_is_no_capacity_cost():
    bridge, printed = _bridge(tariff={"preset": "no"})
    _hour(bridge, 10, 10_000)
    _feed(bridge, datetime(2024, 5, 6, 11, 0, 5), 3600, (10_360, 0))  # noqa: DTZ001
    assert not [t for t, _, _ in printed.messages() if t.endswith("tariff_capacity_cost")]


def test_the_state_keeps_the_closed_months_and_loads_an_older_tariff_part():
    bridge, _ = _bridge(tariff={"preset": "be"})
    _hour(bridge, 10, 10_000)
    saved = json.loads(bridge.energy_state())
    (meter,) = saved["meters"].values()
    assert meter["tariff"]["version"] == TARIFF_VERSION
    meter["tariff"]["months"] = {"2024-04": 3.25}
    restarted, _ = _bridge(tariff={"preset": "be"})
    restarted.restore_energy(json.dumps(saved).encode())
    (engine,) = restarted._engines.values()
    assert engine.tariff is not None
    assert engine.tariff.history == {"2024-04": 3.25}
    del meter["tariff"]["version"], meter["tariff"]["months"]  # as version 1 wrote it
    older, _ = _bridge(tariff={"preset": "be"})
    older.restore_energy(json.dumps(saved).encode())
    (engine,) = older._engines.values()
    assert engine.tariff is not None
    assert engine.tariff.history == {}
    assert engine.tariff.days  # the month's windows load as before


def test_a_damaged_month_in_the_tariff_part_is_a_state_error():
    bridge, _ = _bridge(tariff={"preset": "be"})
    _hour(bridge, 10, 10_000)
    saved = json.loads(bridge.energy_state())
    (meter,) = saved["meters"].values()
    for months in ({"2024-4": 1.0}, {"2024-04": "1"}, ["2024-04"]):
        meter["tariff"]["months"] = months
        restarted, _ = _bridge(tariff={"preset": "be"})
        with pytest.raises(StateError):
            restarted.restore_energy(json.dumps(saved).encode())


def test_money_without_a_currency_is_never_announced():
    reading = MeterReading({}, {}, {}, {}, "test")
    for currency, announced in ((None, False), ("EUR", True)):
        (message,) = discovery_messages(
            "1",
            reading,
            MqttSettings(),
            HomeAssistantSettings(),
            derived=["tariff_capacity_cost", "tariff_tier"],
            currency=currency,
        )
        components = json.loads(message.payload)["cmps"]
        assert ("tariff_capacity_cost" in components) is announced
        assert "tariff_tier" in components
