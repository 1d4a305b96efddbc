"""What the status page knows: the bridge's counters, and per meter its readings and their past.

:class:`LiveView` is one of the bridge's reading listeners.  Per reading it stores a reference,
merges the derived values (a dict update), appends one power sample to a ring and tells the event
hub that the meter changed; everything else (JSON, HTML, metrics) is computed when a client asks,
so frame handling does not pay for a page nobody looks at.  Nothing here imports aiohttp.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from han2mqtt._version import __version__
from han2mqtt.bridge import Bridge
from han2mqtt.io import ConnectionManager
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.web.history import HourBars, PowerRing

__all__ = ["HISTORY_MINUTES", "MAX_METERS", "LiveView", "MeterView"]

_LOGGER = logging.getLogger("han2mqtt")
HISTORY_MINUTES: Final = 60
"""The power series kept: at one sample a second, 3,600 samples (86 kB) per meter."""
MAX_METERS: Final = 32
"""Meters the page follows (a fleet bridge has more; the first 32 seen): 32 x 86 kB at most."""
_POWER_IMPORT, _POWER_EXPORT = "active_power_import", "active_power_export"
_LAST_HOUR, _LAST_HOUR_START = "energy_import_last_hour", "energy_import_last_hour_start"


@dataclass(slots=True)
class MeterView:
    """One meter as the page shows it (the merged reading itself lives in the bridge's tracker)."""

    meter_id: str
    stamp: datetime | None = None
    derived: dict[str, FieldValue] = field(default_factory=dict)
    history: PowerRing = field(default_factory=lambda: PowerRing(HISTORY_MINUTES * 60))
    hours: HourBars = field(default_factory=HourBars)
    export: float | None = None
    """The newest export power (W) any frame carried; lists without it leave it standing."""


class LiveView:
    """The bridge seen from the status page.

    Args:
        bridge: the daemon's bridge (its counters, tracker and publisher are read, never changed).
        source: the source's connection manager, for its error and reconnect counters.
        clock: monotonic seconds, as the bridge's.
        versions: more components to name beside han2mqtt and Python.
        description: the source in a few words (``tcp 192.0.2.7:8899``); else its type.
    """

    def __init__(
        self,
        bridge: Bridge,
        source: ConnectionManager | None = None,
        clock: Callable[[], float] = time.monotonic,
        versions: dict[str, str] | None = None,
        description: str | None = None,
    ) -> None:
        self.bridge = bridge
        self.description = description or bridge.settings.source.type
        self.source = source
        self._clock = clock
        self.meters: dict[str, MeterView] = {}
        self.ignored = 0
        """Readings of meters beyond :data:`MAX_METERS` (not shown)."""
        self.failures = 0
        """Readings the page failed to take (a bug of ours): counted, logged once, never raised."""
        self.on_change: Callable[[str], None] | None = None
        self.versions = {"han2mqtt": __version__, "python": platform.python_version()}
        self.versions.update(versions or {})

    # -- the listener: the only part that runs per frame ----------------------------------------

    def on_reading(
        self,
        meter_id: str,
        reading: MeterReading,
        derived: dict[str, FieldValue],
        stamp: datetime,
    ) -> None:
        """Remember a published reading (a :data:`~han2mqtt.bridge.ReadingListener`).

        It runs inside the bridge's frame handling: whatever goes wrong here must cost the page,
        never the bridge, so every exception is caught, counted and logged (the first one).
        """
        try:
            self._record(meter_id, reading, derived, stamp)
        except Exception:  # the status page must never take the bridge down
            self.failures += 1
            if self.failures == 1:
                _LOGGER.exception("status page: a reading could not be shown")

    def _record(
        self,
        meter_id: str,
        reading: MeterReading,
        derived: dict[str, FieldValue],
        stamp: datetime,
    ) -> None:
        meter = self.meters.get(meter_id)
        if meter is None:
            if len(self.meters) >= MAX_METERS:
                self.ignored += 1
                return
            meter = self.meters[meter_id] = MeterView(meter_id)
        meter.stamp = stamp
        if derived:
            meter.derived.update(derived)
            start, kwh = derived.get(_LAST_HOUR_START), derived.get(_LAST_HOUR)
            if isinstance(start, str) and isinstance(kwh, int | float):
                meter.hours.add(start, float(kwh))
        _net_power(meter, reading.fields)
        fields = reading.fields
        power_import, power_export = fields.get(_POWER_IMPORT), fields.get(_POWER_EXPORT)
        if isinstance(power_import, int | float) or isinstance(power_export, int | float):
            meter.history.add(stamp.timestamp(), _number(power_import), _number(power_export))
        if self.on_change is not None:
            self.on_change(meter_id)

    # -- JSON for the API, the events and the page ------------------------------------------------

    def bridge_json(self) -> dict[str, Any]:
        """Source, MQTT and decoder state and counters; never a secret."""
        bridge = self.bridge
        settings = bridge.settings
        published = bridge.publisher.stats
        age = bridge.tracker.last_frame_age()
        return {
            "versions": self.versions,
            "uptime": round(self._clock() - bridge.started, 1),
            "source": self._source_json(),
            "mqtt": {
                "broker": f"{settings.mqtt.host}:{settings.mqtt.port}",
                "connected": bridge.publisher.connected,
                "published": published.published,
                "dropped": published.dropped,
                "reconnects": max(0, published.connects - 1),
                "last_error": published.last_error,
            },
            "frames": bridge.frames,
            "decoded": bridge.decoder.stats.decoded,
            "decode_errors": bridge.decode_errors,
            "errors_by_kind": dict(sorted(bridge.errors_by_kind.items())),
            "held_back": bridge.held_back,
            "last_frame_age": None if age is None else round(age, 1),
        }

    def _source_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "type": self.bridge.settings.source.type,
            "address": self.description,
            "state": self.bridge.source_state,
        }
        if self.bridge.source_counters:  # the MQTT relay source's drops, by kind
            found["counters"] = dict(self.bridge.source_counters)
        if self.source is not None:
            stats = self.source.stats
            found.update(
                connects=stats.connects,
                failures=stats.connection_failures,
                disconnects=stats.disconnects,
                watchdog_timeouts=stats.watchdog_timeouts,
                last_error=stats.last_error,
            )
        return found

    def rejects_json(self) -> list[dict[str, Any]]:
        """The last rejected frames, newest first, with their content in hex."""
        return [
            {
                "time": reject.time.isoformat(timespec="seconds"),
                "kind": reject.kind,
                "reason": reject.reason,
                "length": reject.length,
                "hex": reject.content.hex(),
            }
            for reject in reversed(self.bridge.rejects)
        ]

    def meter_json(self, meter_id: str) -> dict[str, Any]:
        """One meter: its merged reading, derived values, availability and today's hours."""
        meter = self.meters[meter_id]
        state = self.bridge.tracker.meters.get(meter_id)
        reading = state.last_reading if state is not None else None
        date, hours = meter.hours.day(_today(meter))
        newest = meter.history.newest()
        return {
            "id": meter_id,
            "online": state.online if state is not None else False,
            "frames": state.frames if state is not None else 0,
            "manufacturer": state.manufacturer if state is not None else None,
            "type": state.meter_type if state is not None else None,
            "layout": reading.layout if reading is not None else None,
            "received": None if meter.stamp is None else meter.stamp.isoformat(),
            "fields": _finite(reading.fields) if reading is not None else {},
            "derived": _finite(meter.derived),
            "hours": {"date": date, "kwh": [[hour, round(kwh, 4)] for hour, kwh in hours]},
            "sample": None if newest is None else list(newest),
        }

    def state_json(self) -> dict[str, Any]:
        """``/api/state``: the bridge, its last rejected frames and every meter."""
        return {
            "bridge": self.bridge_json(),
            "rejects": self.rejects_json(),
            "meters": {meter_id: self.meter_json(meter_id) for meter_id in self.meters},
        }

    def history_json(self, minutes: int) -> dict[str, Any]:
        """``/api/history``: each meter's power samples of the last ``minutes`` (by its clock).

        The window ends at the meter's newest sample, not at this host's clock: a replayed
        recording or a Pi without time sync still shows its last minutes.
        """
        found: dict[str, Any] = {}
        for meter_id, meter in self.meters.items():
            newest = meter.history.newest()
            if newest is None:
                continue
            samples = meter.history.since(newest[0] - minutes * 60)
            found[meter_id] = {
                "t": [round(when, 1) for when, _, _ in samples],
                "import": [power for _, power, _ in samples],
                "export": [power for _, _, power in samples],
            }
        return {"minutes": minutes, "meters": found}


def _net_power(meter: MeterView, fields: dict[str, FieldValue]) -> None:
    """``power_net`` from the newest import and the newest export, whichever lists carried them.

    A meter's short list (Aidon and Kaifa list 1) carries import only: the energy stage leaves
    ``power_net`` out of it, so the page would pair this frame's import with the net of the last
    full list (import 512 W beside a net of 1672 W).  The page pairs the newest of each instead;
    a meter that never sent export power counts its export as 0.
    """
    exported = fields.get(_POWER_EXPORT)
    if isinstance(exported, int | float):
        meter.export = float(exported)
    imported = fields.get(_POWER_IMPORT)
    if isinstance(imported, int | float):
        net = float(imported) - (meter.export or 0.0)
        meter.derived["power_net"] = int(net) if net.is_integer() else round(net, 3)


def _number(value: FieldValue | None) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _finite(values: dict[str, FieldValue]) -> dict[str, FieldValue | None]:
    """JSON has no NaN or infinity (a float register may hold one): those become null."""
    return {
        name: None if isinstance(value, float) and not math.isfinite(value) else value
        for name, value in values.items()
    }


def _today(meter: MeterView) -> str | None:
    """The meter's date (``meter_time`` of the energy stage), else that of its newest hour."""
    meter_time = meter.derived.get("meter_time")
    return meter_time[:10] if isinstance(meter_time, str) and len(meter_time) >= 10 else None
