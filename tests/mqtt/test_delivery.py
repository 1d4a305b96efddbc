"""Nothing is lost unseen: floods at every QoS, thousands of retained topics, counted loss,
reconnect delays and the causes of failed connections, against a real mosquitto."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from han2mqtt.bridge import Bridge
from han2mqtt.config import MqttSettings, Settings
from han2mqtt.mqtt import publisher as publisher_module
from han2mqtt.mqtt.publisher import MqttPublisher
from han2mqtt.mqtt.topics import Message
from han2mqtt.protocol.hdlc import HdlcFrameReader
from han2mqtt.simulator import load_samples
from tests.conftest import Broker
from tests.tls import make_certificates

pytestmark = [pytest.mark.broker, pytest.mark.integration]

# The broker must not drop messages to the counting subscriber when it lags behind (its default
# is 1,000 queued QoS 1/2 messages per client): the tests count what *we* deliver.
UNLIMITED = "allow_anonymous true\nmax_queued_messages 0"
FIELDS = 24  # messages per frame of a list 2/3 reading, as the bridge publishes them


def _settings(broker: Broker, **changes: object) -> MqttSettings:
    return MqttSettings.model_validate(
        {"host": broker.host, "port": broker.port, "client_id": "test-delivery", **changes}
    )


class Counter:
    """A real subscriber (paho in its own thread) that keeps every payload per topic."""

    def __init__(self, broker: Broker, topic: str, qos: int) -> None:
        self.payloads: list[tuple[str, str, bool]] = []
        self.last = time.monotonic()
        self._lock = threading.Lock()
        subscribed = threading.Event()
        client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        client.max_inflight_messages_set(1000)

        def on_connect(c: paho.Client, _u: object, _f: object, _rc: object, _p: object) -> None:
            c.subscribe(topic, qos=qos)

        def on_subscribe(_c: paho.Client, _u: object, _m: object, _rc: object, _p: object) -> None:
            subscribed.set()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = self._on_message
        client.connect(broker.host, broker.port)
        client.loop_start()
        self.client = client
        assert subscribed.wait(10), "the counting subscriber could not subscribe"

    def _on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.payloads.append((message.topic, message.payload.decode(), bool(message.retain)))
            self.last = time.monotonic()

    def settle(self, quiet: float = 1.0, limit: float = 60) -> None:
        """Wait until nothing arrived for ``quiet`` seconds."""
        deadline = time.monotonic() + limit
        time.sleep(quiet)
        while time.monotonic() - self.last < quiet and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def counter() -> Iterator[Callable[[Broker, str, int], Counter]]:
    counters: list[Counter] = []

    def make(broker: Broker, topic: str, qos: int) -> Counter:
        counters.append(Counter(broker, topic, qos))
        return counters[-1]

    yield make
    for made in counters:
        made.close()


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_a_flood_delivers_every_reading_at_every_qos(
    broker_factory: Callable[..., Broker], counter: Callable[..., Counter], qos: int
):
    broker = broker_factory(UNLIMITED)
    received = counter(broker, "han2mqtt/flood/#", qos)
    publisher = MqttPublisher(_settings(broker, qos=qos, queue_size=100))
    await publisher.start()
    await publisher.wait_connected(10)
    frames = 400  # 9,600 messages: far more than the queue, paho's window and its old limit
    started = time.monotonic()
    for frame in range(frames):
        for field in range(FIELDS):
            publisher.publish(Message(f"han2mqtt/flood/{field}", f"{frame}", qos))
        await publisher.drain()
    await publisher.stop()  # sends what is still queued or in flight first
    elapsed = time.monotonic() - started
    await asyncio.to_thread(received.settle)
    sent = frames * FIELDS
    got = {(topic, payload) for topic, payload, _ in received.payloads}
    print(f"QoS {qos}: {len(got)} of {sent} delivered, {sent / elapsed:,.0f} messages/s")
    assert publisher.stats.dropped == publisher.stats.replaced == 0
    assert publisher.stats.published == sent
    assert len(got) == sent


async def test_thousands_of_retained_topics_are_all_kept(
    broker_factory: Callable[..., Broker], counter: Callable[..., Counter]
):
    broker = broker_factory(UNLIMITED)
    publisher = MqttPublisher(_settings(broker))
    await publisher.start()
    await publisher.wait_connected(10)
    meters = 5000  # a fleet appearing: availability and discovery of each, retained, QoS 1
    for meter in range(meters):
        publisher.publish(Message(f"han2mqtt/m{meter}/availability", "online", 1, retain=True))
        publisher.publish(Message(f"homeassistant/device/m{meter}/config", "{}", 1, retain=True))
        await publisher.drain()
    await publisher.stop()
    late = counter(broker, "#", 1)  # subscribes after the fact: only retained messages come
    await asyncio.to_thread(late.settle)
    retained = {topic for topic, payload, retain in late.payloads if retain and payload}
    assert len(retained) == 2 * meters + 1  # and bridge/state
    assert publisher.stats.dropped == 0


async def test_what_an_outage_replaces_and_drops_is_counted(broker_factory: Callable[..., Broker]):
    broker = broker_factory()
    broker.stop()
    publisher = MqttPublisher(_settings(broker, queue_size=30))
    await publisher.start()
    for frame in range(3):  # before the first connect: each frame replaces the last
        for field in range(FIELDS):
            publisher.publish(Message(f"han2mqtt/m/{field}", str(frame)))
    assert publisher.stats.replaced == 2 * FIELDS
    assert publisher.stats.dropped == 0
    for field in range(FIELDS, 40):  # 16 new topics in a queue of 30 with 24 waiting
        publisher.publish(Message(f"han2mqtt/m/{field}", "x"))
    assert publisher.stats.dropped == 10
    assert publisher.queued == 30
    await publisher.stop()


async def test_the_broker_back_off_stays_short_once_it_was_reachable(
    broker: Broker, caplog: pytest.LogCaptureFixture
):
    # The longest delays the jitter allows: the old back-off would wait 1, 2, 4, 8 s, and a
    # broker back after 8 s would be seen 7 s later.
    publisher = MqttPublisher(_settings(broker), rng=lambda: 1.0)
    await publisher.start()
    await publisher.wait_connected(10)
    assert broker.process is not None
    broker.process.kill()  # a crash: no clean disconnect
    broker.process.wait()
    await _until(lambda: not publisher.connected, 5)
    await asyncio.sleep(8)
    await asyncio.to_thread(broker.start)
    back = time.monotonic()
    await _until(lambda: publisher.connected, 30)
    delay = time.monotonic() - back
    print(f"reconnected {delay:.2f} s after the broker came back")
    await publisher.stop()
    assert delay < 5
    lost = [r.getMessage() for r in caplog.records if "lost the MQTT broker" in r.getMessage()]
    assert len(lost) == 1
    assert "Unspecified error" not in lost[0]
    assert "closed by the broker" in lost[0] or "reset by peer" in lost[0]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("han2mqtt.mqtt")]


async def test_a_broker_that_never_answers_connect_is_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(publisher_module, "_CONNACK_TIMEOUT", 1.0)
    accepted: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts TCP, never says a word
        server.settimeout(10)
        port = server.getsockname()[1]
        publisher = MqttPublisher(
            MqttSettings.model_validate({"host": "127.0.0.1", "port": port, "client_id": "mute"})
        )
        await publisher.start()
        accepted.append((await asyncio.to_thread(server.accept))[0])
        await asyncio.sleep(1.5)
        await publisher.stop()
        for connection in accepted:
            connection.close()
    logged = _warnings(caplog)
    assert any("no CONNACK within 1 s" in line for line in logged), logged
    assert publisher.stats.last_error is not None


async def test_a_tls_listener_that_requires_a_client_certificate_is_logged(
    broker_factory: Callable[..., Broker], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    certs = make_certificates(tmp_path)
    broker = broker_factory(
        f"allow_anonymous true\ncafile {certs['ca']}\ncertfile {certs['cert']}\n"
        f"keyfile {certs['key']}\nrequire_certificate true"
    )
    publisher = MqttPublisher(_settings(broker, tls={"enabled": True, "ca_certs": certs["ca"]}))
    await publisher.start()
    with pytest.raises(TimeoutError):
        await publisher.wait_connected(3)
    await publisher.stop()
    failures = [line for line in _warnings(caplog) if "cannot connect" in line]
    assert len(failures) == 1, failures  # once per outage, not once per attempt
    assert "TLS" in failures[0]
    assert "certificate" in failures[0]


async def test_a_plain_client_on_a_tls_port_is_logged(
    broker_factory: Callable[..., Broker], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    certs = make_certificates(tmp_path)
    broker = broker_factory(
        f"allow_anonymous true\ncafile {certs['ca']}\n"
        f"certfile {certs['cert']}\nkeyfile {certs['key']}"
    )
    publisher = MqttPublisher(_settings(broker))
    await publisher.start()
    with pytest.raises(TimeoutError):
        await publisher.wait_connected(3)
    await publisher.stop()
    failures = [line for line in _warnings(caplog) if "cannot connect" in line]
    assert len(failures) == 1, failures
    assert "before CONNACK" in failures[0]
    assert "TLS" in failures[0]


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd missing")
async def test_a_wrong_password_is_named(
    broker_factory: Callable[..., Broker], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "meter", "right"], check=True)
    broker = broker_factory(f"allow_anonymous false\npassword_file {passwords}")
    publisher = MqttPublisher(_settings(broker, username="meter", password="wrong"))
    await publisher.start()
    with pytest.raises(TimeoutError):
        await publisher.wait_connected(3)
    await publisher.stop()
    assert publisher.stats.last_error is not None
    assert "not authorized" in publisher.stats.last_error.lower()
    assert "mqtt.password" in publisher.stats.last_error
    refused = [line for line in _warnings(caplog) if "refused" in line]
    assert len(refused) == 1, refused
    assert not [line for line in _warnings(caplog) if "before CONNACK" in line]


async def test_bridge_info_counts_readings_replaced_before_the_first_connect(
    broker_factory: Callable[..., Broker],
):
    broker = broker_factory()
    broker.stop()  # not there yet: a start-up flood waits in the queue
    settings = Settings.model_validate(
        {"mqtt": {"host": broker.host, "port": broker.port, "queue_size": 50}}
    )
    publisher = MqttPublisher(settings.mqtt)
    bridge = Bridge(settings, publisher)
    list2 = next(iter(HdlcFrameReader().read(load_samples()[0]))).payload
    for _ in range(3):
        bridge.handle_content(list2)
    mqtt = json.loads(bridge.info_message().payload)["mqtt"]
    assert mqtt["replaced"] == publisher.stats.replaced > 0  # two readings' worth of topics
    assert mqtt["dropped"] == publisher.stats.dropped
