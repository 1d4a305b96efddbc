"""``/metrics``: the bridge in Prometheus text format, read when scraped.

A custom collector reads the live counters at scrape time instead of updating metric objects per
frame, so frame handling costs nothing for it.  Names follow Prometheus conventions: base units
in the name (``_watts``, ``_volts``), counters end in ``_total``; energy stays in kWh, the unit
meters and Home Assistant use.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from han2mqtt.io import ConnectionState
from han2mqtt.model import FieldValue
from han2mqtt.web.hub import EventHub
from han2mqtt.web.view import LiveView

__all__ = ["BridgeCollector", "registry_for"]

_GAUGES = (
    ("active_power_import", "han2mqtt_meter_power_import_watts", "Active power import (W)"),
    ("active_power_export", "han2mqtt_meter_power_export_watts", "Active power export (W)"),
    ("power_net", "han2mqtt_meter_power_net_watts", "Import minus export (W)"),
    (
        "apparent_power_import",
        "han2mqtt_meter_apparent_power_import_volt_amperes",
        "Apparent power import (VA; a Linky's TIC sends no active power)",
    ),
    (
        "apparent_power_export",
        "han2mqtt_meter_apparent_power_export_volt_amperes",
        "Apparent power export (VA)",
    ),
)
_PHASES = (
    ("current_l", "han2mqtt_meter_current_amperes", "Phase current (A)"),
    ("voltage_l", "han2mqtt_meter_voltage_volts", "Phase voltage (V)"),
    ("phase_load_l", "han2mqtt_meter_phase_load_percent", "Phase current, % of the main fuse"),
)
_ENERGY = (
    ("energy_import", "active_power_import_total", "han2mqtt_meter_energy_import_kwh"),
    ("energy_export", "active_power_export_total", "han2mqtt_meter_energy_export_kwh"),
)


class BridgeCollector(Collector):
    """Counters of the bridge, its source and MQTT, each meter's latest values, and the page's."""

    def __init__(self, view: LiveView, hub: EventHub | None = None) -> None:
        self._view = view
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        """Every metric, read now."""
        yield from self._bridge()
        yield from self._meters()
        yield from self._page()

    def _page(self) -> Iterator[Metric]:
        yield _counter(
            "han2mqtt_web_failures", "Readings the status page failed to take", self._view.failures
        )
        if self._hub is not None:
            hub = self._hub
            yield _gauge("han2mqtt_web_event_streams", "Open event streams", len(hub.clients))
            yield _counter(
                "han2mqtt_web_event_streams_dropped",
                "Event streams dropped (not read)",
                hub.dropped,
            )
            yield _counter(
                "han2mqtt_web_event_streams_refused",
                "Event streams refused (too many)",
                hub.refused,
            )

    def _bridge(self) -> Iterator[Metric]:
        view = self._view
        bridge = view.bridge
        stats = bridge.publisher.stats
        yield _counter("han2mqtt_frames", "Frames received from the source", bridge.frames)
        yield _counter("han2mqtt_decoded", "Frames decoded", bridge.decoder.stats.decoded)
        errors = CounterMetricFamily(
            "han2mqtt_decode_errors", "Frames that could not be decoded, by kind", labels=["kind"]
        )
        for kind, count in sorted(bridge.errors_by_kind.items()):
            errors.add_metric([kind], count)
        yield errors
        yield _counter(
            "han2mqtt_held_back", "Frames held back without a meter id", bridge.held_back
        )
        connected = bridge.source_state == ConnectionState.CONNECTED.value
        yield _gauge("han2mqtt_source_connected", "1 while the source is connected", connected)
        if view.source is not None:
            source = view.source.stats
            yield _counter("han2mqtt_source_connects", "Source connections made", source.connects)
            yield _counter(
                "han2mqtt_source_reconnects",
                "Source connections lost or failed",
                source.disconnects + source.connection_failures,
            )
            yield _counter(
                "han2mqtt_source_watchdog_timeouts",
                "Source connections closed for silence",
                source.watchdog_timeouts,
            )
        yield _gauge(
            "han2mqtt_mqtt_connected",
            "1 while the broker is connected",
            view.bridge.publisher.connected,
        )
        yield _counter("han2mqtt_mqtt_published", "MQTT messages published", stats.published)
        yield _counter("han2mqtt_mqtt_dropped", "MQTT messages dropped (queue full)", stats.dropped)
        yield _counter(
            "han2mqtt_mqtt_reconnects", "Broker reconnections", max(0, stats.connects - 1)
        )
        age = bridge.tracker.last_frame_age()
        if age is not None:
            yield _gauge("han2mqtt_last_frame_age_seconds", "Seconds since the last frame", age)

    def _meters(self) -> Iterator[Metric]:
        view = self._view
        online = GaugeMetricFamily(
            "han2mqtt_meter_online", "1 while frames arrive", labels=["meter"]
        )
        frames = CounterMetricFamily(
            "han2mqtt_meter_frames", "Readings per meter", labels=["meter"]
        )
        gauges = [GaugeMetricFamily(name, text, labels=["meter"]) for _, name, text in _GAUGES]
        phases = [
            GaugeMetricFamily(name, text, labels=["meter", "phase"]) for _, name, text in _PHASES
        ]
        energy = [
            CounterMetricFamily(
                name, "Energy counter (kWh): the live one, else the register", labels=["meter"]
            )
            for _, _, name in _ENERGY
        ]
        for meter_id, meter in view.meters.items():
            state = view.bridge.tracker.meters.get(meter_id)
            if state is None or state.last_reading is None:
                continue
            values: dict[str, FieldValue] = {**state.last_reading.fields, **meter.derived}
            online.add_metric([meter_id], float(state.online))
            frames.add_metric([meter_id], state.frames)
            for family, (key, _, _) in zip(gauges, _GAUGES, strict=True):
                _add(family, [meter_id], values.get(key))
            for family, (prefix, _, _) in zip(phases, _PHASES, strict=True):
                for phase in "123":
                    _add(family, [meter_id, f"L{phase}"], values.get(f"{prefix}{phase}"))
            for counter, (live, register, _) in zip(energy, _ENERGY, strict=True):
                _add(counter, [meter_id], values.get(live, values.get(register)))
        yield online
        yield frames
        yield from gauges
        yield from phases
        yield from energy


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=float(value))


def _add(family: GaugeMetricFamily | CounterMetricFamily, labels: list[str], value: object) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        family.add_metric(labels, float(value))


def registry_for(view: LiveView, hub: EventHub | None = None) -> CollectorRegistry:
    """A registry of our own (not the process-wide default) with the bridge and the process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(view, hub))
    ProcessCollector(registry=registry)
    return registry
