"""The commands beside the daemon: ``han2mqtt purge`` and ``han2mqtt demo``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from han2mqtt.bridge import PrintPublisher, Publisher
from han2mqtt.config import Settings
from han2mqtt.daemon import run_daemon
from han2mqtt.errors import ConfigError
from han2mqtt.mqtt.discovery import announces, is_ours, removal_messages
from han2mqtt.mqtt.publisher import MqttPublisher
from han2mqtt.simulator import load_samples

__all__ = ["DEMO_BASE_TOPIC", "demo_settings", "purge", "run_demo"]

_LOGGER = logging.getLogger("han2mqtt")


async def purge(settings: Settings, *, listen: float = 2.0) -> int:
    """Delete every retained message han2mqtt created: bridge, meter and discovery topics.

    Retained messages arrive right after subscribing; those on our topics are overwritten with
    empty retained payloads, which makes the broker (and Home Assistant) forget them.
    """
    found: set[str] = set()
    ha = settings.homeassistant
    base = settings.mqtt.base_topic

    def collect(topic: str, payload: bytes, retained: bool) -> None:
        # Only what the broker keeps: live readings of a running daemon are not ours to blank,
        # nor is the discovery of another han2mqtt instance (another base topic).
        if not retained or not payload:
            return
        if topic.startswith(base + "/") or (is_ours(topic, ha) and announces(payload, base)):
            found.add(topic)

    # announce=False: no "online"/"offline" and no last will, so nothing new is left behind.
    # A client id of its own: the broker would disconnect a running daemon that uses the same
    # one (and the daemon, reconnecting, this purge).
    mqtt = settings.mqtt.model_copy(update={"client_id": f"{settings.mqtt.client_id}-purge"})
    publisher = MqttPublisher(mqtt, announce=False)
    publisher.subscribe(f"{settings.mqtt.base_topic}/#", collect)
    publisher.subscribe(f"{ha.prefix}/#", collect)
    await publisher.start()
    await publisher.wait_connected(timeout=10)
    await asyncio.sleep(listen)
    for message in removal_messages(sorted(found)):
        publisher.publish(message)
    await publisher.stop()
    _LOGGER.info("purged %d retained topic(s)", len(found))
    return len(found)


DEMO_BASE_TOPIC = "han2mqtt-demo"
"""The demo's base topic on a real broker: it must never touch a running bridge's topics."""


def demo_settings(mqtt_host: str | None, mqtt_port: int, interval: float) -> Settings:
    """Defaults with the built-in demo source (no configuration file, no environment).

    Printed, the demo shows the topics exactly as ``han2mqtt run`` names them.  On a broker it
    uses its own base topic and client id: a live bridge's ``bridge/state`` set to ``offline``
    by the demo's exit would make all its Home Assistant entities unavailable.
    """
    data: dict[str, Any] = {"source": {"type": "demo", "demo_interval": interval}}
    if mqtt_host is not None:
        data["mqtt"] = {
            "host": mqtt_host,
            "port": mqtt_port,
            "client_id": "han2mqtt-demo",
            "base_topic": DEMO_BASE_TOPIC,
        }
    return Settings.model_validate(data)


async def run_demo(
    mqtt_host: str | None, mqtt_port: int = 1883, interval: float = 0.5, *, forever: bool = False
) -> int:
    """The whole pipeline on the built-in sample frames; printed, or published to a broker.

    Raises:
        ConfigError: ``mqtt_host`` was given but the broker was never reached.
    """
    settings = demo_settings(mqtt_host, mqtt_port, interval)
    publisher: Publisher = (
        MqttPublisher(settings.mqtt) if mqtt_host else PrintPublisher(settings.mqtt.base_topic)
    )
    limit = None if forever else len(load_samples())
    code = await run_daemon(settings, publisher=publisher, frame_limit=limit)
    if isinstance(publisher, MqttPublisher) and publisher.stats.connects == 0:
        reason = publisher.stats.last_error or "no answer"
        raise ConfigError(f"cannot reach the MQTT broker {mqtt_host}:{mqtt_port}: {reason}")
    return code
