"""``source.type: mqtt``: meters whose raw bytes arrive over MQTT, through a real mosquitto."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Broker, Capture
from tests.fleet import AIDON_LISTS, information, meter_frames, meter_id
from tests.integration.helpers import start_daemon, stop_daemon, write_config

pytestmark = [pytest.mark.integration, pytest.mark.broker]

BASE = "han2mqtt"
LIST1_POWER = b"\x06\x00\x00\x02\x00"  # active power import of the Aidon list 1 capture: 512 W


class Relay:
    """A relay (Tibber Pulse, an ESP32 reader): publishes payloads, QoS 1, waits for each."""

    def __init__(self, broker: Broker) -> None:
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _relay_config(tmp_path: Path, broker: Broker, **source: object) -> Path:
    return write_config(
        tmp_path,
        broker,
        {"type": "mqtt", "topic": "relay/#", **source},
        meter={"offline_after": 30},
    )


def wait_subscribed(capture: Capture, base: str = BASE) -> None:
    """Until ``bridge/info`` says the MQTT source (a client of its own) is connected."""
    capture.wait_for(lambda _m: _info(capture, base).get("source", {}).get("state") == "connected")


def _info(capture: Capture, base: str = BASE) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(capture.last(f"{base}/bridge/info") or "{}")
    return info


def test_hex_binary_and_base64_payloads_each_give_their_meter(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    capture = capture_factory(broker)
    daemon = start_daemon(_relay_config(tmp_path, broker))
    relay = Relay(broker)
    try:
        wait_subscribed(capture)
        list2 = [meter_frames(n)[0] for n in range(6)]
        relay.send("relay/hex", list2[0].hex().upper())
        relay.send("relay/binary", list2[1])
        relay.send("relay/base64", base64.b64encode(list2[2]))
        relay.send("relay/noflags", list2[3][1:-1])  # HDLC without its 0x7E flags
        relay.send("relay/apdu", information(AIDON_LISTS[0], 4)[3:])  # bare data-notification
        relay.send("relay/spaced", " ".join(f"{b:02x}" for b in list2[5]) + "\n")
        capture.wait_for(
            lambda _m: all(capture.last(f"{BASE}/{meter_id(n)}/voltage_l1") for n in range(6))
        )
        for number in range(6):
            state = json.loads(capture.last(f"{BASE}/{meter_id(number)}/state") or "{}")
            assert state["meter_id"] == meter_id(number)
            assert state["voltage_l1"] == pytest.approx(231.6, abs=5)
            assert capture.last(f"{BASE}/{meter_id(number)}/availability") == "online"
            assert capture.count(f"homeassistant/device/han2mqtt_{meter_id(number)}/config") == 1
    finally:
        relay.close()
        code, err = stop_daemon(daemon)
    assert code == 0, err
    assert "Traceback" not in err


def test_two_meters_interleaved_on_two_topics_with_segmented_frames(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    """Segments of two meters alternate; each topic's list 1 goes to that topic's meter."""
    capture = capture_factory(broker)
    daemon = start_daemon(_relay_config(tmp_path, broker))
    relay = Relay(broker)
    one, two = meter_frames(1, segmented=True), meter_frames(2, segmented=True)
    # Meter 2's list 1 says 768 W; meter 1's the captured 512 W.
    two[2:4] = [
        frame
        for segment in (
            information(AIDON_LISTS[1], 2).replace(LIST1_POWER, b"\x06\x00\x00\x03\x00"),
        )
        for frame in _segments(segment)
    ]
    try:
        wait_subscribed(capture)
        for first, second in zip(one, two, strict=True):
            relay.send("relay/meter-one", first)
            relay.send("relay/meter-two", second)
        capture.wait_for(
            lambda _m: (
                capture.count(f"{BASE}/{meter_id(1)}/state") == 3
                and capture.count(f"{BASE}/{meter_id(2)}/state") == 3
            )
        )
        states = {
            number: [
                json.loads(payload)
                for topic, payload, _ in capture.messages
                if topic == f"{BASE}/{meter_id(number)}/state"
            ]
            for number in (1, 2)
        }
        assert [s["active_power_import"] for s in states[1]] == [
            states[1][0]["active_power_import"],
            512,
            states[1][2]["active_power_import"],
        ]
        assert states[2][1]["active_power_import"] == 768
        assert "meter_id" not in states[2][1]  # list 1 names no meter: the topic does
        assert capture.last(f"{BASE}/unknown/state") is None
        capture.wait_for(lambda _m: _info(capture).get("decoded") == 6)
        assert _info(capture)["decode_errors"] == 0
    finally:
        relay.close()
        code, err = stop_daemon(daemon)
    assert code == 0, err


def _segments(info: bytes) -> list[bytes]:
    from tests.encoder import hdlc  # noqa: PLC0415 - the one test that needs it

    half = len(info) // 2
    return [hdlc(info[:half], segmented=True), hdlc(info[half:])]


def test_a_malformed_payload_storm_is_counted_logged_once_and_survived(
    broker_factory: Callable[..., Broker], capture_factory: Callable[..., Capture], tmp_path: Path
):
    # No per-client queue limit: the broker would drop what a busy machine cannot take at once,
    # and the counts are the point here.
    broker = broker_factory("allow_anonymous true\nmax_queued_messages 0")
    capture = capture_factory(broker)
    daemon = start_daemon(_relay_config(tmp_path, broker))
    relay = Relay(broker)
    rng = random.Random(14)
    good = meter_frames(7)[0]
    corrupt = bytearray(good)
    corrupt[40] ^= 0xFF  # FCS no longer matches
    storm: list[tuple[str, bytes | str]] = []
    for index in range(300):
        topic = f"relay/bad{index % 3}"
        storm += [
            (topic, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))),
            (topic, "zz" + good.hex()),  # not hex, not base64: taken as bytes, unrecognised
            (topic, b""),
            (topic, bytes(corrupt)),
            (topic, good[: rng.randrange(2, len(good))]),  # a frame cut short
            (topic, b"\x7e" * rng.randrange(1, 50)),
        ]
    try:
        wait_subscribed(capture)
        for topic, payload in storm:
            relay.client.publish(topic, payload, qos=1)
        relay.send("relay/good", good)
        capture.wait_for(lambda _m: capture.last(f"{BASE}/{meter_id(7)}/state") is not None, 30)
        # bridge/info comes every second: wait for one sent after the storm.
        capture.wait_for(lambda _m: _source_counts(capture).get("empty", 0) == 300, 10)
        counts = _source_counts(capture)
        assert counts["bad_frame"] >= 300
        assert counts["unrecognised"] > 0
        # A payload that continues a frame cut short by the one before is that frame's fate:
        # counted once with it (as bad_frame), not once per payload.
        assert sum(counts.values()) >= 900
        assert daemon.poll() is None
        assert capture.last(f"{BASE}/bridge/state") == "online"
    finally:
        relay.close()
        code, err = stop_daemon(daemon)
    assert code == 0, err
    assert "Traceback" not in err
    dropped = [line for line in err.splitlines() if "payload dropped on" in line]
    assert len(dropped) == len(set(dropped)) <= 3 * 4  # once per topic and kind


def _source_counts(capture: Capture) -> dict[str, int]:
    source = _info(capture).get("source", {})
    assert isinstance(source, dict)
    return {k: v for k, v in source.items() if isinstance(v, int)}


def test_a_shared_group_splits_the_fleet_and_survives_a_killed_member(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    """Three processes, one $share group: every frame published once, even after a kill."""
    capture = capture_factory(broker, ("+/+/state", "+/bridge/state", "+/bridge/info"))
    daemons: list[subprocess.Popen[str]] = []
    for index in range(3):
        directory = tmp_path / f"member{index}"
        directory.mkdir()
        config = write_config(
            directory,
            broker,
            {"type": "mqtt", "topic": "fleet/+/raw", "shared_group": "han2mqtt"},
            mqtt={"client_id": f"member{index}", "base_topic": f"han2mqtt-{index}"},
            meter={"offline_after": 30},
            homeassistant={"discovery": False},
        )
        daemons.append(start_daemon(config))
    relay = Relay(broker)
    meters = range(20)
    lists = {n: [meter_frames(n)[0], meter_frames(n)[2]] for n in meters}  # lists 2, 3: ids

    def send_round(round_number: int) -> None:
        for n in meters:
            relay.send(f"fleet/{n}/raw", lists[n][round_number % 2])

    def states() -> Counter[str]:
        return Counter(topic for topic, _, _ in capture.messages if topic.endswith("/state"))

    try:
        for index in range(3):
            wait_subscribed(capture, f"han2mqtt-{index}")
        for round_number in range(5):
            send_round(round_number)
        capture.wait_for(lambda _m: sum(states().values()) - 3 >= 100, 20)
        time.sleep(0.5)  # a duplicate would show up now
        first = states()
        meter_states = {t: c for t, c in first.items() if "/bridge/" not in t}
        assert sum(meter_states.values()) == 100  # 20 meters x 5 rounds, each exactly once
        assert {t.split("/")[0] for t in meter_states} == {f"han2mqtt-{i}" for i in range(3)}
        daemons[0].send_signal(signal.SIGKILL)
        daemons[0].wait(10)
        time.sleep(1.0)  # the broker notices the closed socket and drops the member
        capture.clear()
        for round_number in range(5):
            send_round(round_number)
        capture.wait_for(
            lambda _m: sum(c for t, c in states().items() if "/bridge/" not in t) >= 100, 20
        )
        time.sleep(0.5)
        after = {t: c for t, c in states().items() if "/bridge/" not in t}
        assert sum(after.values()) == 100
        assert {t.split("/")[0] for t in after} == {"han2mqtt-1", "han2mqtt-2"}
    finally:
        relay.close()
        for daemon in daemons[1:]:
            code, err = stop_daemon(daemon)
            assert code == 0, err
        if daemons[0].poll() is None:
            daemons[0].kill()
            daemons[0].wait()


def test_source_on_another_broker_with_its_own_login(
    broker_factory: Callable[..., Broker], capture_factory: Callable[..., Capture], tmp_path: Path
):
    """``source.mqtt_host``/``mqtt_port``/credentials: the relays' broker is not the output's."""
    output = broker_factory()
    passwords = tmp_path / "passwd"
    passwords.write_text("")
    subprocess.run(
        ["mosquitto_passwd", "-b", str(passwords), "relay-reader", "relay-pw"], check=True
    )
    os.chmod(passwords, 0o644)  # noqa: PTH101 - mosquitto runs as this user, reads it anyway
    relays = broker_factory(f"allow_anonymous false\npassword_file {passwords}")
    capture = capture_factory(output)
    daemon = start_daemon(
        _relay_config(
            tmp_path,
            output,
            mqtt_host=relays.host,
            mqtt_port=relays.port,
            mqtt_username="relay-reader",
            mqtt_password="relay-pw",
        )
    )
    relay = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    relay.username_pw_set("relay-reader", "relay-pw")
    relay.connect(relays.host, relays.port)
    relay.loop_start()
    try:
        wait_subscribed(capture)
        relay.publish("relay/x", meter_frames(3)[0], qos=1).wait_for_publish(10)
        capture.wait_for(lambda _m: capture.last(f"{BASE}/{meter_id(3)}/state") is not None)
        info = capture.last(f"{BASE}/bridge/info") or ""
        assert "relay-pw" not in info
    finally:
        relay.disconnect()
        relay.loop_stop()
        code, err = stop_daemon(daemon)
    assert code == 0, err
    assert "relay-pw" not in err
