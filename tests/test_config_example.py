"""config.example.yaml documents every key, with the real defaults, and loads as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from han2mqtt.config import EnergyRuleSettings, Settings, TariffWeight, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"

pytestmark = [pytest.mark.usefixtures("config_environment_cleared")]


def _leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    found: dict[tuple[str, ...], Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            found.update(_leaves(value, (*prefix, key)))
        else:
            found[(*prefix, key)] = value
    return found


def _model_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    keys: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _model_keys(annotation, (*prefix, name))
        else:
            keys.add((*prefix, name))
    return keys


def _value(settings: Settings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for part in path:
        value = getattr(value, part)
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def test_every_setting_is_documented_and_nothing_else():
    documented = set(_leaves(yaml.safe_load(EXAMPLE.read_text())))
    assert documented == _model_keys(Settings)


def test_the_example_loads_and_states_the_true_defaults():
    settings = load_settings(EXAMPLE)
    defaults = Settings.model_validate({})
    for path, documented in _leaves(yaml.safe_load(EXAMPLE.read_text())).items():
        assert _value(settings, path) == documented or str(_value(settings, path)) == str(
            documented
        ), path
        assert _value(defaults, path) == _value(settings, path), path


@pytest.mark.parametrize(
    ("path", "raw", "expected"),
    [
        (("source", "type"), "tcp", "tcp"),
        (("source", "device"), "/dev/ttyAMA0", "/dev/ttyAMA0"),
        (("source", "baudrate"), "115200", 115200),
        (("source", "parity"), "E", "E"),
        (("source", "bytesize"), "7", 7),
        (("source", "stopbits"), "2", 2),
        (("source", "host"), "192.0.2.7", "192.0.2.7"),
        (("source", "port"), "8899", 8899),
        (("source", "format"), "hdlc", "hdlc"),
        (("source", "format"), "tic", "tic"),
        (("source", "watchdog"), "30", 30),
        (("source", "reconnect_min"), "2", 2),
        (("source", "reconnect_max"), "120", 120),
        (("source", "connect_timeout"), "10", 10),
        (("source", "octet_stuffing"), "true", True),
        (("source", "demo_interval"), "0.5", 0.5),
        (("source", "demo_speed"), "1440", 1440.0),
        (("source", "demo_hours"), "3", 3.0),
        (("source", "topic"), "ams/+/raw", "ams/+/raw"),
        (("source", "payload"), "base64", "base64"),
        (("source", "shared_group"), "h2m", "h2m"),
        (("source", "mqtt_host"), "relays", "relays"),
        (("source", "mqtt_port"), "1884", 1884),
        (("source", "mqtt_username"), "reader", "reader"),
        (("source", "mqtt_password"), "pw", "pw"),
        (("source", "max_topics"), "50", 50),
        (("source", "path"), "/tmp/a.rec", Path("/tmp/a.rec")),
        (("source", "speed"), "max", "max"),
        (("meter", "type"), "kaifa", "kaifa"),
        (("meter", "offline_after"), "30", 30),
        (("meter", "max_meters"), "5", 5),
        (("meter", "id"), "house", "house"),
        (("meter", "encryption_key"), "00" * 16, "00" * 16),
        (("meter", "authentication_key"), "11" * 16, "11" * 16),
        (("mqtt", "host"), "broker", "broker"),
        (("mqtt", "port"), "8883", 8883),
        (("mqtt", "username"), "meter", "meter"),
        (("mqtt", "password"), "pw", "pw"),
        (("mqtt", "client_id"), "h2m-1", "h2m-1"),
        (("mqtt", "base_topic"), "home/meter", "home/meter"),
        (("mqtt", "qos"), "1", 1),
        (("mqtt", "retain", "state"), "true", True),
        (("mqtt", "retain", "fields"), "true", True),
        (("mqtt", "retain", "obis"), "true", True),
        (("mqtt", "tls", "enabled"), "true", True),
        (("mqtt", "tls", "ca_certs"), "/etc/ssl/ca.pem", Path("/etc/ssl/ca.pem")),
        (("mqtt", "tls", "certfile"), "/c.pem", Path("/c.pem")),
        (("mqtt", "tls", "keyfile"), "/k.pem", Path("/k.pem")),
        (("mqtt", "tls", "insecure"), "true", True),
        (("mqtt", "protocol"), "5", "5"),
        (("mqtt", "keepalive"), "30", 30),
        (("mqtt", "queue_size"), "50", 50),
        (("homeassistant", "discovery"), "false", False),
        (("homeassistant", "prefix"), "ha", "ha"),
        (("homeassistant", "mode"), "entity", "entity"),
        (("publish", "state"), "false", False),
        (("publish", "fields"), "true", True),
        (("publish", "obis"), "false", False),
        (("publish", "info_interval"), "10", 10),
        (("log", "level"), "DEBUG", "DEBUG"),
        (("health", "heartbeat_file"), "/tmp/beat", Path("/tmp/beat")),
        (("health", "max_age"), "300", 300),
        (("web", "enabled"), "false", False),
        (("web", "host"), "::1", "::1"),
        (("web", "port"), "8099", 8099),
        (("web", "username"), "me", "me"),
        (("web", "password"), "s3cret", "s3cret"),
        (("meter", "timezone"), "Europe/Oslo", "Europe/Oslo"),
        (("meter", "max_power"), "17.3", 17.3),
        (("meter", "main_fuse"), "25", 25),
        (("meter", "energy_resolution"), "1", 1),
        (("tariff", "preset"), "no", "no"),
        (("tariff", "window"), "15", 15),
        (("tariff", "peaks"), "3", 3),
        (("tariff", "distinct_days"), "true", True),
        (("tariff", "tiers"), "[2, 5, 10]", [2, 5, 10]),
        (("tariff", "hours"), '["06-22"]', ["06-22"]),
        (("tariff", "months"), "[11, 12, 1]", [11, 12, 1]),
        (("tariff", "weekdays"), '["mon", "fri"]', ["mon", "fri"]),
        (("tariff", "period"), "rolling-12", "rolling-12"),
        (("tariff", "floor"), "2.5", 2.5),
        (
            ("tariff", "weights"),
            '[{"hours": "22-24", "factor": 0.5}]',
            [TariffWeight(hours=["22-24"], factor=0.5)],
        ),
        (("tariff", "holidays"), "true", True),
        (("tariff", "prices"), "[100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]", None),
        (("tariff", "price_per_kw"), "81.25", 81.25),
        (("tariff", "currency"), "SEK", "SEK"),
        (("tariff", "past"), '{"2026-01": 3.4}', {"2026-01": 3.4}),
        (("grid", "holidays"), "no", "NO"),
        (("meter", "max_gas_flow"), "6", 6.0),
        (
            ("grid", "energy"),
            '[{"price": 0.3, "hours": "06-22"}]',
            [EnergyRuleSettings(price=0.3, hours="06-22")],
        ),
        (("grid", "taxes"), "0.0713", 0.0713),
        (("grid", "subsidy", "scheme"), "norgespris", "norgespris"),
        (("grid", "subsidy", "threshold"), "0.77", 0.77),
        (("grid", "subsidy", "share"), "0.9", 0.9),
        (("grid", "subsidy", "norgespris"), "0.5", 0.5),
        (("grid", "subsidy", "monthly_kwh"), "1000", 1000),
        (("prices", "source"), "hvakosterstrommen", "hvakosterstrommen"),
        (("prices", "fallback"), '["elprisetjustnu"]', ["elprisetjustnu"]),
        (("prices", "area"), "no1", "NO1"),
        (("prices", "currency"), "EUR", "EUR"),
        (("prices", "resolution"), "15", 15),
        (("prices", "token"), "tok-en", "tok-en"),
        (("prices", "url"), "http://127.0.0.1:8000/api", "http://127.0.0.1:8000/api"),
        (("prices", "urls"), '{"ecb": "http://e/x"}', {"ecb": "http://e/x"}),
        (("prices", "topic"), "nordpool/prices", "nordpool/prices"),
        (("prices", "fixed"), "1.5", 1.5),
        (("prices", "markup"), "0.05", 0.05),
        (("prices", "export_markup"), "-0.02", -0.02),
        (("prices", "vat"), "0.25", 0.25),
        (("prices", "exchange_rate"), "11.5", 11.5),
        (("prices", "gas"), "1.42", 1.42),
        (("state", "dir"), "/var/lib/h2m", Path("/var/lib/h2m")),
        (("history", "enabled"), "false", False),
        (("history", "retention", "quarter"), "30", 30),
        (("history", "retention", "hour"), "365", 365),
        (("history", "retention", "day"), "3650", 3650),
        (("history", "retention", "month"), "7300", 7300),
    ],
)
def test_every_key_can_be_set_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, path, raw, expected
):
    monkeypatch.setenv("HAN2MQTT_" + "__".join(p.upper() for p in path), raw)
    if path == ("source", "type"):
        monkeypatch.setenv("HAN2MQTT_SOURCE__HOST", "h")
        monkeypatch.setenv("HAN2MQTT_SOURCE__PORT", "1")
    if path[0] == "tariff" and path[1] != "preset":
        monkeypatch.setenv("HAN2MQTT_TARIFF__PRESET", "custom")
    if path in {("tariff", "prices"), ("tariff", "price_per_kw")}:  # prices need their currency
        monkeypatch.setenv("HAN2MQTT_TARIFF__CURRENCY", "NOK")
    if path == ("tariff", "prices"):  # one per tier
        monkeypatch.setenv("HAN2MQTT_TARIFF__TIERS", "[2, 5, 10, 15, 20, 25, 50, 75, 100]")
        expected = [100.0 * n for n in range(1, 11)]
    if path[0] == "prices" and path[1] in ("source", "fallback"):  # a source needs its area
        monkeypatch.setenv("HAN2MQTT_PRICES__AREA", "NO1")
        monkeypatch.setenv("HAN2MQTT_PRICES__SOURCE", "hvakosterstrommen")
    if path == ("mqtt", "password"):  # a password alone is an error
        monkeypatch.setenv("HAN2MQTT_MQTT__USERNAME", "meter")
    if path[0] == "web" and path[1] in ("username", "password"):  # they go together
        other = "password" if path[1] == "username" else "username"
        monkeypatch.setenv(f"HAN2MQTT_WEB__{other.upper()}", "x")
    if path == ("mqtt", "tls", "keyfile"):  # so is a key without its certificate
        monkeypatch.setenv("HAN2MQTT_MQTT__TLS__CERTFILE", "/c.pem")
    assert _value(load_settings(EXAMPLE), path) == expected


def test_the_parametrized_table_covers_every_key():
    covered = {
        path for path, _, _ in test_every_key_can_be_set_from_the_environment.pytestmark[0].args[1]
    }
    assert covered == _model_keys(Settings)


DOCS = [
    Path(__file__).parents[1] / "README.md",
    *sorted((Path(__file__).parents[1] / "docs").glob("*.md")),
]


NOT_OURS = "not han2mqtt's configuration"
"""A YAML block whose first line says so (another program's, e.g. evcc.yaml) is not loaded."""


def _yaml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in DOCS:
        text = page.read_text()
        for number, block in enumerate(text.split("```yaml\n")[1:], start=1):
            content = block.split("```", 1)[0]
            if NOT_OURS not in content.split("\n", 1)[0]:
                blocks.append((f"{page.name}#{number}", content))
    return blocks


@pytest.mark.parametrize(("where", "block"), _yaml_blocks(), ids=lambda value: str(value)[:30])
def test_every_yaml_example_in_the_docs_is_a_valid_configuration(
    where: str, block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "config.yaml"
    path.write_text(block)
    if "source: entsoe" in block:  # its token comes from a secret file, as the page says
        monkeypatch.setenv("HAN2MQTT_PRICES__TOKEN", "a-token")
    load_settings(path)  # a misspelt key or a wrong value raises, naming it


def test_the_docs_have_yaml_examples():
    assert {where.split("#")[0] for where, _ in _yaml_blocks()} >= {
        "README.md",
        "configuration.md",
        "meters.md",
        "energy.md",
        "fleets.md",
    }
