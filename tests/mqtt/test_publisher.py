"""The paho publisher against a real mosquitto: online/offline, outages, queue, auth, TLS."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from han2mqtt.config import MqttSettings
from han2mqtt.mqtt.publisher import MqttPublisher, _TakeoverWatch
from han2mqtt.mqtt.topics import Message
from tests.conftest import Broker, Capture
from tests.tls import make_certificates

pytestmark = [pytest.mark.broker, pytest.mark.integration]


def _settings(broker: Broker, **changes: object) -> MqttSettings:
    return MqttSettings.model_validate(
        {"host": broker.host, "port": broker.port, "client_id": "test-pub", **changes}
    )


async def _wait(capture: Capture, predicate: Callable[[list[tuple[str, str, bool]]], bool]) -> None:
    await asyncio.to_thread(capture.wait_for, predicate)


async def test_online_on_connect_messages_and_offline_on_stop(broker: Broker, capture_factory):
    capture = capture_factory(broker)
    publisher = MqttPublisher(_settings(broker))
    await publisher.start()
    await publisher.wait_connected(10)
    publisher.publish(Message("han2mqtt/m/active_power_import", "1362"))
    await _wait(capture, lambda _m: capture.last("han2mqtt/m/active_power_import") == "1362")
    assert capture.last("han2mqtt/bridge/state") == "online"
    await publisher.stop()
    await _wait(capture, lambda _m: capture.last("han2mqtt/bridge/state") == "offline")
    assert publisher.stats.published == 1


async def test_broker_down_at_start_then_up_flushes_newest_per_topic(
    broker_factory, capture_factory, tmp_path: Path
):
    broker = broker_factory()
    broker.stop()
    publisher = MqttPublisher(_settings(broker, queue_size=3))
    await publisher.start()  # must not raise although nothing listens
    for value in range(5):
        publisher.publish(Message("han2mqtt/m/active_power_import", str(value)))
    for name in ("a", "b", "c"):
        publisher.publish(Message(f"han2mqtt/m/{name}", name))
    assert publisher.queued == 3
    assert publisher.stats.dropped == 1  # the power topic, oldest, gave way
    broker.start()
    capture = capture_factory(broker)
    await publisher.wait_connected(20)
    await _wait(capture, lambda _m: capture.last("han2mqtt/m/c") == "c")
    assert capture.count("han2mqtt/m/active_power_import") == 0
    await publisher.stop()


async def test_a_full_queue_gives_up_readings_before_retained_messages(broker_factory):
    broker = broker_factory()
    broker.stop()
    publisher = MqttPublisher(_settings(broker, queue_size=3))
    await publisher.start()
    publisher.publish(Message("homeassistant/device/han2mqtt_m/config", "{}", 1, retain=True))
    publisher.publish(Message("han2mqtt/m/availability", "online", 1, retain=True))
    for value in range(10):
        publisher.publish(Message(f"han2mqtt/m/field{value}", str(value)))
    assert list(publisher._queue) == [
        "homeassistant/device/han2mqtt_m/config",
        "han2mqtt/m/availability",
        "han2mqtt/m/field9",
    ]
    assert publisher.stats.dropped == 9
    await publisher.stop()


async def test_broker_restart_reconnects_and_announces_again(broker: Broker, capture_factory):
    connects: list[int] = []
    publisher = MqttPublisher(_settings(broker))
    publisher.on_connected = lambda: connects.append(1)
    await publisher.start()
    await publisher.wait_connected(10)
    broker.restart()
    capture = capture_factory(broker)
    async with asyncio.timeout(30):
        while len(connects) < 2:
            await asyncio.sleep(0.05)
    await _wait(capture, lambda _m: capture.last("han2mqtt/bridge/state") == "online")
    publisher.publish(Message("han2mqtt/m/x", "after"))
    await _wait(capture, lambda _m: capture.last("han2mqtt/m/x") == "after")
    assert publisher.stats.connects == 2
    await publisher.stop()


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd missing")
async def test_password_authentication(broker_factory, capture_factory, tmp_path: Path):
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "meter", "s3cret"], check=True)
    passwords.chmod(0o600)
    broker = broker_factory(f"allow_anonymous false\npassword_file {passwords}")
    secret = "s3cret"
    good = MqttPublisher(_settings(broker, username="meter", password=secret))
    await good.start()
    await good.wait_connected(10)
    await good.stop()

    bad = MqttPublisher(_settings(broker, username="meter", password=secret[::-1], client_id="bad"))
    await bad.start()
    with pytest.raises(TimeoutError):
        await bad.wait_connected(2)
    assert bad.stats.last_error is not None
    assert "s3cret" not in (bad.stats.last_error or "")
    await bad.stop()


async def test_tls_with_a_generated_ca(broker_factory, tmp_path: Path):
    certs = make_certificates(tmp_path)
    broker = broker_factory(
        f"allow_anonymous true\ncafile {certs['ca']}\n"
        f"certfile {certs['cert']}\nkeyfile {certs['key']}"
    )
    publisher = MqttPublisher(
        _settings(broker, tls={"enabled": True, "ca_certs": str(certs["ca"])})
    )
    await publisher.start()
    await publisher.wait_connected(10)
    await publisher.stop()

    untrusted = MqttPublisher(_settings(broker, client_id="untrusted", tls={"enabled": True}))
    await untrusted.start()
    with pytest.raises(TimeoutError):
        await untrusted.wait_connected(2)
    await untrusted.stop()


async def test_no_network_thread_and_floods_are_flow_controlled(broker: Broker, capture_factory):
    capture = capture_factory(broker, ("han2mqtt/flood/#",))
    publisher = MqttPublisher(_settings(broker))
    await publisher.start()
    await publisher.wait_connected(10)
    assert "paho-mqtt-client-test-pub" not in {t.name for t in threading.enumerate()}
    most_queued = 0
    for value in range(6000):
        publisher.publish(Message(f"han2mqtt/flood/{value % 24}", str(value)))
        most_queued = max(most_queued, len(publisher._client._out_packet))
        await publisher.drain(high_water=500)
    assert most_queued <= 501  # paho's own queue (unbounded for QoS 0) stayed bounded
    await _wait(capture, lambda _m: capture.last("han2mqtt/flood/23") == "5999")
    await publisher.stop()


async def test_a_silent_broker_is_detected_by_keepalive(broker: Broker, capture_factory):
    publisher = MqttPublisher(_settings(broker, keepalive=5))
    await publisher.start()
    await publisher.wait_connected(10)
    assert broker.process is not None
    broker.process.send_signal(signal.SIGSTOP)  # the TCP connection stays open, nothing answers
    try:
        async with asyncio.timeout(20):
            while publisher.connected:
                await asyncio.sleep(0.1)
    finally:
        broker.process.send_signal(signal.SIGCONT)
    assert publisher.stats.disconnects == 1
    async with asyncio.timeout(30):
        while publisher.stats.connects < 2:
            await asyncio.sleep(0.1)
    capture = capture_factory(broker)
    await _wait(capture, lambda _m: capture.last("han2mqtt/bridge/state") == "online")
    await publisher.stop()


async def test_tls_insecure_skips_only_the_host_name_check(broker_factory, tmp_path: Path):
    certs = make_certificates(tmp_path, server_name="meter-broker.example")  # not 127.0.0.1
    broker = broker_factory(
        f"allow_anonymous true\ncafile {certs['ca']}\n"
        f"certfile {certs['cert']}\nkeyfile {certs['key']}"
    )
    tls = {"enabled": True, "ca_certs": str(certs["ca"])}
    checked = MqttPublisher(_settings(broker, tls=tls))
    await checked.start()
    with pytest.raises(TimeoutError):
        await checked.wait_connected(2)
    assert "match" in (checked.stats.last_error or "") or "certificate" in (
        checked.stats.last_error or ""
    )
    await checked.stop()

    insecure = MqttPublisher(_settings(broker, client_id="insecure", tls={**tls, "insecure": True}))
    await insecure.start()
    await insecure.wait_connected(10)  # the CA still signs it: only the name is not checked
    await insecure.stop()


async def test_stop_during_a_connect_still_delivers_what_was_queued(
    broker: Broker, capture_factory
):
    capture = capture_factory(broker)
    publisher = MqttPublisher(_settings(broker))
    real_reconnect = publisher._client.reconnect

    def slow_reconnect():  # runs in the worker thread: keeps the connect under way a while
        time.sleep(0.3)
        return real_reconnect()

    publisher._client.reconnect = slow_reconnect  # type: ignore[method-assign]
    await publisher.start()
    await asyncio.sleep(0.1)
    assert publisher._connecting is not None
    for value in range(3):
        publisher.publish(Message(f"han2mqtt/m/v{value}", str(value)))
    await publisher.stop()
    await _wait(capture, lambda _m: capture.last("han2mqtt/m/v2") == "2")
    await _wait(capture, lambda _m: capture.last("han2mqtt/bridge/state") == "offline")


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_a_client_id_used_twice_is_named_once(
    broker: Broker, caplog: pytest.LogCaptureFixture, protocol: str
):
    """A replay beside the live bridge with one client id: they throw each other off."""
    settings = _settings(broker, client_id="same-id", protocol=protocol)
    first, second = MqttPublisher(settings), MqttPublisher(settings)
    await first.start()
    await first.wait_connected(10)
    await second.start()
    deadline = time.monotonic() + 40
    named = "another client is connected with the same mqtt.client_id 'same-id'"
    try:
        while named not in caplog.text and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        await second.stop()
        await first.stop()
    assert named in caplog.text
    assert first.stats.disconnects + second.stats.disconnects >= 2
    # Once per episode and publisher: never once per reconnect.
    assert caplog.text.count(named) <= 2


def test_the_takeover_pattern_needs_short_connections_in_a_row():
    now = [0.0]
    watch = _TakeoverWatch(lambda: now[0])
    closed = "connection closed by the broker"

    def connection(seconds: float, cause: str = closed) -> bool:
        watch.connected()
        now[0] += seconds
        return watch.lost(cause)

    assert [connection(1) for _ in range(2)] == [False, False]
    assert not connection(60)  # a long connection: not a takeover, the count starts again
    assert [connection(1) for _ in range(4)] == [False, False, True, False]  # named once
    assert not connection(1, "connection reset by peer")  # another cause: an episode ends
    assert connection(1, "Session taken over")  # MQTT 5 says so: at once
