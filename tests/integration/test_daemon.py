"""``han2mqtt run`` as users run it: a subprocess, a real mosquitto, a TCP meter or a serial pty."""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.publish as single
import pytest

from tests import corpus
from tests.conftest import Broker, Capture
from tests.integration.helpers import (
    AIDON,
    AIDON_ID,
    MeterSimulator,
    daemon_on_pty,
    han2mqtt,
    start_daemon,
    stop_daemon,
    write_config,
    write_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.broker]

BASE = "han2mqtt"
DEMO = "han2mqtt-demo"
DISCOVERY = f"homeassistant/device/han2mqtt_{AIDON_ID}/config"


def _publish(broker: Broker, topic: str, payload: str) -> None:
    single.single(topic, payload, hostname=broker.host, port=broker.port, qos=1)


def test_every_topic_family_discovery_ha_restart_and_sigterm(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    capture = capture_factory(broker)
    secret = "s3cret-never-published"  # the test broker accepts any login
    daemon = start_daemon(
        write_config(
            tmp_path,
            broker,
            {"type": "tcp", "host": "127.0.0.1", "port": meter.port},
            mqtt={"username": "meter", "password": secret},
        )
    )
    try:
        capture.wait_for(
            lambda _m: capture.last(f"{BASE}/{AIDON_ID}/obis/1-0:1.8.0.255") is not None
        )
        assert capture.last(f"{BASE}/bridge/state") == "online"
        assert capture.last(f"{BASE}/{AIDON_ID}/availability") == "online"
        state = json.loads(capture.last(f"{BASE}/{AIDON_ID}/state") or "{}")
        assert "active_power_import" in state
        assert "timestamp" in state
        assert state.get("meter_id", AIDON_ID) == AIDON_ID  # list 1 frames carry no id
        assert capture.last(f"{BASE}/{AIDON_ID}/voltage_l1") in ("231.6", "234.3")
        assert capture.last(f"{BASE}/{AIDON_ID}/active_power_import_total") == "163777.25"
        assert capture.last(f"{BASE}/{AIDON_ID}/obis/1-0:1.8.0.255") == "163777250"
        capture.wait_for(
            lambda _m: (
                capture.last(f"{BASE}/bridge/info") is not None
                and json.loads(capture.last(f"{BASE}/bridge/info") or "{}")["frames"] > 0
            )
        )
        info = capture.last(f"{BASE}/bridge/info") or ""
        assert secret not in info
        discovery = json.loads(capture.last(DISCOVERY) or "{}")
        components = list(discovery["cmps"].values())
        assert len({c["uniq_id"] for c in components}) == len(components)
        assert all(re.match(r"^sensor\.[a-z0-9_]+$", c["default_entity_id"]) for c in components)
        energy = discovery["cmps"]["1_0_1_8_0_255"]
        assert (energy["dev_cla"], energy["stat_cla"], energy["unit_of_meas"]) == (
            "energy",
            "total_increasing",
            "kWh",
        )

        before = capture.count(DISCOVERY)
        _publish(broker, "homeassistant/status", "online")
        capture.wait_for(lambda _m: capture.count(DISCOVERY) > before, timeout=15)

        result = han2mqtt("healthcheck", "--config", str(tmp_path / "config.yaml"))
        assert result.returncode == 0, result.stderr
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    capture.wait_value(f"{BASE}/bridge/state", "offline")
    assert "Traceback" not in err
    assert secret not in err
    assert not [m for m in capture.messages if secret in m[1]]


def test_broker_restart_and_source_outage(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    daemon = start_daemon(
        write_config(tmp_path, broker, {"type": "tcp", "host": "127.0.0.1", "port": meter.port})
    )
    try:
        capture = capture_factory(broker)
        capture.wait_for(
            lambda _m: capture.last(f"{BASE}/{AIDON_ID}/active_power_import") is not None
        )

        # A restart that loses every retained message: what arrives now was sent again.
        broker.stop()
        (broker.directory / "mosquitto.db").unlink(missing_ok=True)
        broker.start()
        capture = capture_factory(broker)
        capture.wait_value(f"{BASE}/bridge/state", "online", timeout=30)
        capture.wait_for(lambda _m: capture.count(DISCOVERY) >= 1, timeout=30)
        capture.wait_value(f"{BASE}/{AIDON_ID}/availability", "online", timeout=30)
        capture.clear()
        capture.wait_for(
            lambda _m: capture.last(f"{BASE}/{AIDON_ID}/active_power_import") is not None
        )

        meter.stop()  # the TCP serial server goes away
        capture.wait_value(f"{BASE}/{AIDON_ID}/availability", "offline", timeout=15)
        meter.start()
        capture.wait_value(f"{BASE}/{AIDON_ID}/availability", "online", timeout=15)
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err


def test_unclean_death_leaves_the_last_will(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    capture = capture_factory(broker)
    daemon = start_daemon(
        write_config(tmp_path, broker, {"type": "tcp", "host": "127.0.0.1", "port": meter.port})
    )
    capture.wait_value(f"{BASE}/bridge/state", "online")
    stop_daemon(daemon, signal.SIGKILL)
    capture.wait_value(f"{BASE}/bridge/state", "offline")


@pytest.mark.serial
@pytest.mark.skipif(
    shutil.which("socat") is None, reason="socat is not installed (scripts/test.sh installs it)"
)
def test_serial_source_on_a_socat_pty(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    power = f"{BASE}/{AIDON_ID}/active_power_import"
    capture = capture_factory(broker)
    with daemon_on_pty(tmp_path, broker, {"type": "serial", "baudrate": 2400}) as meter_end:
        write_until(meter_end, (AIDON[0] + AIDON[1],), lambda: capture.last(power) is not None, 15)
        assert capture.last(power) in ("1672", "512")


def test_purge_removes_every_retained_message(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    config = write_config(
        tmp_path, broker, {"type": "tcp", "host": "127.0.0.1", "port": meter.port}
    )
    capture = capture_factory(broker)
    daemon = start_daemon(config)
    capture.wait_for(lambda _m: capture.last(DISCOVERY) is not None)
    stop_daemon(daemon)
    result = han2mqtt("purge", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "removed" in result.stdout
    late = capture_factory(broker)
    time.sleep(1.5)
    retained = [(t, p) for t, p, r in late.messages if r]
    assert retained == []


def test_purge_next_to_a_running_bridge_and_another_instance(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    other = "homeassistant/device/han2mqtt_other/config"
    _publish_retained(broker, other, json.dumps({"avty": [{"t": "other/bridge/state"}]}))
    config = write_config(
        tmp_path, broker, {"type": "tcp", "host": "127.0.0.1", "port": meter.port}
    )
    capture = capture_factory(broker)
    daemon = start_daemon(config)
    try:
        capture.wait_for(lambda _m: capture.last(DISCOVERY) is not None)
        result = han2mqtt("purge", "--config", str(config))
        assert result.returncode == 0, result.stderr
        time.sleep(1.0)
    finally:
        code, err = stop_daemon(daemon)
    # The same configuration, so the same client id: purge must not have kicked the daemon off.
    assert code == 0, err
    assert "lost the MQTT broker" not in err, err
    blanked = {t for t, p, _ in capture.messages if p == ""}
    assert DISCOVERY in blanked
    assert other not in blanked  # another instance's discovery
    assert f"{BASE}/{AIDON_ID}/active_power_import" not in blanked  # live, never retained
    assert f"{BASE}/{AIDON_ID}/state" not in blanked


def _publish_retained(broker: Broker, topic: str, payload: str) -> None:
    single.single(topic, payload, hostname=broker.host, port=broker.port, qos=1, retain=True)


def test_config_errors_exit_2_with_one_line(tmp_path: Path):
    result = han2mqtt("run", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "config file not found" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("mqtt:\n  hots: broker\n")
    result = han2mqtt("run", "--config", str(bad))
    assert result.returncode == 2
    assert "mqtt.hots" in result.stderr


def test_healthcheck_fails_when_stale_or_missing(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(f"health:\n  heartbeat_file: {tmp_path / 'beat'}\n  max_age: 30\n")
    assert han2mqtt("healthcheck", "--config", str(config)).returncode == 1
    (tmp_path / "beat").write_text(f"{time.time() - 100:.3f}\n")
    result = han2mqtt("healthcheck", "--config", str(config))
    assert result.returncode == 1
    assert "ago" in result.stderr
    (tmp_path / "beat").write_text(f"{time.time():.3f}\n")
    assert han2mqtt("healthcheck", "--config", str(config)).returncode == 0


def test_demo_prints_without_a_broker_and_publishes_with_one(
    broker: Broker, capture_factory: Callable[..., Capture]
):
    result = han2mqtt("demo", "--interval", "0.02")  # three meter hours, sped up
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"{BASE}/bridge/state online (retained)" in lines
    # Readable: one line per meter and meter hour, discovery summarized, none of it long.
    assert len(lines) < 60, result.stdout
    assert max(len(line) for line in lines) < 200
    meters = {AIDON_ID, "6970631401753985", "5706567274389702", "E0044007131650618"}
    for meter in meters:
        state = [line for line in lines if line.startswith(f"{BASE}/{meter}/state ")]
        assert any("last hour " in line and "today " in line for line in state), lines
    assert any(line.endswith("--verbose shows it)") for line in lines)
    assert lines[-1].endswith("--verbose prints every message)")
    verbose = han2mqtt("demo", "--interval", "0", "--hours", "1.5", "--verbose")
    published = verbose.stdout.splitlines()
    assert any(line.startswith(f"{BASE}/{AIDON_ID}/energy_import_last_hour ") for line in published)
    assert any(line.startswith("homeassistant/device/han2mqtt_") for line in published)
    info = [line for line in published if line.startswith(f"{BASE}/bridge/info ")][-1]
    counters = json.loads(info.split(" ", 1)[1].removesuffix(" (retained)"))
    # Every simulated frame decodes and names its meter (none held back on the shared line).
    assert counters["frames"] == counters["decoded"] > 100
    assert (counters["decode_errors"], counters["bad_checksum"], counters["held_back"]) == (0, 0, 0)
    capture = capture_factory(broker)
    result = han2mqtt(
        "demo", "--mqtt-host", broker.host, "--mqtt-port", str(broker.port), "--interval", "0"
    )
    assert result.returncode == 0, result.stderr
    capture.wait_for(lambda _m: capture.last(f"{DEMO}/{AIDON_ID}/active_power_import") is not None)
    capture.wait_for(
        lambda _m: capture.last(f"{DEMO}/{AIDON_ID}/energy_import_last_hour") is not None
    )
    capture.wait_value(f"{DEMO}/bridge/state", "offline")
    assert not [t for t, _, _ in capture.messages if t.startswith(f"{BASE}/")]
    # No fake meters in Home Assistant unless asked for.
    assert not [t for t, _, _ in capture.messages if t.startswith("homeassistant/")]


def test_demo_on_a_broker_leaves_a_running_bridge_alone(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    capture = capture_factory(broker)
    daemon = start_daemon(
        write_config(tmp_path, broker, {"type": "tcp", "host": "127.0.0.1", "port": meter.port})
    )
    try:
        capture.wait_value(f"{BASE}/bridge/state", "online")
        result = han2mqtt(
            "demo", "--mqtt-host", broker.host, "--mqtt-port", str(broker.port), "--interval", "0"
        )
        assert result.returncode == 0, result.stderr
        capture.wait_value(f"{DEMO}/bridge/state", "offline")
        assert capture.last(f"{BASE}/bridge/state") == "online"
    finally:
        stop_daemon(daemon)


def test_demo_with_an_unreachable_broker_exits_2():
    result = han2mqtt("demo", "--mqtt-host", "127.0.0.1", "--mqtt-port", "1", "--interval", "0")
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith("han2mqtt: error: cannot reach the MQTT broker 127.0.0.1:1: ")


@pytest.mark.parametrize(
    ("item_id", "meter", "topic", "value"),
    [
        ("nl-dsmr42-kaifa", None, "active_power_import", "2027"),
        ("at-kaifa-tinetz-doc-testkey", "tinetz", "voltage_l1", "230.8"),
    ],
)
def test_p1_and_encrypted_mbus_sources_are_detected_and_published(
    broker: Broker,
    capture_factory: Callable[..., Capture],
    tmp_path: Path,
    item_id,
    meter,
    topic,
    value,
):
    item = corpus.by_id(item_id)
    simulator = MeterSimulator([corpus.raw(item) + b"\r\n"], interval=0.2)
    simulator.start()
    meter_section = {"id": meter, "encryption_key": item["key_hex"]} if meter else {}
    config = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": simulator.port},
        meter=meter_section,
    )
    capture = capture_factory(broker)
    daemon = start_daemon(config)
    try:
        capture.wait_for(lambda _m: any(t.endswith(f"/{topic}") and p == value for t, p, _ in _m))
    finally:
        code, err = stop_daemon(daemon)
        simulator.stop()
    assert code == 0, err
    if item["key_hex"]:
        assert item["key_hex"] not in err  # secrets are never logged


def test_a_restarted_daemon_keeps_the_sensors_of_lists_it_has_not_seen_yet(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    source = {"type": "tcp", "host": "127.0.0.1", "port": meter.port}
    capture = capture_factory(broker)
    daemon = start_daemon(write_config(tmp_path, broker, source))
    energy = "1_0_1_8_0_255"  # sent by list 3 only
    try:
        capture.wait_for(
            lambda _m: energy in json.loads(capture.last(DISCOVERY) or "{}").get("cmps", {})
        )
    finally:
        stop_daemon(daemon)
    list2_only = MeterSimulator([AIDON[0]])
    list2_only.start()
    capture.clear()
    daemon = start_daemon(write_config(tmp_path, broker, {**source, "port": list2_only.port}))
    try:
        capture.wait_for(lambda _m: capture.last(f"{BASE}/{AIDON_ID}/voltage_l1") is not None)
        time.sleep(1.0)
        published = [
            json.loads(p) for t, p, retained in capture.messages if t == DISCOVERY and not retained
        ]
        assert published, "the restarted daemon sent discovery"
        assert energy in published[-1]["cmps"]
    finally:
        stop_daemon(daemon)
        list2_only.stop()
