"""Which meter a reading belongs to, and whether each meter is still sending (pure, clock injected).

List 1 frames carry no meter id: they are attributed to the id learned from the last full list
(2 or 3).  A meter is *online* while frames arrive and *offline* after ``offline_after`` seconds of
silence; the tracker reports each transition once, so the daemon publishes availability as a
state change, never per frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from han2mqtt.model import FieldValue, MeterReading

__all__ = ["UNKNOWN_METER", "MeterState", "MeterTracker"]

UNKNOWN_METER: Final = "unknown"
"""Topic segment for frames that arrive before any frame has named the meter."""


@dataclass(slots=True)
class MeterState:
    """What the daemon knows about one meter."""

    meter_id: str
    last_seen: float
    online: bool = True
    last_reading: MeterReading | None = None
    frames: int = 0
    meter_type: str | None = None
    manufacturer: str | None = None
    obis_seen: set[str] = field(default_factory=set)
    """OBIS codes this meter has sent; a new one means discovery must be sent again."""
    derived_seen: set[str] = field(default_factory=set)
    """Derived values (the energy stage's) published for this meter; likewise."""
    last_derived: dict[str, FieldValue] = field(default_factory=dict)
    """The newest of every derived value, re-sent with ``last_reading``."""


class MeterTracker:
    """Attribute readings to meters and follow their availability.

    Args:
        offline_after: seconds of silence after which a meter is offline.
        meter_id: a configured id that overrides the one in the frames (``meter.id``).
        clock: monotonic time source (seconds); injectable for tests.
    """

    def __init__(
        self, offline_after: float, meter_id: str | None, clock: Callable[[], float]
    ) -> None:
        self._offline_after = offline_after
        self._configured = meter_id
        self._clock = clock
        self._learned: str | None = None
        self.meters: dict[str, MeterState] = {}

    def observe(
        self, reading: MeterReading, fallback: str | None = None
    ) -> tuple[MeterState, bool, bool]:
        """Record a reading; return its meter, whether it came online, and whether it is new.

        "New" also covers a meter that starts sending OBIS codes it has not sent before (the
        hourly list 3 adds energy registers), so discovery can be completed.  ``fallback`` is
        the meter of a reading without an id when its source knows better than "the last id
        seen" (one MQTT topic per meter, many meters).
        """
        meter_id = self._resolve(reading, fallback)
        now = self._clock()
        state = self.meters.get(meter_id)
        is_new = state is None
        if state is None:
            state = self.meters[meter_id] = MeterState(meter_id, now)
        came_online = not state.online or is_new
        state.online = True
        state.last_seen = now
        state.frames += 1
        state.last_reading = _merge(state.last_reading, reading)
        meter_type = reading.fields.get("meter_type")
        if meter_type is not None:
            state.meter_type = str(meter_type)
        manufacturer = reading.fields.get("meter_manufacturer")
        if manufacturer is not None:
            state.manufacturer = str(manufacturer)
        fresh_codes = reading.obis.keys() - state.obis_seen
        state.obis_seen |= fresh_codes
        return state, came_online, is_new or bool(fresh_codes)

    def meter_for(self, reading: MeterReading, fallback: str | None = None) -> str:
        """The meter a reading belongs to (what :meth:`observe` will file it under)."""
        return self._resolve(reading, fallback)

    def _resolve(self, reading: MeterReading, fallback: str | None) -> str:
        if self._configured:
            return self._configured
        if reading.meter_id:
            self._learned = reading.meter_id
            return reading.meter_id
        return fallback or self._learned or UNKNOWN_METER

    def expire(self) -> list[MeterState]:
        """Mark meters silent for too long as offline; return those that just went offline."""
        now = self._clock()
        gone = []
        for state in self.meters.values():
            if state.online and now - state.last_seen > self._offline_after:
                state.online = False
                gone.append(state)
        return gone

    def last_frame_age(self) -> float | None:
        """Seconds since the newest frame of any meter, None before the first frame."""
        if not self.meters:
            return None
        return self._clock() - max(state.last_seen for state in self.meters.values())


def _merge(previous: MeterReading | None, reading: MeterReading) -> MeterReading:
    """The meter's current state: the newest value of every field any recent list carried.

    A list 1 frame carries only active power; the state re-sent after discovery must still hold
    the voltages and energy totals of the last list 2/3.
    """
    if previous is None:
        return reading
    return MeterReading(
        {**previous.fields, **reading.fields},
        {**previous.obis, **reading.obis},
        {**previous.units, **reading.units},
        {**previous.field_obis, **reading.field_obis},
        reading.layout,
    )
