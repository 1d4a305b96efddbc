"""``han2mqtt demo``: the whole pipeline on simulated meters whose clocks move.

Printed (no broker), the demo shows what ``han2mqtt run`` would publish, summarized: one line per
meter and meter hour with the power and the energy counters, one line per discovery message
instead of its kilobytes of JSON; ``--verbose`` prints every message as ``mosquitto_sub -v``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from han2mqtt.bridge import PrintPublisher, Publisher
from han2mqtt.config import Settings
from han2mqtt.daemon import run_daemon
from han2mqtt.errors import ConfigError
from han2mqtt.mqtt.publisher import MqttPublisher
from han2mqtt.mqtt.topics import Message
from han2mqtt.simulator import SIMULATED_ZONE

__all__ = [
    "DEMO_BASE_TOPIC",
    "DEMO_HOURS",
    "DEMO_SPEED",
    "SummaryPublisher",
    "demo_settings",
    "run_demo",
]

DEMO_BASE_TOPIC = "han2mqtt-demo"
"""The demo's base topic on a real broker: it must never touch a running bridge's topics."""
DEMO_SPEED = 1440.0
"""Meter seconds per real second: a day in a minute."""
DEMO_HOURS = 3.0
"""Meter hours the demo runs (about 8 s at the default speed and interval)."""

_SHOWN = (
    ("active_power_import", "import", "W"),
    ("active_power_export", "export", "W"),
    ("energy_import_hour", "this hour", "kWh"),
    ("energy_import_last_hour", "last hour", "kWh"),
    ("energy_import_today", "today", "kWh"),
    ("tariff_tier", "tariff tier", ""),
)


def demo_settings(  # noqa: PLR0913 - the command's options
    mqtt_host: str | None,
    mqtt_port: int,
    interval: float,
    *,
    web: bool = False,
    speed: float = DEMO_SPEED,
    hours: float | None = DEMO_HOURS,
    discovery: bool | None = None,
) -> Settings:
    """Defaults with the built-in demo source (no configuration file, no environment).

    Printed, the demo shows the topics exactly as ``han2mqtt run`` names them.  On a broker it
    uses its own base topic and client id: a live bridge's ``bridge/state`` set to ``offline``
    by the demo's exit would make all its Home Assistant entities unavailable; and it sends no
    Home Assistant discovery unless asked (``discovery``), so that no simulated meter appears
    among the real devices.  The status page is served only by a demo that runs until stopped
    (``web``): a few seconds' page is no use.  The simulated meters keep Norwegian time, and
    the capacity tariff is the Norwegian one.
    """
    data: dict[str, Any] = {
        "source": {
            "type": "demo",
            "demo_interval": interval,
            "demo_speed": speed,
            "demo_hours": hours,
        },
        "meter": {"timezone": str(SIMULATED_ZONE)},
        "tariff": {"preset": "no"},
        "web": {"enabled": web},
    }
    if mqtt_host is not None:
        data["mqtt"] = {
            "host": mqtt_host,
            "port": mqtt_port,
            "client_id": "han2mqtt-demo",
            "base_topic": DEMO_BASE_TOPIC,
        }
        data["homeassistant"] = {"discovery": bool(discovery)}
    return Settings.model_validate(data)


class SummaryPublisher(PrintPublisher):
    """Prints a readable digest of what would be published (see the module's docstring)."""

    def __init__(self, base_topic: str, write: Callable[[str], object] = sys.stdout.write) -> None:
        super().__init__(base_topic, write)
        self._print = write
        self._hours: set[tuple[str, str]] = set()
        self.topics: set[str] = set()
        self._discovered: set[str] = set()

    def publish(self, message: Message) -> None:
        """Print the message, or its summary, or only count it (a field topic)."""
        self.topics.add(message.topic)
        line = self._summary(message)
        if line is None:
            self.stats.published += 1
            return
        try:
            self._print(line + "\n")
        except BrokenPipeError:
            self.reader_gone = True
            raise
        self.stats.published += 1

    def _summary(self, message: Message) -> str | None:
        payload = str(message.payload)
        if message.topic.endswith("/config"):
            if message.topic in self._discovered:
                return None  # sent again as new values appear: the first one is enough
            self._discovered.add(message.topic)
            size = len(payload.encode()) / 1000
            count = len(_json(payload).get("cmps", {}))
            what = f"{count} entities, " if count else ""
            return f"{message.topic}: discovery ({what}{size:.1f} kB; --verbose shows it)"
        if message.topic.endswith("/state") and payload.startswith("{"):
            return self._state(message.topic, _json(payload))
        parts = message.topic.split("/")
        if (len(parts) == 3 and parts[2] in ("state", "availability", "info")) or len(parts) == 2:
            return f"{message.topic} {_shorten(payload)}" + (
                " (retained)" if message.retain else ""
            )
        return None

    def _state(self, topic: str, state: dict[str, Any]) -> str | None:
        meter_time = str(state.get("meter_time", ""))
        hour = meter_time[:13]
        if not hour or (topic, hour) in self._hours:
            return None
        self._hours.add((topic, hour))
        shown = [
            f"{label} {state[name]}{' ' + unit if unit else ''}"
            for name, label, unit in _SHOWN
            if name in state
        ]
        return f"{topic} {meter_time[11:19]}  " + ", ".join(shown)

    def summary(self) -> str:
        """The closing line: how much was published, and how to see all of it."""
        return (
            f"{self.stats.published} messages on {len(self.topics)} topics (one line per meter and "
            "meter hour above; --verbose prints every message)"
        )


def _json(payload: str) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _shorten(payload: str, limit: int = 120) -> str:
    return payload if len(payload) <= limit else payload[: limit - 1] + "…"


async def run_demo(  # noqa: PLR0913 - the command's options
    mqtt_host: str | None,
    mqtt_port: int = 1883,
    interval: float = 0.1,
    *,
    forever: bool = False,
    speed: float = DEMO_SPEED,
    hours: float = DEMO_HOURS,
    verbose: bool = False,
    discovery: bool = False,
) -> int:
    """The whole pipeline on the simulated meters; printed, or published to a broker.

    Raises:
        ConfigError: ``mqtt_host`` was given but the broker was never reached.
    """
    settings = demo_settings(
        mqtt_host,
        mqtt_port,
        interval,
        web=forever,
        speed=speed,
        hours=None if forever else hours,
        discovery=discovery,
    )
    base = settings.mqtt.base_topic
    publisher: Publisher
    if mqtt_host:
        publisher = MqttPublisher(settings.mqtt)
    else:
        publisher = PrintPublisher(base) if verbose else SummaryPublisher(base)
    code = await run_daemon(settings, publisher=publisher)
    if isinstance(publisher, MqttPublisher) and publisher.stats.connects == 0:
        reason = publisher.stats.last_error or "no answer"
        raise ConfigError(f"cannot reach the MQTT broker {mqtt_host}:{mqtt_port}: {reason}")
    if isinstance(publisher, SummaryPublisher) and not publisher.reader_gone:
        sys.stdout.write(publisher.summary() + "\n")
    return code
