"""MQTT topics and payloads of readings (pure functions; CONVENTIONS.md "MQTT topics").

=====================================  ==========================================  ========
topic                                  payload                                     retained
=====================================  ==========================================  ========
``<base>/bridge/state``                ``online`` / ``offline`` (also the will)    yes
``<base>/bridge/info``                 JSON: version, source, meters, counters     yes
``<base>/<meter>/availability``        ``online`` / ``offline``                    yes
``<base>/<meter>/state``               JSON: the normalized reading + timestamp    config
``<base>/<meter>/<field>``             plain value of one field                    config
``<base>/<meter>/obis/<A-B:C.D.E.F>``  plain value of one OBIS object as sent      config
=====================================  ==========================================  ========
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final

from han2mqtt.config import MqttSettings, PublishSettings
from han2mqtt.model import FieldValue, MeterReading

__all__ = [
    "JSON_FIELDS",
    "OFFLINE",
    "ONLINE",
    "UNSCALED",
    "Message",
    "availability_topic",
    "bridge_info_topic",
    "bridge_state_topic",
    "field_topic",
    "format_value",
    "messages_for_reading",
    "obis_topic",
    "state_topic",
    "topic_segment",
]

ONLINE: Final = "online"
OFFLINE: Final = "offline"
UNSCALED: Final = "unscaled"
"""State JSON key: OBIS code → raw number of the values no source scales (no field of theirs)."""
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.:\-]")


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publication."""

    topic: str
    payload: str
    qos: int = 0
    retain: bool = False


@lru_cache(maxsize=256)
def topic_segment(text: str) -> str:
    """Make a meter id safe as one topic level (no ``/``, ``+``, ``#``, spaces or NUL)."""
    return _UNSAFE.sub("_", text) or "_"


def bridge_state_topic(base: str) -> str:
    """``<base>/bridge/state``."""
    return f"{base}/bridge/state"


def bridge_info_topic(base: str) -> str:
    """``<base>/bridge/info``."""
    return f"{base}/bridge/info"


def availability_topic(base: str, meter: str) -> str:
    """``<base>/<meter>/availability``."""
    return f"{base}/{topic_segment(meter)}/availability"


def state_topic(base: str, meter: str) -> str:
    """``<base>/<meter>/state``."""
    return f"{base}/{topic_segment(meter)}/state"


def field_topic(base: str, meter: str, field: str) -> str:
    """``<base>/<meter>/<field>``."""
    return f"{base}/{topic_segment(meter)}/{field}"


def obis_topic(base: str, meter: str, code: str) -> str:
    """``<base>/<meter>/obis/<A-B:C.D.E.F>``."""
    return f"{base}/{topic_segment(meter)}/obis/{code}"


def format_value(value: FieldValue) -> str:
    """A plain payload: ``1362``, ``9.3``, ``7359992890941742``; never ``9.300000000000001``.

    Values are already the nearest doubles to their decimal values (see ``meters.normalize``), so
    ``repr`` prints the short decimal form.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


JSON_FIELDS: Final = frozenset({"tariff_peaks"})
"""Fields whose value is JSON text: a JSON value in the state JSON, the text on a field topic."""


def messages_for_reading(  # noqa: PLR0913 - the reading, where it goes, and how
    reading: MeterReading,
    meter: str,
    received_at: datetime,
    mqtt: MqttSettings,
    publish: PublishSettings,
    *,
    derived: Mapping[str, FieldValue] | None = None,
    derived_fields: Mapping[str, FieldValue] | None = None,
) -> list[Message]:
    """The messages one reading becomes, per the enabled topic families.

    ``derived`` values (the energy stage's) join the reading's fields in the state JSON and as
    field topics; they have no OBIS code.  ``derived_fields``, when given, are the derived values
    that go to field topics (the bridge sends only those that changed); the state JSON has all.
    """
    fields = {**reading.fields, **derived} if derived else reading.fields
    if derived_fields is not None:
        field_values = {**reading.fields, **derived_fields} if derived_fields else reading.fields
    else:
        field_values = fields
    qos, retain = mqtt.qos, mqtt.retain
    # The topics of field_topic() and obis_topic(), with the meter's prefix built once per
    # reading rather than once per message (a reading becomes some 25 messages).
    prefix = f"{mqtt.base_topic}/{topic_segment(meter)}/"
    messages: list[Message] = []
    if publish.state:
        state: dict[str, object] = {**fields, "timestamp": received_at.isoformat()}
        for name in JSON_FIELDS.intersection(state):
            state[name] = json.loads(str(state[name]))
        if reading.unscaled:  # raw numbers whose scaling no source states: listed, not fields
            state[UNSCALED] = {code: reading.obis[code] for code in reading.unscaled}
        payload = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
        messages.append(Message(prefix + "state", payload, qos, retain.state))
    if publish.fields:
        messages.extend(
            Message(prefix + name, format_value(value), qos, retain.fields)
            for name, value in field_values.items()
        )
    if publish.obis:
        obis_prefix = prefix + "obis/"
        messages.extend(
            Message(obis_prefix + code, format_value(value), qos, retain.obis)
            for code, value in reading.obis.items()
        )
    return messages
