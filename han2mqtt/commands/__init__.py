"""The commands beside the daemon: ``han2mqtt purge`` here, one module per other command.

``han2mqtt demo`` is :mod:`han2mqtt.commands.demo` (its names are re-exported here, where they
were first).  New commands get a module of their own in this package.
"""

from __future__ import annotations

import asyncio
import logging
import time

from han2mqtt.commands.demo import DEMO_BASE_TOPIC, demo_settings, run_demo
from han2mqtt.config import Settings
from han2mqtt.errors import TransportError
from han2mqtt.mqtt.discovery import announces, is_ours, removal_messages
from han2mqtt.mqtt.publisher import MqttPublisher

__all__ = ["DEMO_BASE_TOPIC", "PurgeIncompleteError", "demo_settings", "purge", "run_demo"]

_LOGGER = logging.getLogger("han2mqtt")


_QUIET = 1.0
"""Seconds without a new retained message after which the broker has sent them all."""
_LISTEN_MAX = 120.0


class PurgeIncompleteError(TransportError):
    """Retained messages were still there after the removals (and one retry)."""


async def purge(settings: Settings, *, listen: float = 2.0) -> int:
    """Delete every retained message han2mqtt created: bridge, meter and discovery topics.

    Retained messages arrive right after subscribing; those on our topics are overwritten with
    empty retained payloads, which makes the broker (and Home Assistant) forget them.  Then the
    subscriptions are renewed, which makes the broker send what it still retains: a topic that
    still holds what was removed is removed once more, and if it is there after that too, the
    purge fails.  (A running bridge may publish some of its topics again meanwhile: new
    payloads are reported, not failures.)

    Returns:
        the number of topics removed.

    Raises:
        TimeoutError: the broker did not answer.
        TransportError: the broker could not be reached or refused us (the cause is said).
        PurgeIncompleteError: retained messages were still there after a retry.
    """
    # announce=False: no "online"/"offline" and no last will, so nothing new is left behind.
    # A client id of its own: the broker would disconnect a running daemon that uses the same
    # one (and the daemon, reconnecting, this purge).
    mqtt = settings.mqtt.model_copy(update={"client_id": f"{settings.mqtt.client_id}-purge"})
    publisher = MqttPublisher(mqtt, announce=False)
    retained = _RetainedReader(settings, publisher)
    await publisher.start()
    try:
        await _connect(publisher, settings)
        found = await retained.read(listen)
        removed = set(found)
        for attempt in (1, 2):
            if not found:
                break
            if attempt > 1:
                _LOGGER.warning("%d retained topic(s) still there; removing again", len(found))
            for message in removal_messages(sorted(found)):
                publisher.publish(message)
                await publisher.drain()
            await publisher.flush()
            still = await retained.read(listen)
            found = {t: p for t, p in still.items() if found.get(t) == p}
            _report_republished(set(still) - set(found))
    finally:
        await publisher.stop()
    if found:
        example = min(found)
        raise PurgeIncompleteError(
            f"{len(found)} retained topic(s) are still on the broker after the purge"
            f" (for example {example})"
        )
    _LOGGER.info("purged %d retained topic(s)", len(removed))
    return len(removed)


async def _connect(publisher: MqttPublisher, settings: Settings) -> None:
    try:
        await publisher.wait_connected(timeout=10)
    except TimeoutError as exc:
        reason = publisher.stats.last_error
        if reason is None:
            raise
        where = f"{settings.mqtt.host}:{settings.mqtt.port}"
        raise TransportError(f"cannot connect to the MQTT broker {where}: {reason}") from exc


def _report_republished(topics: set[str]) -> None:
    if topics:
        _LOGGER.warning(
            "%d retained topic(s) were published again during the purge (is a bridge running?)",
            len(topics),
        )


class _RetainedReader:
    """What the broker retains on our topics, read by (re)subscribing."""

    def __init__(self, settings: Settings, publisher: MqttPublisher) -> None:
        self._ha = settings.homeassistant
        self._base = settings.mqtt.base_topic
        self._publisher = publisher
        self._found: dict[str, bytes] = {}
        self._last = 0.0
        self._filters = (f"{self._base}/#", f"{self._ha.prefix}/#")
        for topic_filter in self._filters:
            publisher.subscribe(topic_filter, self._collect)

    def _collect(self, topic: str, payload: bytes, retained: bool) -> None:
        # Only what the broker keeps: live readings of a running daemon are not ours to blank,
        # nor is the discovery of another han2mqtt instance (another base topic).
        if not retained or not payload:
            return
        if topic.startswith(self._base + "/") or (
            is_ours(topic, self._ha) and announces(payload, self._base)
        ):
            self._found[topic] = payload
            self._last = time.monotonic()

    async def read(self, listen: float) -> dict[str, bytes]:
        """Subscribe again and collect until the broker has been quiet for a moment.

        At least ``listen`` seconds: the first retained message may take that long to come.
        """
        self._found = {}
        start = self._last = time.monotonic()
        for topic_filter in self._filters:  # the broker sends its retained messages again
            self._publisher.subscribe(topic_filter, self._collect)
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            quiet = now - self._last >= _QUIET and now - start >= listen
            if quiet or now - start >= _LISTEN_MAX:
                return dict(self._found)
