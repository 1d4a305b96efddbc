"""Configuration: YAML, environment over YAML, secret files, and one-line errors naming the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from han2mqtt.cli import main
from han2mqtt.config import load_settings
from han2mqtt.daemon import replay_client_id
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


@pytest.mark.parametrize(
    ("yaml_text", "files", "expected"),
    [
        ("mqtt:\n  host: broker\n", {}, None),  # no login: the directory stays empty
        ("mqtt:\n  username: meter\n", {"han2mqtt_mqtt__password": "s3cret\n"}, "s3cret"),
    ],
)
def test_the_systemd_unit_credentials_work_with_and_without_a_broker_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yaml_text: str, files, expected
):
    # LoadCredential=han2mqtt:/etc/han2mqtt/credentials names each file han2mqtt_<file name>.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for name, text in files.items():
        (credentials / name).write_text(text)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    password = load_settings(_write(tmp_path, yaml_text)).mqtt.password
    assert (password.get_secret_value() if password else None) == expected


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
        ("mqtt:\n  prot: 5\n", "line 2: mqtt.prot: unknown key (did you mean mqtt.port?)"),
        ("mqtt:\n  tls:\n    enabeld: true\n", "line 3: mqtt.tls.enabeld: unknown key (did you"),
        ("sourc:\n  type: tcp\n", "line 1: sourc: unknown key (did you mean source?)"),
        ("source:\n  baudrat: 9600\n", "source.baudrat: unknown key (did you mean source.baud"),
        ("mqtt:\n  zzz: 1\n", "line 2: mqtt.zzz: unknown key"),
        ("meter:\n  encryption_key: 0011\n", "line 2: meter.encryption_key: write it in quotes"),
        ("meter:\n  id: 1234\n", "meter.id: write it in quotes"),
        ("source:\n  parity: X\n", "source.parity: Input should be 'N', 'E' or 'O'"),
        ("source:\n  type: tcp\n", "source: source.type tcp needs source.host and source.port"),
        ("source:\n  stopbits: 3\n", "source.stopbits: stopbits must be 1, 1.5 or 2"),
        ("mqtt:\n  port: 70000\n", "mqtt.port: Input should be less than or equal to 65535"),
        ("mqtt:\n  base_topic: a/#\n", "mqtt.base_topic: mqtt.base_topic must not contain"),
        ("publish:\n  fields: false\n", "homeassistant.discovery needs publish.fields"),
        ("source:\n  type: mqtt\n", "source: source.type mqtt needs source.topic"),
        ("source:\n  type: file\n", "source: source.type file needs source.path"),
        ("source:\n  shared_group: a/b\n", "source.shared_group: source.shared_group is one"),
        ("source:\n  speed: 0\n", "source.speed: source.speed is realtime, max or a factor"),
        ("source:\n  speed: fast\n", "source.speed"),
        ("source:\n  payload: utf8\n", "source.payload: Input should be 'auto'"),
        ("meter:\n  timezone: Europe/Olso\n", "meter.timezone: unknown time zone 'Europe/Olso'"),
        ("meter:\n  max_power: 0\n", "meter.max_power: Input should be greater than 0"),
        ("tariff:\n  preset: no\n", 'tariff.preset: write preset: "no" in quotes'),
        ("tariff:\n  preset: se\n", "tariff.preset: Input should be 'no', 'be' or 'custom'"),
        ("tariff:\n  peaks: 3\n", "tariff: tariff.peaks needs tariff.preset"),
        ("tariff:\n  preset: custom\n  window: 30\n", "tariff.window: a tariff window is 60"),
        ("tariff:\n  preset: custom\n  tiers: [5, 2]\n", "tariff.tiers: tiers are positive"),
        ("tariff:\n  preset: custom\n  hours: ['22-06']\n", "tariff.hours: hours are ranges"),
        ("tariff:\n  preset: custom\n  months: [13]\n", "tariff.months: months are 1-12"),
        ("tariff:\n  preset: custom\n  weekdays: [mo]\n", "tariff.weekdays.0: Input should be"),
    ],
)
def test_errors_are_one_line_and_name_the_key(tmp_path: Path, yaml_text: str, expected: str):
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, yaml_text))
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_energy_settings(tmp_path: Path):
    settings = load_settings(
        _write(tmp_path, 'meter:\n  timezone: Europe/Oslo\ntariff:\n  preset: "no"\n')
    )
    assert str(settings.meter.zone()) == "Europe/Oslo"
    assert settings.tariff.preset == "no"
    assert settings.meter.max_power == 50.0


def test_misspelt_environment_key_is_named(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HAN2MQTT_MQTT__HOSTT", "x")
    with pytest.raises(ConfigError, match=r"mqtt\.hostt; did you mean mqtt\.host\?"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "nearest"),
    [
        ("HAN2MQTT_MQTT_HOST", "HAN2MQTT_MQTT__HOST"),
        ("han2mqtt_source_device", "HAN2MQTT_SOURCE__DEVICE"),
        ("HAN2MQTT_METER_ENCRYPTION_KEY", "HAN2MQTT_METER__ENCRYPTION_KEY"),
    ],
)
def test_one_underscore_between_section_and_key_is_an_error(
    monkeypatch: pytest.MonkeyPatch, name: str, nearest: str
):
    monkeypatch.setenv(name, "x")
    with pytest.raises(ConfigError, match=f"{name} names no setting: did you mean {nearest}\\?"):
        load_settings()


def test_an_environment_value_is_not_blamed_on_a_yaml_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HAN2MQTT_MQTT__PORT", "70000")
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, "mqtt:\n  port: 1883\n"))
    assert str(caught.value).startswith("mqtt.port: Input should be less than or equal")


def test_missing_config_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_invalid_yaml_names_the_line(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"custom.yaml line \d+: invalid YAML: while parsing"):
        load_settings(_write(tmp_path, "mqtt:\n  host: [unclosed\n"))
    with pytest.raises(ConfigError, match="line 2: invalid YAML: mapping values are not allowed"):
        load_settings(_write(tmp_path, "mqtt:\n  host: a: b\n"))


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


def _fails_with_one_line(capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    """``han2mqtt run`` exits 2 with one line on stderr that contains every expected part."""
    assert main(["run"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("han2mqtt: error: ")
    for part in expected:
        assert part in error
    return error


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HAN2MQTT_MQTT", "broker"),
        ("HAN2MQTT_MQTT", ""),
        ("HAN2MQTT_MQTT", "1883"),
        ("HAN2MQTT_MQTT__RETAIN", "x"),
        ("HAN2MQTT_MQTT__TLS", "[1"),
        ("HAN2MQTT_MQTT", '{"password": "s3cret"'),
        ("HAN2MQTT_METER", '{"encryption_key": "s3cret", '),
    ],
)
def test_a_section_set_to_a_scalar_is_a_one_line_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}: ") as caught:
        load_settings()
    assert "\n" not in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in _fails_with_one_line(capsys, name)


def test_a_section_may_still_be_given_as_a_json_object(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HAN2MQTT_MQTT", '{"host": "broker", "username": "u", "password": "s3cret"}')
    monkeypatch.setenv("HAN2MQTT_MQTT__RETAIN", '{"state": true}')
    settings = load_settings()
    assert settings.mqtt.host == "broker"
    assert settings.mqtt.retain.state is True


def test_any_settings_source_error_is_a_one_line_config_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # The check of the environment catches these first; behind it pydantic-settings raises
    # SettingsError, which must not escape as a traceback either.
    monkeypatch.setattr("han2mqtt.config._check_environment", lambda _environ: None)
    monkeypatch.setenv("HAN2MQTT_MQTT", '{"password": "s3cret"')
    with pytest.raises(ConfigError, match="mqtt") as caught:
        load_settings()
    assert "\n" not in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in _fails_with_one_line(capsys, "mqtt")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("HAN2MQTT_MQQT__HOST", "unknown section mqqt"),
        ("han2mqtt_mqqt__host", "unknown section mqqt"),
        ("HAN2MQTT_SORUCE__TYPE", "unknown section soruce"),
        ("HAN2MQTT___HOST", "unknown section"),
        ("HAN2MQTT_MQTT__HOSTT", "unknown key mqtt.hostt"),
        ("HAN2MQTT_MQTT__TLS__ENABELD", "unknown key mqtt.tls.enabeld"),
        ("HAN2MQTT_MQTT__HOST__NAME", "mqtt.host is a value"),
        ("HAN2MQTT_MQTT__PASSWORD__X", "mqtt.password is a value"),
    ],
)
def test_every_nested_environment_variable_must_name_a_known_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, expected: str
):
    monkeypatch.setenv(name, "s3cret")
    with pytest.raises(ConfigError, match=f"^{name}: {expected}") as caught:
        load_settings()
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in _fails_with_one_line(capsys, name, expected)


def test_other_han2mqtt_variables_without_a_delimiter_are_left_alone(
    monkeypatch: pytest.MonkeyPatch,
):
    # HAN2MQTT_CORPUS is read by tests/corpus.py and benchmarks/decode.py, not by the daemon.
    monkeypatch.setenv("HAN2MQTT_CORPUS", "/somewhere/frames.json")
    assert load_settings().mqtt.host == "localhost"


def test_an_unreadable_secret_file_is_a_one_line_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # /run/secrets/mqtt__password 0600 owned by another user (the tests run as root).
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "mqtt__password").write_text("s3cret\n")
    read_text = Path.read_text

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "mqtt__password":
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(ConfigError, match=r"cannot read .*mqtt__password: Permission denied"):
        load_settings()
    # ... and says what to do (the container test checks it with a real bind-mounted secret).
    _fails_with_one_line(capsys, "mqtt__password", "Permission denied", f"uid {os.getuid()}")


def test_a_secret_file_that_is_not_text_is_a_one_line_error_without_its_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "meter__encryption_key").write_bytes(b"\xfe\xed\xfa\xce")
    with pytest.raises(ConfigError, match=r"meter__encryption_key: not UTF-8 text") as caught:
        load_settings()
    assert "0xfe" not in str(caught.value)
    assert "position" not in str(caught.value)
    _fails_with_one_line(capsys, "meter__encryption_key")


def test_an_unreadable_secret_directory_is_a_one_line_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    secrets = tmp_path / "secrets"
    secrets.mkdir()

    def denied(self: Path) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(ConfigError, match=r"cannot read .*secrets: Permission denied"):
        load_settings()
    _fails_with_one_line(capsys, str(secrets))


def test_other_applications_secret_files_are_ignored(tmp_path: Path):
    # /run/secrets is shared in Docker: names that are not ours are none of our business.
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "postgres_password").write_text("x")
    (secrets / "db__password").write_text("x")
    (secrets / "mqtt__username").write_text("meter")
    (secrets / "mqtt__password").write_text("s3cret")
    assert load_settings().mqtt.password is not None


def test_a_misspelt_key_in_a_secret_file_name_is_named_without_the_secret(tmp_path: Path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "mqtt__pasword").write_text("s3cret")
    with pytest.raises(ConfigError, match=r"mqtt\.pasword") as caught:
        load_settings()
    assert "s3cret" not in str(caught.value)


def test_the_relay_brokers_password_is_a_secret_and_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "source__mqtt_password").write_text("relay-s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = load_settings(
        _write(tmp_path, "source:\n  type: mqtt\n  topic: a/#\n  mqtt_username: r\n")
    )
    assert settings.source.mqtt_password is not None
    assert settings.source.mqtt_password.get_secret_value() == "relay-s3cret"
    assert "relay-s3cret" not in repr(settings)
    assert settings.redacted()["source"]["mqtt_password"] == "**********"


@pytest.mark.parametrize(
    ("raw", "expected"), [("realtime", "realtime"), ("max", "max"), ("2.5", 2.5)]
)
def test_replay_speed(tmp_path: Path, raw: str, expected: object):
    settings = load_settings(
        _write(tmp_path, f"source:\n  type: file\n  path: x\n  speed: {raw}\n")
    )
    assert settings.source.speed == expected


def test_a_replay_gets_a_client_id_of_its_own_unless_one_is_set(tmp_path: Path):
    recording = "source:\n  type: file\n  path: x.rec\n"
    replay = replay_client_id(load_settings(_write(tmp_path, recording)))
    assert replay.mqtt.client_id == "han2mqtt-replay"
    chosen = replay_client_id(
        load_settings(_write(tmp_path, recording + "mqtt:\n  client_id: a\n"))
    )
    assert chosen.mqtt.client_id == "a"
    live = replay_client_id(
        load_settings(_write(tmp_path, "source:\n  type: tcp\n  host: h\n  port: 1\n"))
    )
    assert live.mqtt.client_id == "han2mqtt"


def test_the_web_password_is_a_secret_and_goes_with_a_username(tmp_path: Path):
    settings = load_settings(_write(tmp_path, "web:\n  username: me\n  password: s3cret\n"))
    assert settings.redacted()["web"]["password"] == "**********"
    assert "s3cret" not in repr(settings)
    with pytest.raises(ConfigError, match=r"web\.username and web\.password go together"):
        load_settings(_write(tmp_path, "web:\n  password: s3cret\n"))
    with pytest.raises(ConfigError, match="cannot contain ':'"):
        load_settings(_write(tmp_path, "web:\n  username: 'a:b'\n  password: s3cret\n"))
