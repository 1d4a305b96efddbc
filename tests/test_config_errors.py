"""Bad configurations: ``han2mqtt run`` (the real command) exits 2 with one line naming the key.

Each of these ended in a traceback and exit 1 (systemd restarts that for ever), or started a
daemon that crashed at the first discovery update or stormed the broker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port
from tests.tls import make_certificates

NOT_A_CERT = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


def _tls(**keys: str) -> dict[str, Any]:
    return {"mqtt": {"tls": {"enabled": True, **keys}}}


# (case id, configuration: sections merged into a harmless base, or the file's raw bytes,
#  environment, parts the one-line error must contain).  {tmp} is the test's directory.
CASES: list[tuple[str, dict[str, Any] | bytes, dict[str, str | bytes], tuple[str, ...]]] = [
    ("ca-missing", _tls(ca_certs="{tmp}/nope.pem"), {}, ("mqtt.tls.ca_certs", "nope.pem")),
    ("ca-not-a-cert", _tls(ca_certs="{tmp}/bad.pem"), {}, ("mqtt.tls.ca_certs", "bad.pem")),
    ("ca-is-a-key", _tls(ca_certs="{tmp}/client.key"), {}, ("mqtt.tls.ca_certs",)),
    ("cert-without-key", _tls(certfile="{tmp}/client.crt"), {}, ("mqtt.tls.certfile",)),
    (
        "cert-wrong-key",
        _tls(certfile="{tmp}/client.crt", keyfile="{tmp}/server.key"),
        {},
        ("mqtt.tls.certfile",),
    ),
    ("key-without-cert", _tls(keyfile="{tmp}/client.key"), {}, ("mqtt.tls.keyfile",)),
    ("host-empty", {"mqtt": {"host": ""}}, {}, ("mqtt.host",)),
    ("host-blank", {"mqtt": {"host": " "}}, {}, ("mqtt.host",)),
    ("not-utf8", b"mqtt:\n  host: caf\xe9\n", {}, ("config.yaml", "not UTF-8")),
    ("heartbeat-empty", {"health": {"heartbeat_file": ""}}, {}, ("health.heartbeat_file",)),
    ("heartbeat-dir", {"health": {"heartbeat_file": "{tmp}"}}, {}, ("health.heartbeat_file",)),
    (
        "heartbeat-foreign-file",
        {"health": {"heartbeat_file": "{tmp}/bad.pem"}},
        {},
        ("health.heartbeat_file", "not a han2mqtt heartbeat"),
    ),
    ("keepalive-too-big", {"mqtt": {"keepalive": 65536}}, {}, ("mqtt.keepalive",)),
    ("client-id-too-long", {"mqtt": {"client_id": "c" * 65536}}, {}, ("mqtt.client_id",)),
    ("client-id-nul", {"mqtt": {"client_id": "a\0b"}}, {}, ("mqtt.client_id",)),
    ("client-id-empty", {"mqtt": {"client_id": ""}}, {}, ("mqtt.client_id",)),
    (
        "client-id-not-utf8",
        {},
        {"HAN2MQTT_MQTT__CLIENT_ID": b"h2m-\xff"},
        ("mqtt.client_id", "UTF-8"),
    ),
    ("base-too-long", {"mqtt": {"base_topic": "b" * 16385}}, {}, ("mqtt.base_topic",)),
    ("base-hash", {"mqtt": {"base_topic": "han/#"}}, {}, ("mqtt.base_topic", "wildcard")),
    ("base-plus", {"mqtt": {"base_topic": "han/+/x"}}, {}, ("mqtt.base_topic",)),
    ("base-nul", {"mqtt": {"base_topic": "han\0x"}}, {}, ("mqtt.base_topic",)),
    ("base-empty-level", {"mqtt": {"base_topic": "han//x"}}, {}, ("mqtt.base_topic", "empty")),
    ("base-leading-slash", {"mqtt": {"base_topic": "/han"}}, {}, ("mqtt.base_topic",)),
    ("base-dollar", {"mqtt": {"base_topic": "$SYS/han"}}, {}, ("mqtt.base_topic", "$")),
    ("prefix-hash", {"homeassistant": {"prefix": "ha#"}}, {}, ("homeassistant.prefix",)),
    ("prefix-plus", {"homeassistant": {"prefix": "+"}}, {}, ("homeassistant.prefix",)),
    ("prefix-nul", {"homeassistant": {"prefix": "ha\0"}}, {}, ("homeassistant.prefix",)),
    ("prefix-trailing", {"homeassistant": {"prefix": "ha/"}}, {}, ("homeassistant.prefix",)),
    ("prefix-too-long", {"homeassistant": {"prefix": "p" * 16385}}, {}, ("homeassistant.prefix",)),
    ("meter-id-too-long", {"meter": {"id": "m" * 16385}}, {}, ("meter.id",)),
    (
        "duplicate-section",
        b"mqtt:\n  host: 127.0.0.1\nmqtt:\n  port: 1\n",
        {},
        ("line 3", "duplicate key 'mqtt'"),
    ),
    (
        "duplicate-key",
        b"source:\n  type: tcp\n  host: 127.0.0.1\n  port: 1\n  type: serial\n",
        {},
        ("line 5", "duplicate key 'type'"),
    ),
    ("reconnect-min-inf", {"source": {"reconnect_min": float("inf")}}, {}, ("reconnect_min",)),
    ("reconnect-max-inf", {"source": {"reconnect_max": float("inf")}}, {}, ("reconnect_max",)),
    ("reconnect-nan", {"source": {"reconnect_min": float("nan")}}, {}, ("reconnect_min",)),
    ("reconnect-negative", {"source": {"reconnect_max": -1}}, {}, ("reconnect_max",)),
    (
        "reconnect-min-over-max",
        {"source": {"reconnect_min": 10, "reconnect_max": 5}},
        {},
        ("reconnect_max",),
    ),
    ("offline-after-inf", {"meter": {"offline_after": float("inf")}}, {}, ("meter.offline_after",)),
    (
        "secret-is-a-directory",
        {"mqtt": {"username": "meter"}},
        {"CREDENTIALS_DIRECTORY": "{tmp}/credentials"},
        ("mqtt__password", "directory"),
    ),
    ("password-without-username", {"mqtt": {"password": "pw"}}, {}, ("mqtt.password",)),
]


def _base() -> dict[str, Any]:
    # Nothing listens on these ports: a configuration that wrongly passes starts a daemon that
    # only retries, and the test times out on it instead of talking to some broker.
    return {
        "source": {"type": "tcp", "host": "127.0.0.1", "port": free_port()},
        "mqtt": {"host": "127.0.0.1", "port": free_port()},
    }


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _fill(value: Any, tmp: Path) -> Any:
    if isinstance(value, dict):
        return {key: _fill(item, tmp) for key, item in value.items()}
    return value.replace("{tmp}", str(tmp)) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bad-config")
    certs = make_certificates(directory)
    (directory / "client.crt").write_bytes(certs["client_cert"].read_bytes())
    (directory / "client.key").write_bytes(certs["client_key"].read_bytes())
    (directory / "server.key").write_bytes(certs["key"].read_bytes())
    (directory / "bad.pem").write_text(NOT_A_CERT)
    (directory / "credentials" / "mqtt__password").mkdir(parents=True)
    return directory


@pytest.mark.parametrize(
    ("config", "environment", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_bad_configuration_is_one_line_and_exit_2(
    files: Path,
    tmp_path: Path,
    config: dict[str, Any] | bytes,
    environment: dict[str, str | bytes],
    expected: tuple[str, ...],
):
    path = tmp_path / "config.yaml"
    if isinstance(config, bytes):
        path.write_bytes(config)
    else:
        path.write_text(yaml.safe_dump(_merge(_base(), _fill(config, files)), width=1 << 20))
    env: dict[str | bytes, str | bytes] = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("HAN2MQTT_") and name != "CREDENTIALS_DIRECTORY"
    }
    for name, value in environment.items():
        env[name] = value.replace("{tmp}", str(files)) if isinstance(value, str) else value
    try:
        result = subprocess.run(
            [sys.executable, "-m", "han2mqtt", "run", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=20,
            env=env,  # type: ignore[arg-type] # bytes values are allowed on POSIX
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the daemon started instead of refusing: {exc.stderr!r}") from None
    error = result.stderr
    assert result.returncode == 2, error[-2000:]
    assert error.startswith("han2mqtt: error: "), error[-2000:]
    assert error.count("\n") == 1, error[-2000:]
    for part in expected:
        assert part in error, error
    assert len(error) < 400, "the error quotes the bad value"
