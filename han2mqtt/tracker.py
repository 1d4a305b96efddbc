"""Which meter a reading belongs to, and whether each meter is still sending (pure, clock injected).

List 1 frames carry no meter id: they are attributed to the id learned from the last full list
(2 or 3), but only when that meter is of the same manufacturer and list family
(:func:`may_attribute`); a frame of another kind waits for a list of its own that names it.
A meter is *online* while frames arrive and *offline* after ``offline_after`` seconds of
silence; the tracker reports each transition once, so the daemon publishes availability as a
state change, never per frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from han2mqtt.model import FieldValue, MeterReading

__all__ = ["UNKNOWN_METER", "MeterState", "MeterTracker", "may_attribute", "reading_family"]

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
    family: tuple[str, str] | None = None
    """:func:`reading_family` of the last list that named this meter."""


def reading_family(reading: MeterReading) -> tuple[str, str]:
    """``(manufacturer, layout)``: what an id-less list shares with the lists of its own meter.

    The layout (``aidon``, ``kaifa``, ``kamstrup``, ``p1``, ...) is the list family the decoder
    recognised; the manufacturer comes from the list itself (its list identifier or layout).
    """
    manufacturer = reading.fields.get("meter_manufacturer")
    return ("" if manufacturer is None else str(manufacturer), reading.layout)


def may_attribute(state: MeterState | None, reading: MeterReading) -> bool:
    """Whether an id-less ``reading`` (list 1) may be published as ``state``'s meter.

    Only a meter whose last list that named it has the same manufacturer and list family: an
    Aidon list 1 never lands on a Kaifa meter's topics because the Kaifa spoke last.
    """
    return state is not None and state.family == reading_family(reading)


class MeterTracker:
    """Attribute readings to meters and follow their availability.

    Args:
        offline_after: seconds of silence after which a meter is offline.
        meter_id: a configured id that overrides the one in the frames (``meter.id``).
        clock: monotonic time source (seconds); injectable for tests.
        max_meters: how many meters are remembered (``meter.max_meters``); a new one beyond
            that evicts the longest-offline meter, else the one seen least recently.
        on_evict: told of each evicted meter before it is forgotten.
    """

    def __init__(
        self,
        offline_after: float,
        meter_id: str | None,
        clock: Callable[[], float],
        max_meters: int | None = None,
        on_evict: Callable[[MeterState], None] | None = None,
    ) -> None:
        self._offline_after = offline_after
        self._configured = meter_id
        self._clock = clock
        self._max_meters = max_meters
        self._on_evict = on_evict
        self._learned: str | None = None
        self.meters: dict[str, MeterState] = {}
        self.evicted = 0

    def observe(
        self, reading: MeterReading, fallback: str | None = None
    ) -> tuple[MeterState, bool, bool]:
        """Record a reading; return its meter, whether it came online, and whether it is new.

        "New" also covers a meter that starts sending OBIS codes it has not sent before (the
        hourly list 3 adds energy registers), so discovery can be completed.  ``fallback`` is
        the meter of a reading without an id when its source knows better than "the last id
        seen" (one MQTT topic per meter, many meters).
        """
        meter_id = self.resolve(reading, fallback) or UNKNOWN_METER
        if reading.meter_id and not self._configured:
            self._learned = reading.meter_id
        now = self._clock()
        state = self.meters.get(meter_id)
        is_new = state is None
        if state is None:
            self._make_room()
            state = self.meters[meter_id] = MeterState(meter_id, now)
        if reading.meter_id:
            state.family = reading_family(reading)
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
        return self.resolve(reading, fallback) or UNKNOWN_METER

    def resolve(self, reading: MeterReading, fallback: str | None = None) -> str | None:
        """The meter id ``reading`` is published under, or None.

        An id-less reading (list 1) goes to ``fallback`` when its source knows its meter (one
        MQTT topic per meter), else to the meter learned last if :func:`may_attribute` allows;
        None when it does not.
        """
        if self._configured:
            return self._configured
        if reading.meter_id:
            return reading.meter_id
        if fallback:
            return fallback
        if self._learned is None:
            return UNKNOWN_METER
        return self._learned if may_attribute(self.meters.get(self._learned), reading) else None

    def _make_room(self) -> None:
        """Forget one meter if a new one would exceed ``max_meters``."""
        if self._max_meters is None or len(self.meters) < self._max_meters:
            return
        # Offline before online, then the longest silent: O(n), only when a new meter comes.
        victim = min(self.meters.values(), key=lambda state: (state.online, state.last_seen))
        if self._on_evict is not None:
            self._on_evict(victim)
        del self.meters[victim.meter_id]
        self.evicted += 1

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
        return replace(reading, sub_readings=[]) if reading.sub_readings else reading
    return MeterReading(
        {**previous.fields, **reading.fields},
        {**previous.obis, **reading.obis},
        {**previous.units, **reading.units},
        {**previous.field_obis, **reading.field_obis},
        reading.layout,
        parent=reading.parent or previous.parent,
        unscaled=(*(c for c in previous.unscaled if c not in reading.obis), *reading.unscaled),
    )
