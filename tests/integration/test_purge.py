"""``han2mqtt purge`` against a real mosquitto: thousands of topics, verified; what it says when
it cannot remove something or is not let in."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt import publish
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Broker
from tests.integration.helpers import clean_env, han2mqtt, write_config

pytestmark = [pytest.mark.integration, pytest.mark.broker]

needs_passwd = pytest.mark.skipif(
    shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd missing"
)
NO_METER = {"type": "tcp", "host": "127.0.0.1", "port": 9}


def _retain(broker: Broker, topics: dict[str, str], auth: dict[str, str] | None = None) -> None:
    messages: list[publish.MessageTuple] = [(t, p, 1, True) for t, p in topics.items()]
    publish.multiple(messages, hostname=broker.host, port=broker.port, auth=auth)  # type: ignore[arg-type]


def _retained(broker: Broker, auth: dict[str, str] | None = None) -> dict[str, str]:
    """Every retained message on the broker (a fresh subscriber, until it is quiet)."""
    found: dict[str, str] = {}
    last = [time.monotonic()]
    lock = threading.Lock()

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with lock:
            if message.retain:
                found[message.topic] = message.payload.decode()
            last[0] = time.monotonic()

    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    if auth:
        client.username_pw_set(auth["username"], auth["password"])
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe("#", qos=0)
    client.loop_start()
    time.sleep(1.0)
    while time.monotonic() - last[0] < 1.0:
        time.sleep(0.1)
    client.disconnect()
    client.loop_stop()
    return found


def _users(directory: Path, **users: str) -> Path:
    passwords = directory / "passwd"
    passwords.touch()
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
    return passwords


def test_purge_of_thousands_of_retained_topics_is_verified_empty(
    broker_factory: Callable[..., Broker], tmp_path: Path
):
    broker = broker_factory("allow_anonymous true\nmax_queued_messages 0")
    announce = json.dumps({"avty": [{"t": "han2mqtt/bridge/state"}]})
    topics = {f"han2mqtt/m{meter}/availability": "online" for meter in range(4000)}
    topics |= {f"homeassistant/device/han2mqtt_m{m}/config": announce for m in range(1000)}
    topics["other/keep"] = "not ours"
    _retain(broker, topics)
    assert len(_retained(broker)) == len(topics)
    config = write_config(tmp_path, broker, NO_METER)
    result = han2mqtt("purge", "--config", str(config), timeout=180)
    assert result.returncode == 0, result.stderr
    assert "removed 5000 retained message(s)" in result.stdout
    assert _retained(broker) == {"other/keep": "not ours"}


@needs_passwd
def test_purge_fails_when_retained_topics_stay(
    broker_factory: Callable[..., Broker], tmp_path: Path
):
    # The broker lets this user read every topic but write only some: it acknowledges the
    # removals of the others and drops them (MQTT has no error for that). Only reading the
    # retained messages back shows it.
    passwords = _users(tmp_path, writer="w", purger="p")
    acl = tmp_path / "acl"
    acl.write_text(
        "user writer\ntopic readwrite #\n"
        "user purger\ntopic read han2mqtt/#\ntopic readwrite han2mqtt/free/#\n"
    )
    broker = broker_factory(f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}")
    writer = {"username": "writer", "password": "w"}
    _retain(broker, {"han2mqtt/free/a": "1", "han2mqtt/locked/b": "2"}, writer)
    config = write_config(tmp_path, broker, NO_METER, mqtt={"username": "purger", "password": "p"})
    result = han2mqtt("purge", "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 retained topic(s) are still on the broker" in result.stderr
    assert "han2mqtt/locked/b" in result.stderr
    assert "removing again" in result.stderr  # it tried once more
    assert _retained(broker, writer) == {"han2mqtt/locked/b": "2"}


@needs_passwd
def test_purge_with_a_wrong_password_says_so(broker_factory: Callable[..., Broker], tmp_path: Path):
    passwords = _users(tmp_path, meter="right")
    broker = broker_factory(f"allow_anonymous false\npassword_file {passwords}")
    config = write_config(
        tmp_path, broker, NO_METER, mqtt={"username": "meter", "password": "wrong"}
    )
    result = han2mqtt("purge", "--config", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "cannot reach" not in result.stderr
    assert "not authorized" in lines[-1].lower()
    assert "mqtt.password" in lines[-1]
    assert "wrong" not in result.stderr  # the secret itself is never said


def test_the_readme_purge_removes_what_the_demo_left_on_a_broker(broker: Broker, tmp_path: Path):
    """``demo --mqtt-host`` (with ``--discovery``), then the purge line next to it in the README."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (line,) = [
        row for row in readme.splitlines() if row.endswith("han2mqtt purge") and "demo" in row
    ]
    env_words = line.split()[:-2]
    assert env_words == [
        "HAN2MQTT_MQTT__HOST=localhost",
        "HAN2MQTT_MQTT__BASE_TOPIC=han2mqtt-demo",
    ]
    demo = han2mqtt(
        "demo",
        "--mqtt-host",
        broker.host,
        "--mqtt-port",
        str(broker.port),
        "--interval",
        "0",
        "--hours",
        "1",
        "--discovery",
    )
    assert demo.returncode == 0, demo.stderr
    left = _retained(broker)
    assert any(topic.startswith("homeassistant/device/han2mqtt_") for topic in left)
    assert all(topic.startswith(("han2mqtt-demo/", "homeassistant/")) for topic in left)
    config = write_config(tmp_path, broker, NO_METER)
    env = {**clean_env(), "HAN2MQTT_MQTT__BASE_TOPIC": "han2mqtt-demo"}
    purged = subprocess.run(
        [sys.executable, "-m", "han2mqtt", "purge", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert purged.returncode == 0, purged.stderr
    assert _retained(broker) == {}
