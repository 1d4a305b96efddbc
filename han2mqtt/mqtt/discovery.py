"""Home Assistant MQTT discovery payloads (pure functions; CONVENTIONS.md "Home Assistant").

One sensor per value the meter sends: every normalized field, and every OBIS object that has no
field name.  Each sensor reads its own plain topic (``<base>/<meter>/<field>`` or the OBIS topic),
which only carries a value when a frame had one: a list 1 frame therefore never blanks the
voltages, and nothing publishes 0 for a value that was not decoded.

* ``unique_id`` = ``han2mqtt_<meter id>_<OBIS code>``: from the meter and the OBIS code, never
  from a name, so it never changes.
* ``default_entity_id`` = ``sensor.han2mqtt_<meter id>_<field>``: a full, valid entity id.
* Availability: the bridge state and the meter's availability, ``avty_mode: all``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from han2mqtt._version import __version__
from han2mqtt.config import HomeAssistantSettings, MqttSettings
from han2mqtt.meters.normalize import field_for
from han2mqtt.model import MeterReading
from han2mqtt.mqtt.topics import (
    Message,
    availability_topic,
    bridge_state_topic,
    field_topic,
    obis_topic,
)
from han2mqtt.protocol.obis import parse_obis

__all__ = [
    "DERIVED_CLASSES",
    "SUB_METER_CLASSES",
    "SensorClass",
    "announces",
    "device_topic",
    "discovery_messages",
    "is_ours",
    "node_id",
    "parse_discovery",
    "removal_messages",
    "retained_components",
    "sensor_class",
]

ORIGIN: Final = {
    "name": "han2mqtt",
    "sw": __version__,
}
_ENTITY_UNSAFE: Final = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True, slots=True)
class SensorClass:
    """How Home Assistant should treat a quantity (Energy dashboard needs these exactly)."""

    device_class: str | None
    state_class: str | None
    unit: str | None
    diagnostic: bool = False


_BY_KIND: Final = {
    "power": SensorClass("power", "measurement", "W"),
    "reactive_power": SensorClass("reactive_power", "measurement", "var"),
    "energy": SensorClass("energy", "total_increasing", "kWh"),
    # HA's reactive_energy device class exists only since 2025.6; an older HA (device discovery
    # came in 2024.12) rejects the whole entity for it.  kvarh with no device class is accepted.
    "reactive_energy": SensorClass(None, "total_increasing", "kvarh"),
    "apparent_power": SensorClass("apparent_power", "measurement", "VA"),
    "current": SensorClass("current", "measurement", "A"),
    "voltage": SensorClass("voltage", "measurement", "V"),
    # Our power factor is a ratio 0..1; HA's power_factor class accepts no unit for that.
    "power_factor": SensorClass("power_factor", "measurement", None),
    "text": SensorClass(None, None, None, diagnostic=True),
}
_STATE: Final = SensorClass(None, None, None)
_STATUS: Final = SensorClass(None, None, None, diagnostic=True)
_DISTRIBUTOR: Final = SensorClass("energy", "total_increasing", "kWh")
FIELD_CLASSES: Final = {
    "current_tariff": _STATE,
    "current_tariff_index": _STATE,
    "tempo_today": _STATE,
    "tempo_tomorrow": _STATE,
    "breaker": _STATUS,
    "dry_contact": _STATUS,
    **{f"active_power_import_total_distributor_t{n}": _DISTRIBUTOR for n in (1, 2, 3, 4)},
}
"""Normalized fields that come from no OBIS code (TIC's tariff period, Tempo colours, status
register, distributor registers): keyed by their name, which never changes either."""


_ENERGY_TOTAL: Final = SensorClass("energy", "total_increasing", "kWh")
_ENERGY_NOW: Final = SensorClass("energy", None, "kWh")
_TIMESTAMP: Final = SensorClass("timestamp", None, None, diagnostic=True)
DERIVED_CLASSES: Final = {
    "meter_time": _TIMESTAMP,
    **{
        name.format(direction): klass
        for direction in ("import", "export")
        for name, klass in (
            # The live counter: the Energy dashboard's sensor.
            ("energy_{}", _ENERGY_TOTAL),
            # Interval energy resets each hour / day: total_increasing, because HA's statistics
            # take a drop of a total_increasing sensor as a new cycle and count it from zero.
            ("energy_{}_hour", _ENERGY_TOTAL),
            ("energy_{}_today", _ENERGY_TOTAL),
            # One value per hour, up or down: no long-term statistics of its own.
            ("energy_{}_last_hour", _ENERGY_NOW),
            ("energy_{}_last_hour_start", _TIMESTAMP),
        )
    },
    "power_net": SensorClass("power", "measurement", "W"),
    **{f"phase_load_l{n}": SensorClass(None, "measurement", "%") for n in (1, 2, 3)},
    "tariff_window_energy": _ENERGY_TOTAL,
    "tariff_window_projection": _ENERGY_NOW,
    "tariff_peaks": SensorClass(None, None, None),
    "tariff_average": SensorClass("power", "measurement", "kW"),
    "tariff_tier": SensorClass(None, None, None),
    "tariff_headroom": _ENERGY_NOW,
    "tariff_headroom_power": SensorClass("power", "measurement", "W"),
    # The unit is the tariff's currency (ISO 4217), as HA's monetary class wants it.
    "tariff_capacity_cost": SensorClass("monetary", "total", None),
}
"""Home Assistant classes of the energy stage's values (CONVENTIONS.md names)."""
SUB_METER_CLASSES: Final = {
    "gas_total": SensorClass("gas", "total_increasing", "m³"),
    "water_total": SensorClass("water", "total_increasing", "m³"),
    "heat_total": SensorClass("energy", "total_increasing", "GJ"),
    "cooling_total": SensorClass("energy", "total_increasing", "GJ"),
}
"""The Energy dashboard's classes of the totals of gas, water and heat meters behind a P1 port."""
_PEAKS_TEMPLATES: Final = (
    # The state: the peaks' kWh ("3.1 / 2.9 / 2.5"); the attributes: the whole list.
    ("val_tpl", "{{ value_json | map(attribute='kwh') | join(' / ') }}"),
    ("json_attr_tpl", "{{ {'peaks': value_json} | tojson }}"),
)


def sensor_class(code: str) -> SensorClass:
    """The sensor class of a normalized field, by the OBIS code it came from."""
    known = field_for(parse_obis(code))
    if known is None:
        return SensorClass(None, None, None)
    return _BY_KIND[known[1].kind]


def node_id(meter: str) -> str:
    """``han2mqtt_<meter>``: the discovery node and device identifier."""
    return "han2mqtt_" + _entity_part(meter)


def _entity_part(text: str) -> str:
    return _ENTITY_UNSAFE.sub("_", text.lower()).strip("_") or "x"


def _title(name: str) -> str:
    return (
        name.replace("_", " ")
        .capitalize()
        .replace(" l1", " L1")
        .replace(" l2", " L2")
        .replace(" l3", " L3")
    )


def _device(meter: str, manufacturer: str | None, meter_type: str | None) -> dict[str, Any]:
    device: dict[str, Any] = {
        "ids": [node_id(meter)],
        "name": " ".join(p for p in (manufacturer, meter_type, "meter", meter) if p),
        "sn": meter,
    }
    if manufacturer:
        device["mf"] = manufacturer
    if meter_type:
        device["mdl"] = meter_type
    return device


@dataclass(frozen=True, slots=True)
class _Sensor:
    key: str
    name: str
    topic: str
    code: str
    object_id: str
    klass: SensorClass
    unit: str | None
    extra: tuple[tuple[str, str], ...] = ()


def money_classes(currency: str) -> dict[str, SensorClass]:
    """Home Assistant classes of the money values (CONVENTIONS.md "Published money values").

    Prices are ``<currency>/kWh`` without a device class (HA's ``monetary`` class takes only a
    currency as unit), so ``price_import`` serves as the Energy dashboard's "entity with the
    current price"; costs and revenues are ``monetary`` totals in the currency.
    """
    price = SensorClass(None, "measurement", f"{currency}/kWh")
    money = SensorClass("monetary", "total", currency)
    return {
        "price_spot": price,
        "price_import": price,
        "price_export": price,
        "cost_hour": money,
        "cost_last_hour": money,
        "cost_last_hour_start": _TIMESTAMP,
        "cost_today": money,
        "cost_month": money,
        "revenue_today": money,
        "revenue_month": money,
        "cost_gas_today": money,
        "cost_gas_month": money,
    }


def _derived_sensors(
    meter: str, names: Iterable[str], mqtt: MqttSettings, currency: str | None = None
) -> list[_Sensor]:
    """Sensors of the derived values; keyed by name (they have no OBIS code)."""
    sensors = []
    classes = (
        DERIVED_CLASSES if currency is None else {**DERIVED_CLASSES, **money_classes(currency)}
    )
    for name in names:
        klass = classes.get(name)
        if klass is None:
            continue
        topic = field_topic(mqtt.base_topic, meter, name)
        extra: tuple[tuple[str, str], ...] = ()
        if name == "tariff_peaks":
            extra = (*_PEAKS_TEMPLATES, ("json_attr_t", topic))
        if klass.device_class == "monetary" and currency is None:
            continue  # HA rejects money without its currency (the cost needs one anyway)
        unit = currency if klass.device_class == "monetary" else klass.unit
        sensors.append(_Sensor(name, _title(name), topic, "", name, klass, unit, extra))
    return sensors


def _named_sensors(meter: str, reading: MeterReading, base: str) -> list[_Sensor]:
    """Sensors of the fields of :data:`FIELD_CLASSES` (no OBIS code): keyed by the field name."""
    sensors = []
    for field in reading.fields:
        known = FIELD_CLASSES.get(field)
        if known is not None and field not in reading.field_obis:
            topic = field_topic(base, meter, field)
            sensors.append(_Sensor(field, _title(field), topic, "", field, known, known.unit))
    return sensors


def _sensors(meter: str, reading: MeterReading, mqtt: MqttSettings, *, obis: bool) -> list[_Sensor]:
    base = mqtt.base_topic
    sensors = []
    for field, code in reading.field_obis.items():
        klass = sensor_class(code)
        sub = SUB_METER_CLASSES.get(field)
        if sub is not None:
            # A sub-meter's total, in the unit its telegram states (heat: GJ or kWh).
            klass = SensorClass(sub.device_class, sub.state_class, reading.units.get(code))
        sensors.append(
            _Sensor(
                _entity_part(code),
                _title(field),
                field_topic(base, meter, field),
                code,
                field,
                klass,
                klass.unit,
            )
        )
    sensors += _named_sensors(meter, reading, base)
    if obis:
        named = set(reading.field_obis.values())
        for code in reading.obis:
            if code in named:
                continue
            unit = reading.units.get(code)
            numeric = not isinstance(reading.obis[code], str)
            klass = SensorClass(
                None, "measurement" if numeric else None, unit, diagnostic=not numeric
            )
            object_id = "obis_" + _entity_part(code)
            sensors.append(
                _Sensor(
                    _entity_part(code),
                    f"OBIS {code}",
                    obis_topic(base, meter, code),
                    code,
                    object_id,
                    klass,
                    unit,
                )
            )
    return sensors


def _component(sensor: _Sensor, meter: str) -> dict[str, Any]:
    unique = f"{node_id(meter)}_{sensor.key}"
    component: dict[str, Any] = {
        "p": "sensor",
        "name": sensor.name,
        "uniq_id": unique,
        "default_entity_id": f"sensor.{node_id(meter)}_{_entity_part(sensor.object_id)}",
        "stat_t": sensor.topic,
    }
    klass = sensor.klass
    if klass.device_class:
        component["dev_cla"] = klass.device_class
    if klass.state_class:
        component["stat_cla"] = klass.state_class
    if sensor.unit:
        component["unit_of_meas"] = sensor.unit
    if klass.diagnostic:
        component["ent_cat"] = "diagnostic"
    component.update(sensor.extra)
    return component


def _availability(meter: str, mqtt: MqttSettings) -> dict[str, Any]:
    return {
        "avty": [
            {"t": bridge_state_topic(mqtt.base_topic)},
            {"t": availability_topic(mqtt.base_topic, meter)},
        ],
        "avty_mode": "all",
    }


def discovery_messages(  # noqa: PLR0913 - the sections it reads, and two options
    meter: str,
    reading: MeterReading,
    mqtt: MqttSettings,
    homeassistant: HomeAssistantSettings,
    *,
    obis: bool = True,
    keep: Mapping[str, Any] | None = None,
    derived: Iterable[str] = (),
    currency: str | None = None,
) -> list[Message]:
    """Discovery for one meter: one device message, or one message per entity in entity mode.

    Args:
        meter: the meter's topic id (its serial number unless configured).
        reading: the meter's current state (fields and OBIS values seen so far).
        mqtt: the ``mqtt`` section (base topic, QoS).
        homeassistant: the ``homeassistant`` section (prefix, mode).
        obis: include sensors for OBIS objects without a field name (their topics are on).
        keep: components of the device message the broker already holds (see
            :func:`retained_components`); they stay in it beside the ones this reading brings.
        derived: names of the derived values (the energy stage's) published for the meter.
        currency: the unit of the money values: the prices' currency, else ``tariff.currency``.
    """
    manufacturer = reading.fields.get("meter_manufacturer")
    meter_type = reading.fields.get("meter_type")
    device = _device(meter, _str(manufacturer), _str(meter_type))
    if reading.parent is not None:
        device["via_device"] = node_id(reading.parent)  # a sub-meter behind that meter's port
    sensors = _sensors(meter, reading, mqtt, obis=obis) + _derived_sensors(
        meter, derived, mqtt, currency
    )
    prefix = homeassistant.prefix
    if homeassistant.mode == "device":
        payload = {
            "dev": device,
            "o": ORIGIN,
            **_availability(meter, mqtt),
            "qos": mqtt.qos,
            "cmps": {
                **(keep or {}),
                **{sensor.key: _component(sensor, meter) for sensor in sensors},
            },
        }
        return [Message(device_topic(meter, homeassistant), _json(payload), 1, retain=True)]
    messages = []
    for sensor in sensors:
        component = _component(sensor, meter)
        del component["p"]
        payload = {
            **component,
            "dev": device,
            "o": ORIGIN,
            **_availability(meter, mqtt),
            "qos": mqtt.qos,
        }
        topic = f"{prefix}/sensor/{node_id(meter)}/{_entity_part(sensor.object_id)}/config"
        messages.append(Message(topic, _json(payload), 1, retain=True))
    return messages


def removal_messages(topics: Iterable[str]) -> list[Message]:
    """Empty retained payloads that delete retained messages (``han2mqtt purge``)."""
    return [Message(topic, "", 1, retain=True) for topic in topics]


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def device_topic(meter: str, homeassistant: HomeAssistantSettings) -> str:
    """``<prefix>/device/han2mqtt_<meter>/config``: a meter's device discovery topic."""
    return f"{homeassistant.prefix}/device/{node_id(meter)}/config"


DISCOVERY_MAX = 256 * 1024
"""Octets of a retained discovery message we read back; ours are a few kB per meter."""
_CONTAINERS_MAX = 4096
"""JSON objects and arrays in it; ours have about two per sensor.  This also bounds the nesting,
which would otherwise end in a ``RecursionError`` inside ``json.loads``."""


def parse_discovery(payload: bytes) -> dict[str, Any] | None:
    """A retained discovery payload as a JSON object, or None for anything else.

    The payload comes from the broker, where anyone may have written it: too large, too many
    (or too deeply nested) containers, not JSON or not an object are all None, never an error.
    """
    if len(payload) > DISCOVERY_MAX or payload.count(b"{") + payload.count(b"[") > _CONTAINERS_MAX:
        return None
    try:
        config = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return config if isinstance(config, dict) else None


def retained_components(
    payload: bytes, base_topic: str, topic: str | None = None
) -> dict[str, Any] | None:
    """The components of a device discovery message this instance published, else None.

    A restarted daemon knows only the values it has seen since; the broker still holds the
    discovery of the last run (with, say, the energy registers of the hourly list).  Keeping
    those components avoids publishing a smaller device until the hourly list comes again.

    Only components we could have written are kept: a sensor whose unique id is
    ``<node>_<key>`` (the node named by ``topic``, ``<prefix>/device/<node>/config``) and whose
    state topic is below ``base_topic``.  Anything else someone put there is not adopted (it
    would be re-published by us for ever).
    """
    config = parse_discovery(payload)
    if config is None or not _announces(config, base_topic):
        return None
    components = config.get("cmps")
    if not isinstance(components, dict):
        return None
    node = topic.split("/")[-2] if topic is not None and topic.count("/") >= 2 else None
    return {
        key: value
        for key, value in components.items()
        if isinstance(value, dict) and _our_component(key, value, node, base_topic)
    }


def _our_component(key: str, component: dict[str, Any], node: str | None, base: str) -> bool:
    unique = component.get("uniq_id")
    state = component.get("stat_t")
    return (
        component.get("p") == "sensor"
        and isinstance(unique, str)
        and (unique == f"{node}_{key}" if node is not None else unique.startswith("han2mqtt_"))
        and _entity_part(key) == key
        and isinstance(state, str)
        and state.startswith(base + "/")
    )


def announces(payload: bytes, base_topic: str) -> bool:
    """True if a discovery payload's availability is this instance's ``<base>/bridge/state``.

    Several bridges (one per meter, or a test instance) can share a broker; each owns the
    discovery whose availability points at its own base topic.
    """
    config = parse_discovery(payload)
    return config is not None and _announces(config, base_topic)


def _announces(config: dict[str, Any], base_topic: str) -> bool:
    availability = config.get("avty")
    if not isinstance(availability, list):
        return False
    mine = bridge_state_topic(base_topic)
    return any(isinstance(entry, dict) and entry.get("t") == mine for entry in availability)


def is_ours(topic: str, homeassistant: HomeAssistantSettings) -> bool:
    """True for discovery topics han2mqtt creates (used by purge to pick retained messages)."""
    prefix = homeassistant.prefix + "/"
    if not topic.startswith(prefix):
        return False
    parts = topic[len(prefix) :].split("/")
    return (
        len(parts) >= 3
        and parts[1].startswith("han2mqtt_")
        and parts[-1] == "config"
        and (parts[0] in ("device", "sensor"))
    )
