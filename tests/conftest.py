"""Fixtures shared by the whole suite: a real mosquitto broker on a free port, and MQTT capture."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@dataclass
class Broker:
    """A mosquitto process with its own configuration, restartable on the same port."""

    directory: Path
    port: int
    extra: str = ""
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"

    def start(self) -> None:
        assert MOSQUITTO is not None
        conf = self.directory / "mosquitto.conf"
        conf.write_text(
            # Run as the current user: as root, mosquitto would switch to "mosquitto", which
            # cannot read the test's private temporary directory.
            f"user {getpass.getuser()}\n"
            f"listener {self.port} 127.0.0.1\n"
            f"persistence true\npersistence_location {self.directory}/\n"
            f"{self.extra or 'allow_anonymous true'}\n"
        )
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "log").open("ab"),
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (scripts/test.sh installs it)")
    brokers: list[Broker] = []

    def make(extra: str = "") -> Broker:
        directory = tmp_path / f"broker{len(brokers)}"
        directory.mkdir()
        broker = Broker(directory, free_port(), extra)
        broker.start()
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def broker(broker_factory: Callable[..., Broker]) -> Broker:
    return broker_factory()


@dataclass
class Capture:
    """Everything published on the subscribed topics, with thread-safe waiting."""

    messages: list[tuple[str, str, bool]] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)

    def add(self, topic: str, payload: str, retained: bool) -> None:
        with self.lock:
            self.messages.append((topic, payload, retained))
            self.lock.notify_all()

    def wait_for(
        self, predicate: Callable[[list[tuple[str, str, bool]]], bool], timeout: float = 15
    ) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    topics = sorted({t for t, _, _ in self.messages})
                    raise AssertionError(
                        f"condition not met in {timeout} s; topics seen: {topics[:40]}"
                    )
                self.lock.wait(remaining)

    def last(self, topic: str) -> str | None:
        with self.lock:
            for seen, payload, _ in reversed(self.messages):
                if seen == topic:
                    return payload
        return None

    def count(self, topic: str) -> int:
        with self.lock:
            return sum(1 for seen, _, _ in self.messages if seen == topic)

    def wait_value(self, topic: str, value: str, timeout: float = 15) -> None:
        self.wait_for(lambda _m: self.last(topic) == value, timeout)

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


@pytest.fixture
def capture_factory() -> Iterator[Callable[..., Capture]]:
    clients: list[paho.Client] = []

    def make(broker: Broker, topics: tuple[str, ...] = ("#",)) -> Capture:
        """A subscriber of ``topics``, returned once the broker has acknowledged them.

        Non-retained messages published before that would be missed: the test would race.
        """
        capture = Capture()
        client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        subscribed = threading.Event()

        def on_connect(c: paho.Client, _u: object, _f: object, _rc: object, _p: object) -> None:
            c.subscribe([(topic, 1) for topic in topics])

        def on_subscribe(_c: paho.Client, _u: object, _m: object, _rc: object, _p: object) -> None:
            subscribed.set()

        def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
            capture.add(
                message.topic, message.payload.decode(errors="replace"), bool(message.retain)
            )

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect_async(broker.host, broker.port)
        client.reconnect_delay_set(1, 2)
        client.loop_start()
        clients.append(client)
        if not subscribed.wait(15):
            raise AssertionError(f"capture could not subscribe at {broker.host}:{broker.port}")
        return capture

    yield make
    for client in clients:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def config_environment_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``HAN2MQTT_`` variable, no systemd credentials, no secret directory: a config file's
    content alone decides the settings (for tests that load documented examples)."""
    for name in list(os.environ):
        if name.upper().startswith("HAN2MQTT_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.setattr("han2mqtt.config.SECRET_DIRECTORIES", ())
