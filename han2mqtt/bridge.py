"""The bridge's decisions: frame content → reading → MQTT messages, discovery and availability.

Nothing here owns the event loop: :class:`Bridge` is driven by :mod:`han2mqtt.daemon` (frames,
broker events, a once-a-second :meth:`Bridge.expire`) and by tests with a fake clock.  It decodes
with an :class:`~han2mqtt.autodecoder.AutoDecoder`, keeps the per-meter state in a
:class:`~han2mqtt.tracker.MeterTracker`, and hands every message to a :class:`Publisher`.
"""

from __future__ import annotations

import heapq
import json
import logging
import sys
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from functools import cached_property
from typing import Any, Protocol

from han2mqtt._version import __version__
from han2mqtt.autodecoder import AutoDecoder
from han2mqtt.config import Settings, TariffSeason, TariffSettings, TariffWeight
from han2mqtt.energy import (
    PRESETS,
    WEEKDAYS,
    EnergyEngine,
    EnergyParameters,
    EnergyResult,
    GuardEvent,
    LedgerInterval,
    SeasonPrice,
    TariffModel,
    Verdict,
    Weight,
    decode_state,
    encode_state,
)
from han2mqtt.energy.calendar import PublicHolidays
from han2mqtt.energy.clock import parse_meter_time
from han2mqtt.energy.resolution import (
    Decision,
    ResolutionJudge,
    assumed_resolution,
    rescaled,
)
from han2mqtt.energy.volume import VolumeLedger
from han2mqtt.errors import DecodeError
from han2mqtt.io import ConnectionState
from han2mqtt.logsafe import loggable
from han2mqtt.meters import kamstrup
from han2mqtt.meters.submeter import SUB_METER_FIELDS
from han2mqtt.model import (
    FIELD_ACTIVE_POWER_IMPORT,
    FIELD_ACTIVE_POWER_IMPORT_TOTAL,
    FIELD_METER_DATETIME,
    FIELD_METER_TYPE,
    FieldValue,
    MeterReading,
)
from han2mqtt.money import Money, currency_of, gas_costs
from han2mqtt.mqtt.discovery import (
    device_topic,
    discovery_messages,
    removal_messages,
    retained_components,
)
from han2mqtt.mqtt.publisher import Handler, PublisherStats
from han2mqtt.mqtt.topics import (
    OFFLINE,
    ONLINE,
    Message,
    availability_topic,
    bridge_info_topic,
    bridge_state_topic,
    messages_for_reading,
)
from han2mqtt.tracker import UNKNOWN_METER, MeterState, MeterTracker

__all__ = [
    "MAX_ENERGY_METERS",
    "METER_ID_GRACE",
    "Bridge",
    "PrintPublisher",
    "Publisher",
    "ReadingListener",
    "Rejected",
    "energy_parameters",
    "tariff_model",
    "utc_zone_warning",
]

_LOGGER = logging.getLogger("han2mqtt")
METER_ID_GRACE = 30.0
"""Seconds to hold back id-less frames (list 1) waiting for a list that names the meter."""
_DECODE_LOG_INTERVAL = 300.0
_INFO_MIN_INTERVAL = 1.0
"""Seconds between two ``bridge/info`` updates at most: a flapping source does not storm."""
MAX_ENERGY_METERS = 256
"""Meters whose energy state is kept; beyond, the one silent the longest is forgotten."""
_GUARD_WORDS = {
    Verdict.BACKWARDS: "went backwards",
    Verdict.TOO_FAST: "rose faster than meter.max_power allows",
}
INFO_METERS_MAX = 10
"""Meters ``bridge/info`` describes one by one (the most recently seen); beyond, counts only."""

REJECTS_KEPT = 8
"""The last rejected frames kept for the status page's diagnostics."""
REJECT_OCTETS_KEPT = 1024
"""Octets kept of each rejected frame: enough for any list, bounded for a flood of garbage."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A frame the decoder refused: when (UTC), the error's class and message, its first octets."""

    time: datetime
    kind: str
    reason: str
    content: bytes
    length: int


ReadingListener = Callable[[str, MeterReading, dict[str, FieldValue], datetime], None]
"""``(meter id, reading, derived values, receive time)`` of every reading the bridge publishes."""


class Publisher(Protocol):
    """What the bridge needs of the MQTT side: :class:`MqttPublisher` or :class:`PrintPublisher`."""

    stats: PublisherStats

    @property
    def connected(self) -> bool:
        """Whether messages go out now."""
        ...

    async def start(self) -> None:
        """Begin publishing."""
        ...

    async def stop(self) -> None:
        """Publish ``offline`` and stop."""
        ...

    def publish(self, message: Message) -> None:
        """Publish or queue one message."""
        ...

    def subscribe(self, topic: str, callback: Handler) -> None:
        """Receive messages on ``topic``."""
        ...

    async def drain(self, high_water: int = ...) -> None:
        """Wait until the outgoing backlog is small."""
        ...


@dataclass(slots=True)
class _SourceState:
    """What the bridge keeps per source topic (MQTT relays): its decoder and its meter."""

    decoder: AutoDecoder
    first_frame: float
    meter_id: str | None = None
    """The id of the last reading from this topic that named its meter (for list 1 frames)."""


class PrintPublisher:
    """Print what would be published, one ``topic payload`` line each (as ``mosquitto_sub -v``)."""

    def __init__(self, base_topic: str, write: Callable[[str], object] = sys.stdout.write) -> None:
        self._base = base_topic
        self._write = write
        self.stats = PublisherStats()
        self.reader_gone = False
        """True once a write found the pipe closed (``han2mqtt demo | head``)."""

    @property
    def connected(self) -> bool:
        """Always: printing never fails."""
        return True

    async def start(self) -> None:
        """Print what a connect publishes."""
        self.publish(Message(bridge_state_topic(self._base), ONLINE, 1, retain=True))

    async def stop(self) -> None:
        """Print what a clean disconnect publishes (unless the reader has gone: ``| head``)."""
        if not self.reader_gone:
            self.publish(Message(bridge_state_topic(self._base), OFFLINE, 1, retain=True))

    def publish(self, message: Message) -> None:
        """Print the message.

        Raises:
            BrokenPipeError: the reader of the output went away; the command exits quietly.
        """
        retained = " (retained)" if message.retain else ""
        try:
            self._write(f"{message.topic} {message.payload}{retained}\n")
        except BrokenPipeError:
            self.reader_gone = True
            raise
        self.stats.published += 1

    def subscribe(self, topic: str, callback: Handler) -> None:
        """Nobody sends anything to a printer."""

    async def drain(self, high_water: int = 0) -> None:
        """Printing has no backlog."""


class Bridge:
    """Turns frame contents into MQTT messages; owns the per-meter state.

    Args:
        settings: the configuration.
        publisher: where messages go.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self._clock = clock
        encryption_key, authentication_key = settings.meter.key_bytes()
        self.decoder = AutoDecoder(
            settings.meter.type,
            encryption_key=encryption_key,
            authentication_key=authentication_key,
        )
        self.tracker = MeterTracker(
            settings.meter.offline_after,
            settings.meter.id,
            clock,
            max_meters=settings.meter.max_meters,
            on_evict=self._evicted,
        )
        self._last_evict_log = -_DECODE_LOG_INTERVAL
        self._evicted_since_log = 0
        self._sources: OrderedDict[str, _SourceState] = OrderedDict()
        """Source topic → its decoder state; the default source ("") uses :attr:`decoder`."""
        self.source_counters: dict[str, int] = {}
        """Counters of the source (malformed payloads by kind, ...), shown in ``bridge/info``."""
        self.frames = 0
        self.decode_errors = 0
        self.bad_checksum = 0
        """Frames the source's readers rejected (bad FCS/HCS, CRC or checksum, cut short)."""
        self._bad_checksum_logged = 0
        self._last_checksum_log = -_DECODE_LOG_INTERVAL
        self._info_changed = True
        self._next_info = clock()
        self._last_info = -_INFO_MIN_INTERVAL
        self.held_back = 0
        self.internal_errors = 0
        """Frames (and housekeeping steps) lost to a bug: an exception the daemon survived."""
        self.source_state = ConnectionState.CLOSED.value
        self.started = clock()
        self._first_frame: float | None = None
        self._last_frame: float | None = None
        self._last_decode_log = -_DECODE_LOG_INTERVAL
        self._errors_since_log = 0
        self._last_note_log = -_DECODE_LOG_INTERVAL
        self._retained_components: dict[str, dict[str, Any]] = {}
        """Device discovery topic → the components the broker held for it at start-up."""
        self._published_components: dict[str, set[str]] = {}
        """Device discovery topic → the component keys this run last published there."""
        self.on_frame: Callable[[], None] | None = None
        self._init_energy_stage(settings)
        self._zone_checked = False
        self.listeners: list[ReadingListener] = []
        """Called with every published reading (the status page, tests); never for held frames."""
        self.rejects: deque[Rejected] = deque(maxlen=REJECTS_KEPT)
        self.errors_by_kind: Counter[str] = Counter()
        """Decode errors by exception class name (``ChecksumError``, ``DecryptionError`` ...)."""

    def _init_energy_stage(self, settings: Settings) -> None:
        """The energy, resolution and money stages' state (part of :meth:`__init__`)."""
        self._energy_parameters = energy_parameters(settings)
        self._engines: OrderedDict[str, EnergyEngine] = OrderedDict()
        self.guard_counts = {
            "backwards": 0,
            "too_fast": 0,
            "exchanges": 0,
            "repeated": 0,
            "clock_jumps": 0,
        }
        """Registers the counter guard rejected, meter exchanges it accepted, repeated lists
        (a list resent with the previous one's clock and registers) and meter clocks that jumped
        (the quarter-hour ledger started over)."""
        self._guard_logged: set[Verdict] = set()
        self.interval_listeners: list[Callable[[tuple[LedgerInterval, ...]], None]] = []
        """Called with the ledger intervals a frame closed (the history writer; prices)."""
        self.history_stats: Callable[[], dict[str, Any]] | None = None
        """The history writer's counters for ``bridge/info`` (``history``), when it runs."""
        self.resolution = _resolution_judge(settings)
        """Kamstrup register resolutions: configured, or decided per meter from evidence."""
        self.resolution_changed = False
        """A resolution was decided since the state keeper last saved them."""
        self.money: Money | None = None
        """The prices and costs stage (``prices.source`` set); the daemon attaches it."""
        # The price fetcher's counters for ``bridge/info``:
        self.prices_status: Callable[[], dict[str, Any]] | None = None
        self._money_failed = False

    # -- frames -----------------------------------------------------------------------------

    def handle_content(
        self, content: bytes, received_at: datetime | None = None, source: str = ""
    ) -> None:
        """Decode one frame's content and publish what it says.

        ``source`` names where the content came from when one source carries many meters (the
        topic of an MQTT relay): each source has its own decoder state (general-block-transfer
        blocks, Kamstrup CT memory) and its own last known meter id for frames without one.
        """
        self.frames += 1
        now = self._last_frame = self._clock()
        if self._first_frame is None:
            self._first_frame = now
            self._info_changed = True
        if self.on_frame is not None:
            self.on_frame()
        origin = self._source(source, now) if source else None
        decoder = self.decoder if origin is None else origin.decoder
        try:
            reading = decoder.feed(content)
        except DecodeError as exc:
            self._decode_failed(exc, now, content)
            return
        if reading is None:
            return  # one block of a general-block-transfer: the rest follows
        if decoder.last_note is not None:
            self._noted(decoder.last_note, now)
        if origin is not None:
            self._handle_sourced(origin, reading, received_at, now)
            return
        if not self._has_meter(reading, now):
            self.held_back += 1
            return
        if reading.meter_id and UNKNOWN_METER in self.tracker.meters and not self.settings.meter.id:
            self._retire(self.tracker.meters.pop(UNKNOWN_METER), reading.meter_id)
        self._observed(reading, received_at)

    def _source(self, key: str, now: float) -> _SourceState:
        """The state of source ``key``; the least recently heard go beyond ``max_topics``."""
        origin = self._sources.get(key)
        if origin is not None:
            self._sources.move_to_end(key)
            return origin
        encryption_key, authentication_key = self.settings.meter.key_bytes()
        decoder = AutoDecoder(
            self.settings.meter.type,
            encryption_key=encryption_key,
            authentication_key=authentication_key,
        )
        decoder.stats = self.decoder.stats  # one set of counters for the whole bridge
        origin = self._sources[key] = _SourceState(decoder, now)
        if len(self._sources) > self.settings.source.max_topics:
            self._sources.popitem(last=False)
        return origin

    def _handle_sourced(
        self, origin: _SourceState, reading: MeterReading, received_at: datetime | None, now: float
    ) -> None:
        """A reading from a source topic: list 1 frames take the topic's last known meter."""
        if reading.meter_id:
            if origin.meter_id == UNKNOWN_METER and UNKNOWN_METER in self.tracker.meters:
                self._retire(self.tracker.meters.pop(UNKNOWN_METER), reading.meter_id)
            origin.meter_id = reading.meter_id
        elif origin.meter_id is None and not self.settings.meter.id:
            if now - origin.first_frame < METER_ID_GRACE:
                self.held_back += 1
                return
            origin.meter_id = UNKNOWN_METER
        self._observed(reading, received_at, origin.meter_id)

    def _observed(
        self, reading: MeterReading, received_at: datetime | None, fallback: str | None = None
    ) -> None:
        stamp = received_at or datetime.now(UTC)
        # The energy stage before the tracker sees the reading: a register the guard rejects
        # must reach no topic, nor the meter's merged state that is re-sent after a reconnect.
        meter = self.tracker.meter_for(reading, fallback)
        reading = self._resolved(meter, reading)
        reading, derived = self._derive(meter, reading, stamp)
        state, came_online, needs_discovery = self.tracker.observe(reading, fallback)
        if not derived.keys() <= state.derived_seen:
            state.derived_seen |= derived.keys()
            needs_discovery = True
        if came_online:
            self._info_changed = True
            self._publish_availability(state, online=True)
            _LOGGER.info("meter %s online (%s)", loggable(state.meter_id), reading.layout)
        if needs_discovery:
            self._publish_discovery(state)
        self._publish_reading(state, reading, stamp, derived)
        for sub in reading.sub_readings:
            # A gas, water or heat meter behind this P1 port: a meter of its own, reached
            # through this one (its Home Assistant device says so with via_device).
            self._observed(replace(sub, parent=state.meter_id), received_at)

    def _publish_reading(
        self,
        state: MeterState,
        reading: MeterReading,
        stamp: datetime,
        derived: dict[str, FieldValue],
    ) -> None:
        # Derived values go to their field topics when they change (the state JSON has them
        # all): the tariff's and the day's change once an hour, not every frame.
        last = state.last_derived
        changed = {name: value for name, value in derived.items() if last.get(name) != value}
        last.update(derived)
        messages = messages_for_reading(
            reading,
            state.meter_id,
            stamp,
            self.settings.mqtt,
            self.settings.publish,
            derived=derived,
            derived_fields=changed,
        )
        for message in messages:
            self.publisher.publish(message)
        for listener in self.listeners:
            listener(state.meter_id, reading, derived, stamp)

    def _derive(
        self, meter: str, reading: MeterReading, stamp: datetime
    ) -> tuple[MeterReading, dict[str, FieldValue]]:
        """The energy stage: the reading without rejected registers, and the derived values.

        The derived values (CONVENTIONS.md: ``energy_import``, ``power_net``, ``tariff_*`` ...)
        are published beside the reading's fields.
        """
        if not self._zone_checked:
            self._check_zone(reading)
        engine = self._engines.get(meter)
        if engine is None:
            engine = self._engines[meter] = EnergyEngine(self._energy_parameters, meter)
            if len(self._engines) > MAX_ENERGY_METERS:
                self._engines.popitem(last=False)
        else:
            self._engines.move_to_end(meter)
        result = engine.feed(reading, stamp)
        for event in result.events:
            self._guarded(meter, event)
        if result.repeated:
            self._repeated(meter)
        if result.intervals:
            for listener in self.interval_listeners:
                listener(result.intervals)
        if engine.ledger is not None and engine.ledger.jumps:
            self._clock_jumped(meter, engine.ledger.jumps)
            engine.ledger.jumps = 0
        money = self._money_of(meter, engine, result, stamp)
        return result.reading, {**result.values, **money} if money else result.values

    def _money_of(
        self, meter: str, engine: EnergyEngine, result: EnergyResult, stamp: datetime
    ) -> dict[str, FieldValue]:
        """The money fields: a gas or water meter's gas costs, an electricity meter's prices."""
        if not SUB_METER_FIELDS.isdisjoint(result.reading.fields):
            return self._gas_money(engine.volume)  # never electricity prices on a gas meter
        if self.money is None:
            return {}
        return self._money(meter, result.values, stamp, result.intervals)

    def _gas_money(self, volume: VolumeLedger | None) -> dict[str, FieldValue]:
        """``cost_gas_today`` / ``cost_gas_month`` with ``prices.gas``, as of the last reading."""
        price = self.settings.prices.gas
        if price is None or volume is None or volume.point is None:
            return {}
        return gas_costs(volume, price, volume.point[0])

    def _money(
        self,
        meter: str,
        values: dict[str, FieldValue],
        stamp: datetime,
        intervals: Sequence[LedgerInterval],
    ) -> dict[str, FieldValue]:
        """The money fields; a bug there costs them (counted, logged once), never the reading."""
        assert self.money is not None
        try:
            return self.money.values(meter, values, stamp, intervals)
        except Exception:  # any bug: the frame's reading and energy still go out
            self.internal_errors += 1
            if not self._money_failed:
                self._money_failed = True
                _LOGGER.exception("internal error in the money stage (counted; costs skipped)")
            return {}

    @cached_property
    def _zone(self) -> tzinfo:
        return self.settings.meter.zone()

    def _resolved(self, meter: str, reading: MeterReading) -> MeterReading:
        """Kamstrup registers at the meter's own resolution (see han2mqtt.energy.resolution).

        The frame is evidence first (as decoded), then its registers are rescaled by what is
        configured or decided; until a decision, as decoded (the list's usual resolution).
        """
        if reading.layout != KAMSTRUP_LAYOUT:
            return reading
        assumed = assumed_resolution(reading.fields.get(FIELD_METER_TYPE))
        text = reading.fields.get(FIELD_METER_DATETIME)
        moment = parse_meter_time(text, self._zone) if isinstance(text, str) else None
        if moment is not None:
            power = reading.fields.get(FIELD_ACTIVE_POWER_IMPORT)
            register = reading.fields.get(FIELD_ACTIVE_POWER_IMPORT_TOTAL)
            decision = self.resolution.observe(
                meter, assumed, moment, _number(power), _number(register)
            )
            if decision is not None:
                self._decided(decision)
        return rescaled(reading, self.resolution.factor(meter, assumed))

    def _decided(self, decision: Decision) -> None:
        """Log a decided resolution once; a changed one restarts the meter's energy stage.

        Its counters, hour registers and peaks were made from registers off by a factor of ten,
        and the guard would read the corrected register as one going backwards.
        """
        self.resolution_changed = True
        changed = decision.resolution != decision.assumed
        if changed:
            self._engines.pop(decision.meter, None)
        _LOGGER.info(
            "meter %s counts energy in %s Wh (%s hours of register rises agree with the power "
            "drawn; the list's usual resolution is %s Wh)%s; kept in the state directory, "
            "meter.energy_resolution overrides",
            loggable(decision.meter),
            decision.resolution,
            decision.hours,
            decision.assumed,
            ": registers rescaled, its energy counters start afresh" if changed else "",
        )

    def resolution_state(self) -> bytes:
        """The decided register resolutions (their own small file beside the state file)."""
        return json.dumps({"version": 1, "decided": self.resolution.decided}).encode()

    def restore_resolution(self, data: bytes) -> None:
        """Restore decided register resolutions; a damaged file decides nothing.

        Raises:
            ValueError: the content is not the format :meth:`resolution_state` writes.
        """
        content = json.loads(data)
        decided = content.get("decided") if isinstance(content, dict) else None
        if not isinstance(decided, dict) or content.get("version") != 1:
            raise ValueError("not a register resolution file")
        kept = {str(k): v for k, v in decided.items() if isinstance(v, int)}
        self.resolution.decided.update(ResolutionJudge(decided=kept).decided)

    def _clock_jumped(self, meter: str, jumps: int) -> None:
        """Count a meter clock that jumped (the ledger started over); log the first."""
        if not self.guard_counts["clock_jumps"]:
            _LOGGER.warning(
                "meter %s: its clock jumped by more than an hour back or 40 days ahead; the "
                "quarter-hour ledger starts over from it (further jumps are counted in "
                "bridge/info)",
                loggable(meter),
            )
        self.guard_counts["clock_jumps"] += jumps

    def _repeated(self, meter: str) -> None:
        """Count a repeated list; log the first one."""
        self.guard_counts["repeated"] += 1
        if self.guard_counts["repeated"] == 1:
            _LOGGER.warning(
                "meter %s repeated its previous list (same clock and registers): not counted "
                "as a register; further ones are counted in bridge/info",
                loggable(meter),
            )

    def _check_zone(self, reading: MeterReading) -> None:
        """Warn once when the meter's local clock is read on UTC (a container without ``TZ``)."""
        meter_time = reading.fields.get(FIELD_METER_DATETIME)
        if meter_time is None:
            return
        self._zone_checked = True
        warning = utc_zone_warning(
            self._energy_parameters.zone, meter_time, explicit=self.settings.meter.timezone
        )
        if warning is not None:
            _LOGGER.warning("%s", warning)

    def _guarded(self, meter: str, event: GuardEvent) -> None:
        """Count a register the guard stopped; log the first of each kind, and every exchange."""
        if event.verdict is Verdict.EXCHANGE:
            self.guard_counts["exchanges"] += 1
            _LOGGER.warning(
                "meter %s: %s starts over at %s (three registers agree): meter exchange or reset",
                loggable(meter),
                event.field,
                event.value,
            )
            return
        self.guard_counts[event.verdict.value] += 1
        if event.verdict not in self._guard_logged:
            self._guard_logged.add(event.verdict)
            _LOGGER.warning(
                "meter %s: %s %s (%s -> %s): not published; further ones are counted in "
                "bridge/info",
                loggable(meter),
                event.field,
                _GUARD_WORDS[event.verdict],
                event.previous,
                event.value,
            )

    def energy_state(self) -> bytes:
        """The energy stage's state of every meter (the state file's content)."""
        return encode_state(self._engines)

    def restore_energy(self, data: bytes) -> None:
        """Restore the energy stage from a state file's content.

        Raises:
            StateError: the content is damaged or of another format.
        """
        self._engines.update(decode_state(data, self._energy_parameters))

    def _has_meter(self, reading: MeterReading, now: float) -> bool:
        if self.settings.meter.id or reading.meter_id:
            return True
        if self.tracker.meters:
            # An id-less list of another manufacturer or family than the meter that spoke last
            # is held, as before any meter was known: it is not that meter's reading.
            return self.tracker.resolve(reading) is not None
        assert self._first_frame is not None
        if now - self._first_frame < METER_ID_GRACE:
            return False  # a list naming the meter usually follows within 10 s
        _LOGGER.warning(
            "the meter sends no serial number; publishing as %r (set meter.id to name it)",
            UNKNOWN_METER,
        )
        return True

    def _retire(self, state: MeterState, successor: str) -> None:
        """Remove what was published for ``state`` (retained availability and discovery).

        Frames without a meter id that arrived before any frame named the meter were published
        as ``unknown``; once the meter's id is known, that device would otherwise linger in Home
        Assistant beside the real one.
        """
        _LOGGER.info(
            "meter %s is %s; removing its topics", loggable(state.meter_id), loggable(successor)
        )
        gone = device_topic(state.meter_id, self.settings.homeassistant)
        self._retained_components.pop(gone, None)
        self._published_components.pop(gone, None)
        topics = [availability_topic(self.settings.mqtt.base_topic, state.meter_id)]
        if self.settings.homeassistant.discovery and state.last_reading is not None:
            topics += [message.topic for message in self._discovery(state)]
        for message in removal_messages(topics):
            self.publisher.publish(message)

    def _noted(self, note: str, now: float) -> None:
        """A frame decoded despite something odd: one line at most every few minutes."""
        if now - self._last_note_log >= _DECODE_LOG_INTERVAL:
            _LOGGER.info("note: %s", loggable(note, 300))
            self._last_note_log = now

    def _decode_failed(self, exc: DecodeError, now: float, content: bytes = b"") -> None:
        """Count every failure; log a summary at most every few minutes, not one per frame."""
        self.decode_errors += 1
        kind = type(exc).__name__
        self.errors_by_kind[kind] += 1
        kept = content[:REJECT_OCTETS_KEPT]
        self.rejects.append(Rejected(datetime.now(UTC), kind, str(exc), kept, len(content)))
        self._errors_since_log += 1
        if now - self._last_decode_log >= _DECODE_LOG_INTERVAL:
            _LOGGER.warning(
                "%d frame(s) could not be decoded since the last report; latest: %s",
                self._errors_since_log,
                loggable(exc, 300),
            )
            self._last_decode_log = now
            self._errors_since_log = 0

    def _reading_messages(
        self,
        reading: MeterReading,
        meter: str,
        stamp: datetime,
        derived: dict[str, FieldValue] | None = None,
    ) -> list[Message]:
        return messages_for_reading(
            reading, meter, stamp, self.settings.mqtt, self.settings.publish, derived=derived
        )

    def _publish_availability(self, state: MeterState, *, online: bool) -> None:
        topic = availability_topic(self.settings.mqtt.base_topic, state.meter_id)
        self.publisher.publish(Message(topic, ONLINE if online else OFFLINE, 1, retain=True))

    def _publish_discovery(self, state: MeterState) -> None:
        if not self.settings.homeassistant.discovery or state.last_reading is None:
            return
        for message in self._discovery(state):
            if self.settings.homeassistant.mode == "device":
                self._published_components[message.topic] = set(json.loads(message.payload)["cmps"])
            self.publisher.publish(message)

    def _discovery(self, state: MeterState) -> list[Message]:
        assert state.last_reading is not None
        ha = self.settings.homeassistant
        return discovery_messages(
            state.meter_id,
            state.last_reading,
            self.settings.mqtt,
            ha,
            obis=self.settings.publish.obis,
            keep=self._retained_components.get(device_topic(state.meter_id, ha)),
            derived=sorted(state.derived_seen),
            currency=self._currency(),
        )

    def _currency(self) -> str | None:
        """The unit of the money values: the prices' currency, else ``tariff.currency``."""
        if self.money is not None:
            return self.money.currency
        if self.settings.prices.gas is not None:
            return currency_of(self.settings)
        return self.settings.tariff.currency

    def on_discovery_config(self, topic: str, payload: bytes, retained: bool) -> None:
        """The broker's copy of one of our device discovery messages (sent on subscribing).

        A restarted daemon has seen only a few lists yet; the copy from the last run names the
        sensors of the others (the hourly energy registers).  They are kept in every discovery
        this run publishes, and if a smaller one already went out, it is sent again.
        """
        if not retained or not payload:
            return  # our own publications coming back, or a purge
        components = retained_components(payload, self.settings.mqtt.base_topic, topic)
        if not components:
            _LOGGER.debug(
                "retained discovery on %s: not ours, or not valid; ignored", loggable(topic)
            )
            return
        self._retained_components[topic] = components
        published = self._published_components.get(topic)
        if published is None or components.keys() <= published:
            return
        for state in self.tracker.meters.values():
            if device_topic(state.meter_id, self.settings.homeassistant) == topic:
                self._publish_discovery(state)

    # -- broker and Home Assistant events ---------------------------------------------------------

    def resend_all(self) -> None:
        """Discovery, availability and the current state of every meter (after a (re)connect)."""
        stamp = datetime.now(UTC)
        for state in self.tracker.meters.values():
            self._publish_discovery(state)
            self._publish_availability(state, online=state.online)
            # An offline meter's last values are not its state now: never re-send them as fresh.
            if state.online and state.last_reading is not None:
                reading, derived = state.last_reading, state.last_derived
                for message in self._reading_messages(reading, state.meter_id, stamp, derived):
                    self.publisher.publish(message)
        self.publisher.publish(self.info_message())

    def on_broker_connected(self) -> None:
        """After a *re*connect, the broker may have lost what it had: send it all again.

        On the first connect there is nothing to repeat: what frames produced before it waited
        in the publisher's queue and has just been sent, unless the queue overflowed.  A fresh
        ``bridge/info`` follows in any case: the one queued at start-up says "connecting".
        """
        self._info_changed = True
        if self.publisher.stats.connects > 1 or self.publisher.stats.dropped:
            self.resend_all()

    def on_source_state(self, state: ConnectionState) -> None:
        """Remember the source's state for ``bridge/info`` (and update it soon)."""
        if state.value != self.source_state:
            self._info_changed = True
        self.source_state = state.value

    def on_stop(self) -> None:
        """A clean stop: every meter ``offline``, and a last ``bridge/info``.

        Before the publisher's own ``offline`` on ``bridge/state``: the retained availability
        of a meter would otherwise say ``online`` until the next run.
        """
        for state in self.tracker.meters.values():
            if state.online:
                state.online = False
                self._publish_availability(state, online=False)
        self.publisher.publish(self.info_message())

    def count_bad_frames(self, total: int) -> None:
        """The source's readers have rejected ``total`` frames so far (bad checksums).

        Counted in ``bridge/info`` as ``bad_checksum``; a summary is logged at most every few
        minutes, as for decode errors.
        """
        self.bad_checksum = total
        new = total - self._bad_checksum_logged
        now = self._clock()
        if new > 0 and now - self._last_checksum_log >= _DECODE_LOG_INTERVAL:
            _LOGGER.warning(
                "%d frame(s) rejected for a bad checksum since the last report "
                "(noise on the line, a loose connector or wrong line settings)",
                new,
            )
            self._bad_checksum_logged = total
            self._last_checksum_log = now

    def publish_info_when_due(self) -> None:
        """``bridge/info`` after a change (at most once a second) and every ``info_interval``."""
        now = self._clock()
        if now - self._last_info < _INFO_MIN_INTERVAL:
            return
        if self._info_changed or now >= self._next_info:
            self.publisher.publish(self.info_message())
            self._info_changed = False
            self._last_info = now
            self._next_info = now + self.settings.publish.info_interval

    # -- periodic work --------------------------------------------------------------------------

    def expire(self) -> None:
        """Publish ``offline`` for meters that went silent."""
        for state in self.tracker.expire():
            _LOGGER.warning(
                "meter %s offline: no frame for %.0f s",
                loggable(state.meter_id),
                self.settings.meter.offline_after,
            )
            self._publish_availability(state, online=False)
            self._info_changed = True

    def _evicted(self, state: MeterState) -> None:
        """``meter.max_meters`` reached: ``state`` is forgotten to make room for a new meter.

        Its availability turns ``offline`` (a forgotten meter is not followed any more); its
        discovery stays.  The first eviction is a warning naming the meter; further ones are
        summarized at most every few minutes, not one line per meter.
        """
        if state.online:
            self._publish_availability(state, online=False)
        self._info_changed = True
        gone = device_topic(state.meter_id, self.settings.homeassistant)
        self._retained_components.pop(gone, None)
        self._published_components.pop(gone, None)
        self._evicted_since_log += 1
        now = self._clock()
        if now - self._last_evict_log >= _DECODE_LOG_INTERVAL:
            _LOGGER.warning(
                "meter.max_meters (%d) reached: forgot %d meter(s) since the last report, "
                "latest %s (seen %.0f s ago)",
                self.settings.meter.max_meters,
                self._evicted_since_log,
                loggable(state.meter_id),
                now - state.last_seen,
            )
            self._last_evict_log = now
            self._evicted_since_log = 0

    def healthy(self) -> bool:
        """Valid frames arrived recently (or the daemon has only just started).

        Decoded or not: a restart (what systemd does when this stays false) revives a dead
        input, but not a wrong key, and the decode errors already say what is wrong.
        """
        limit = self.settings.health.max_age
        if self._last_frame is None:
            return self._clock() - self.started < limit
        return self._clock() - self._last_frame < limit

    def info_message(self) -> Message:
        """``bridge/info``: version, source, meters, counters; never secrets."""
        age = self.tracker.last_frame_age()
        meters = self.tracker.meters
        shown = heapq.nlargest(INFO_METERS_MAX, meters.values(), key=lambda m: m.last_seen)
        info: dict[str, Any] = {
            "version": __version__,
            "source": {
                "type": self.settings.source.type,
                "state": self.source_state,
                **self.source_counters,
            },
            "meters": {
                state.meter_id: {
                    "online": state.online,
                    "frames": state.frames,
                    "manufacturer": state.manufacturer,
                    "type": state.meter_type,
                }
                for state in shown
            },
            "meters_total": len(meters),
            "meters_online": sum(state.online for state in meters.values()),
            "meters_evicted": self.tracker.evicted,
            "held_back": self.held_back,
            "frames": self.frames,
            "decoded": self.decoder.stats.decoded,
            "decode_errors": self.decode_errors,
            "bad_checksum": self.bad_checksum,
            "tic_groups_dropped": self.decoder.stats.groups_dropped,
            "internal_errors": self.internal_errors,
            "last_frame_age": None if age is None else round(age, 1),
            "counter_guard": dict(self.guard_counts),
            "mqtt": {
                "published": self.publisher.stats.published,
                "dropped": self.publisher.stats.dropped,
                "replaced": self.publisher.stats.replaced,
                "reconnects": max(0, self.publisher.stats.connects - 1),
            },
        }
        if self.prices_status is not None:
            info["prices"] = self.prices_status()
        if self.history_stats is not None:
            info["history"] = self.history_stats()
        topic = bridge_info_topic(self.settings.mqtt.base_topic)
        return Message(topic, json.dumps(info, separators=(",", ":")), 1, retain=True)


def energy_parameters(settings: Settings) -> EnergyParameters:
    """The energy stage's parameters from the meter, tariff, grid and history sections.

    The demo's sample frames are no meter's history: no ledger for them.
    """
    meter = settings.meter
    return EnergyParameters(
        zone=meter.zone(),
        max_power=meter.max_power,
        main_fuse=meter.main_fuse,
        tariff=tariff_model(settings.tariff, settings.grid.holidays),
        max_gas_flow=meter.max_gas_flow,
        ledger=settings.history.enabled and settings.source.type != "demo",
    )


def tariff_model(tariff: TariffSettings, country: str | None = None) -> TariffModel | None:
    """The tariff model: the preset's values, overridden by the keys given; None if off.

    ``country`` is ``grid.holidays``: with ``tariff.holidays: false`` its public holidays do not
    count.
    """
    if tariff.preset is None:
        return None
    base = PRESETS.get(tariff.preset, TariffModel())
    per_kw = tariff.price_per_kw is not None
    return TariffModel(
        window=tariff.window or base.window,
        peaks=tariff.peaks or base.peaks,
        distinct_days=base.distinct_days if tariff.distinct_days is None else tariff.distinct_days,
        tiers=base.tiers if tariff.tiers is None else tuple(tariff.tiers),
        hours=base.hours if tariff.hours is None else _hour_ranges(tariff.hours),
        months=base.months if tariff.months is None else frozenset(tariff.months),
        weekdays=base.weekdays if tariff.weekdays is None else _weekdays(tariff.weekdays),
        period=tariff.period or base.period,
        floor=base.floor if tariff.floor is None else tariff.floor,
        weights=tuple(_weight(weight) for weight in tariff.weights or ()),
        holidays=PublicHolidays(country, de_facto=True)
        if tariff.holidays is False and country
        else None,
        prices=_season_prices(tariff.price_per_kw if per_kw else tariff.prices),
        per_kw=per_kw,
        past=tuple(sorted((tariff.past or {}).items())),
    )


def _hour_ranges(texts: list[str]) -> tuple[tuple[int, int], ...]:
    return tuple((int(start), int(end)) for start, end in (text.split("-") for text in texts))


def _weekdays(names: Sequence[str]) -> frozenset[int]:
    return frozenset(WEEKDAYS.index(day) for day in names)


def _weight(weight: TariffWeight) -> Weight:
    hours = [weight.hours] if isinstance(weight.hours, str) else weight.hours or []
    return Weight(
        weight.factor,
        _hour_ranges(hours),
        _weekdays(weight.weekdays or []),
        frozenset(weight.months or ()),
    )


def _season_prices(
    given: float | list[float] | list[TariffSeason] | None,
) -> tuple[SeasonPrice, ...]:
    """``tariff.prices`` / ``tariff.price_per_kw`` as seasons (one of every month if plain)."""
    if given is None:
        return ()
    if isinstance(given, float | int):
        return (SeasonPrice((float(given),)),)
    if all(isinstance(item, float | int) for item in given):
        return (SeasonPrice(tuple(float(item) for item in given)),)  # type: ignore[arg-type]
    return tuple(
        SeasonPrice(
            (season.price,) if season.price is not None else tuple(season.prices or ()),
            frozenset(season.months or ()),
        )
        for season in given
        if isinstance(season, TariffSeason)
    )


KAMSTRUP_LAYOUT = kamstrup.PROFILE.name


def _resolution_judge(settings: Settings) -> ResolutionJudge:
    configured = settings.meter.energy_resolution
    return ResolutionJudge(None if configured == "auto" else configured)


def _number(value: FieldValue | None) -> float | None:
    """A field's number (None for text, booleans and absent fields)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def utc_zone_warning(zone: tzinfo, meter_time: FieldValue, *, explicit: str | None) -> str | None:
    """Why hours, days and tariff windows will be wrong, or None.

    A meter that sends its clock without a UTC offset sends local time (the Nordic lists do);
    read on a host whose zone is UTC all year (a container without ``TZ``) and with no
    ``meter.timezone``, every hour and day boundary lands one or two hours off.
    """
    if explicit is not None or not isinstance(meter_time, str):
        return None
    try:
        naive = datetime.fromisoformat(meter_time).tzinfo is None
    except ValueError:
        return None
    year = datetime.now(UTC).year
    on_utc = all(
        datetime(year, month, 1, tzinfo=zone).utcoffset() == UTC.utcoffset(None) for month in (1, 7)
    )
    if not (naive and on_utc):
        return None
    return (
        f"the meter sends local time ({meter_time}, no UTC offset) but meter.timezone is unset "
        "and this host's time zone is UTC: hours, days and tariff windows are counted on UTC. "
        "Set meter.timezone (e.g. Europe/Oslo) or TZ (in Docker: -e TZ=Europe/Oslo)"
    )
