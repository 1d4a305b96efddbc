"""Configuration: YAML, environment over YAML, secret files, and one-line errors naming the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from han2mqtt.cli import main
from han2mqtt.config import load_settings
from han2mqtt.errors import ConfigError


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray HAN2MQTT_ variables, no default config file, no real secret directories."""
    for name in list(os.environ):
        if name.upper().startswith("HAN2MQTT_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("han2mqtt.config.DEFAULT_CONFIG_PATHS", (tmp_path / "config.yaml",))
    monkeypatch.setattr("han2mqtt.config.SECRET_DIRECTORIES", (str(tmp_path / "secrets"),))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "custom.yaml"
    path.write_text(text)
    return path


def test_defaults_without_any_file_or_variable():
    settings = load_settings()
    assert settings.source.type == "serial"
    assert settings.source.baudrate == 2400
    assert settings.mqtt.base_topic == "han2mqtt"
    assert settings.homeassistant.prefix == "homeassistant"


def test_environment_only_works_for_containers(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HAN2MQTT_SOURCE__TYPE", "tcp")
    monkeypatch.setenv("HAN2MQTT_SOURCE__HOST", "192.0.2.5")
    monkeypatch.setenv("HAN2MQTT_SOURCE__PORT", "8899")
    monkeypatch.setenv("HAN2MQTT_MQTT__HOST", "broker")
    monkeypatch.setenv("HAN2MQTT_MQTT__RETAIN__STATE", "true")
    settings = load_settings()
    assert (settings.source.host, settings.source.port) == ("192.0.2.5", 8899)
    assert settings.mqtt.host == "broker"
    assert settings.mqtt.retain.state is True


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = _write(tmp_path, "mqtt:\n  host: from-file\n  port: 1884\n")
    monkeypatch.setenv("HAN2MQTT_MQTT__HOST", "from-env")
    settings = load_settings(path)
    assert settings.mqtt.host == "from-env"
    assert settings.mqtt.port == 1884


def test_default_file_is_used_when_present(tmp_path: Path):
    (tmp_path / "config.yaml").write_text("meter:\n  offline_after: 90\n")
    assert load_settings().meter.offline_after == 90


def test_secret_files_from_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt__password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = load_settings(_write(tmp_path, "mqtt:\n  username: meter\n"))
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.redacted())


def test_docker_secrets_directory(tmp_path: Path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "han2mqtt_meter__encryption_key").write_text("000102030405060708090A0B0C0D0E0F")
    settings = load_settings()
    assert settings.meter.encryption_key is not None
    assert settings.redacted()["meter"]["encryption_key"] == "**********"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("mqtt:\n  prot: 5\n", "mqtt.prot: Extra inputs are not permitted"),
        ("mqtt:\n  tls:\n    enabeld: true\n", "mqtt.tls.enabeld: Extra inputs are not permitted"),
        ("sourc:\n  type: tcp\n", "sourc: Extra inputs are not permitted"),
        ("source:\n  parity: X\n", "source.parity: Input should be 'N', 'E' or 'O'"),
        ("source:\n  type: tcp\n", "source: source.type tcp needs source.host and source.port"),
        ("source:\n  stopbits: 3\n", "source.stopbits: stopbits must be 1, 1.5 or 2"),
        ("mqtt:\n  port: 70000\n", "mqtt.port: Input should be less than or equal to 65535"),
        ("mqtt:\n  base_topic: a/#\n", "mqtt: mqtt.base_topic must be a plain topic"),
        ("publish:\n  fields: false\n", "homeassistant.discovery needs publish.fields"),
    ],
)
def test_errors_are_one_line_and_name_the_key(tmp_path: Path, yaml_text: str, expected: str):
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, yaml_text))
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_misspelt_environment_key_is_named(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HAN2MQTT_MQTT__HOSTT", "x")
    with pytest.raises(ConfigError, match=r"mqtt\.hostt"):
        load_settings()


def test_missing_config_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_invalid_yaml_names_the_line(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"custom.yaml line \d+: invalid YAML"):
        load_settings(_write(tmp_path, "mqtt:\n  host: [unclosed\n"))


def test_yaml_that_is_not_a_mapping(tmp_path: Path):
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(_write(tmp_path, "- a\n- b\n"))


def test_a_config_directory_we_may_not_enter_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # systemd's DynamicUser cannot enter a root-owned 0750 /etc/han2mqtt: is_file() raises.
    def denied(_self: Path) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "is_file", denied)
    with pytest.raises(ConfigError, match=r"cannot read .*: Permission denied"):
        load_settings(tmp_path / "config.yaml")
    assert main(["run", "--config", str(tmp_path / "config.yaml")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "Permission denied" in error
