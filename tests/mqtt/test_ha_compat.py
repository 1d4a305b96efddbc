"""Every discovery message must be accepted by the oldest Home Assistant with device discovery.

Device-based MQTT discovery (``<prefix>/device/<id>/config``) arrived in Home Assistant 2024.12.
A sensor whose ``device_class`` that release does not know is rejected with an error in its log
(``reactive_energy`` arrived only in 2025.6); a unit or state class that does not fit the device
class gets the entity flagged.  The lists below are Home Assistant 2024.12's
(``homeassistant/components/sensor/const.py`` of release 2024.12: ``SensorDeviceClass``,
``SensorStateClass``, ``DEVICE_CLASS_UNITS``, ``DEVICE_CLASS_STATE_CLASSES``), written down as data.
Units are listed conservatively (units added in 2024 releases are left out where unsure), which
makes the check stricter, not looser.
"""

from __future__ import annotations

import json

from han2mqtt.config import HomeAssistantSettings, MqttSettings
from han2mqtt.meters.normalize import _FIELDS
from han2mqtt.model import MeterReading
from han2mqtt.money import GAS_MONEY_FIELDS, MONEY_FIELDS
from han2mqtt.mqtt.discovery import DERIVED_CLASSES, discovery_messages

HA_2024_12_DEVICE_CLASSES = frozenset(
    {
        "date",
        "enum",
        "timestamp",
        "apparent_power",
        "aqi",
        "atmospheric_pressure",
        "battery",
        "carbon_monoxide",
        "carbon_dioxide",
        "current",
        "data_rate",
        "data_size",
        "distance",
        "duration",
        "energy",
        "energy_storage",
        "frequency",
        "gas",
        "humidity",
        "illuminance",
        "irradiance",
        "moisture",
        "monetary",
        "nitrogen_dioxide",
        "nitrogen_monoxide",
        "nitrous_oxide",
        "ozone",
        "ph",
        "pm1",
        "pm10",
        "pm25",
        "power_factor",
        "power",
        "precipitation",
        "precipitation_intensity",
        "pressure",
        "reactive_power",
        "signal_strength",
        "sound_pressure",
        "speed",
        "sulphur_dioxide",
        "temperature",
        "volatile_organic_compounds",
        "volatile_organic_compounds_parts",
        "voltage",
        "volume",
        "volume_flow_rate",
        "volume_storage",
        "water",
        "weight",
        "wind_speed",
    }
)
HA_2024_12_STATE_CLASSES = frozenset({"measurement", "total", "total_increasing"})
HA_2024_12_UNITS: dict[str, frozenset[str | None]] = {
    "energy": frozenset({"J", "kJ", "MJ", "GJ", "Wh", "kWh", "MWh", "cal", "kcal", "Mcal", "Gcal"}),
    "gas": frozenset({"m³", "ft³", "CCF"}),
    "water": frozenset({"L", "gal", "m³", "ft³", "CCF"}),
    "power": frozenset({"W", "kW", "BTU/h"}),
    "reactive_power": frozenset({"var"}),
    "apparent_power": frozenset({"VA"}),  # UnitOfApparentPower in 2024.12: VA only
    "current": frozenset({"A", "mA"}),
    "voltage": frozenset({"V", "mV"}),
    "power_factor": frozenset({"%", None}),
    "timestamp": frozenset({None}),
    "date": frozenset({None}),
    "enum": frozenset({None}),
    # monetary: any ISO 4217 code (HA checks it against its currency list); ours:
    "monetary": frozenset({"NOK", "SEK", "DKK", "EUR"}),
}
HA_2024_12_STATE_CLASSES_BY_DEVICE_CLASS: dict[str, frozenset[str]] = {
    "energy": frozenset({"total", "total_increasing"}),
    "gas": frozenset({"total", "total_increasing"}),
    "water": frozenset({"total", "total_increasing"}),
    "power": frozenset({"measurement"}),
    "reactive_power": frozenset({"measurement"}),
    "apparent_power": frozenset({"measurement"}),
    "current": frozenset({"measurement"}),
    "voltage": frozenset({"measurement"}),
    "power_factor": frozenset({"measurement"}),
    "timestamp": frozenset(),
    "date": frozenset(),
    "enum": frozenset(),
    "monetary": frozenset({"total"}),
}


def _everything() -> MeterReading:
    """A reading with every normalized field (every quantity we know) and an unnamed object."""
    fields: dict[str, int | float | str] = {}
    obis: dict[str, int | float | str] = {"1-0:99.99.0.255": 7}
    field_obis: dict[str, str] = {}
    for (c, d, e), (name, quantity) in _FIELDS.items():
        code = f"1-0:{c}.{d}.{e}.255"
        value: int | str = "text" if quantity.kind == "text" else 1
        fields[name], obis[code], field_obis[name] = value, value, code
    return MeterReading(fields, obis, {"1-0:99.99.0.255": "Wh"}, field_obis, "test")


def _sub_meters() -> list[MeterReading]:
    """A gas, a water and a heat meter (in GJ and in kWh) behind a P1 port."""
    return [
        MeterReading(
            {"meter_id": f"S{n}", "meter_type": kind, field: 1.5},
            {code: 1.5},
            {code: unit},
            {field: code},
            "p1-mbus",
            parent="7359992890941742",
        )
        for n, (kind, field, code, unit) in enumerate(
            [
                ("gas", "gas_total", "0-1:24.2.1.255", "m³"),
                ("water", "water_total", "0-2:24.2.1.255", "m³"),
                ("heat", "heat_total", "0-3:24.2.1.255", "GJ"),
                ("heat", "heat_total", "0-4:24.2.1.255", "kWh"),
            ]
        )
    ]


def test_sub_meter_totals_are_home_assistant_2024_12s_for_the_energy_dashboard():
    for reading in _sub_meters():
        for mode in ("device", "entity"):
            messages = discovery_messages(
                str(reading.meter_id), reading, MqttSettings(), HomeAssistantSettings(mode=mode)
            )
            payloads = [json.loads(m.payload) for m in messages]
            components = list(payloads[0]["cmps"].values()) if mode == "device" else payloads
            (total,) = [c for c in components if c.get("stat_cla") == "total_increasing"]
            device_class = total["dev_cla"]
            assert device_class in HA_2024_12_DEVICE_CLASSES
            assert total["unit_of_meas"] in HA_2024_12_UNITS[device_class]
            assert total["unit_of_meas"] == next(iter(reading.units.values()))
            assert all(p["dev"]["via_device"] == "han2mqtt_7359992890941742" for p in payloads)


def _components(mode: str) -> list[dict[str, object]]:
    messages = discovery_messages(
        "7359992890941742",
        _everything(),
        MqttSettings(),
        HomeAssistantSettings(mode=mode),
        derived=sorted({*DERIVED_CLASSES, *MONEY_FIELDS, *GAS_MONEY_FIELDS}),
        currency="NOK",
    )
    if mode == "device":
        return list(json.loads(messages[0].payload)["cmps"].values())
    return [json.loads(message.payload) for message in messages]


def test_every_class_unit_and_state_class_is_home_assistant_2024_12s():
    for mode in ("device", "entity"):
        components = _components(mode)
        assert len(components) > 60
        for component in components:
            device_class = component.get("dev_cla")
            unit = component.get("unit_of_meas")
            state_class = component.get("stat_cla")
            where = component["uniq_id"]
            assert state_class is None or state_class in HA_2024_12_STATE_CLASSES, where
            if device_class is None:
                continue
            assert device_class in HA_2024_12_DEVICE_CLASSES, where
            assert unit in HA_2024_12_UNITS[device_class], where
            allowed = HA_2024_12_STATE_CLASSES_BY_DEVICE_CLASS[device_class]
            assert state_class is None or state_class in allowed, where


def test_reactive_energy_has_kvarh_and_no_device_class():
    reactive = [c for c in _components("device") if c.get("unit_of_meas") == "kvarh"]
    assert len(reactive) == 28  # import and export: the total, 10 tariffs, 3 phases
    for component in reactive:
        assert "dev_cla" not in component
        assert component["stat_cla"] == "total_increasing"


def test_prices_are_currency_per_kwh_without_a_class_and_costs_monetary_totals():
    by_name = {str(c["stat_t"]).rsplit("/", 1)[-1]: c for c in _components("device")}
    price = by_name["price_import"]
    assert "dev_cla" not in price
    assert price["unit_of_meas"] == "NOK/kWh"
    costs = ("cost_hour", "cost_last_hour", "cost_today", "cost_month", "revenue_month")
    for name in (*costs, "cost_gas_today", "cost_gas_month"):
        component = by_name[name]
        assert (component["dev_cla"], component["stat_cla"], component["unit_of_meas"]) == (
            "monetary",
            "total",
            "NOK",
        ), name
    assert by_name["cost_last_hour_start"]["dev_cla"] == "timestamp"
