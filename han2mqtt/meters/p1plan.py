"""Compiled P1 telegram plans: a telegram's structure read once, its values read as values.

A P1 port sends the same telegram every second or ten: the same identification line, the same
object lines with the same units in the same order; only the digits change.  After a telegram
has been decoded the full way (:func:`~han2mqtt.meters.p1.decode_telegram`), its structure is
compiled into a :class:`TelegramPlan`: one regular expression that matches exactly the telegrams
of that structure (every constant byte literal, each value a group of its *class*), and per value
the OBIS text, field name, unit and power of ten that the full decoder would have found.  A later
telegram that the expression matches is decoded from the groups with integer arithmetic only.

Equality with the full decoder holds by construction: a value's class is chosen so that every
text of that class takes the same decision in :func:`~han2mqtt.meters.p1.object_values` as the
learned one (a number with the same number of decimals and the same unit; a time stamp; a
non-blank identifier; a value the decision does not read is any text, a value it reads to rule a
number out is the same text).  What the classes cannot carry is not compiled: DSMR 2.2/3.0
profile lines and their value-only lines, text registers, a clock that is not a time stamp.
Such a telegram, and any telegram no plan matches, takes the full path; the tests pin both paths
to the same reading on every telegram of the corpus and on random variations of them.

M-Bus channel lines (``0-n:...``: gas, water, heat meters behind the P1 port) are carried whole:
each line's values part is one group, and the channels' part of the reading is computed from them
by the full decoder's own :func:`~han2mqtt.meters.p1.channel_part`, again only when those lines
change (a gas reading changes every five minutes or hour, the electricity values every telegram).

Memory is bounded: at most :data:`MAX_PLANS` plans (least recently used dropped), and a structure
that has been compiled :data:`MAX_COMPILES` times (it keeps changing class, or cannot be
compiled) is no longer tried.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Final, NamedTuple

from han2mqtt import model
from han2mqtt.errors import ChecksumError
from han2mqtt.meters.normalize import TEXT, ObisValue, describe
from han2mqtt.meters.p1 import (
    CLOCK,
    IDENTIFIERS,
    MANUFACTURERS,
    OVERRIDES,
    PROFILE,
    ChannelPart,
    channel_part,
    decode_telegram,
    fresh_subs,
    is_channel,
    object_values,
    text_value,
    unit_symbol,
)
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.obis import Obis
from han2mqtt.protocol.p1 import (
    P1Object,
    P1Telegram,
    decimal_parts,
    is_continuation,
    object_line,
    object_of,
    p1_timestamp,
)

__all__ = ["MAX_COMPILES", "MAX_PLANS", "TelegramPlan", "TelegramPlans", "compile_plan"]

MAX_PLANS: Final = 16
"""Plans kept (one per meter model and telegram shape); the least recently used goes first."""
MAX_COMPILES: Final = 4
"""Compilations of one structure before it is left to the full decoder for good."""
_MAX_STRUCTURES: Final = 256
_MAX_TEXTS: Final = 64

_NUMBER: Final = 0
_STAMP: Final = 1
_IDENT: Final = 2
_CHANNEL: Final = 3
"""The values part of an M-Bus channel line, read by the full decoder's functions."""
_WILDCARD: Final = -1
"""A value the decoder does not read: any text, no group."""

_LINE_BREAKS: Final = re.compile(rb"[\x0b\x0c\x1c-\x1e]")
"""Characters that end a line for ``str.splitlines`` but not for ``bytes.splitlines``."""
_TAIL: Final = re.compile(rb"[0-9A-Fa-f]{0,4}(\s*)")
"""After ``!``: the CRC (if any), then at most white space (the line end, when a caller kept it)."""
_ANY: Final = rb"[^()\r\n\x0b\x0c\x1c-\x1e]*"
"""Any value text: no parentheses, nothing that ends a line."""
_VALUES: Final = rb"((?:\(%s\))+)" % _ANY
"""Any values part of an object line: one or more values."""
_IDENT_CHARACTER = rb"[^()*\r\n\x0b\x0c\x1c-\x1e]"
_IDENT_CLASS: Final = rb"(%s*[^()*\s\x1c-\x1f]%s*)" % (_IDENT_CHARACTER, _IDENT_CHARACTER)
"""A non-blank identifier without ``*`` (``str.strip`` also strips \\x1c-\\x1f)."""
_SHORT_STAMP: Final = re.compile(r"\d{12}[SW]")
_BARE_STAMP: Final = re.compile(r"\d{12}")
_LONG_STAMP: Final = re.compile(r"\d{8} \d{2}:\d{2}:\d{2}")


class _Step(NamedTuple):
    """One value of a plan: where its groups are and what the full decoder makes of it."""

    kind: int
    group: int
    fraction: int
    """Group of the decimals, or -1 for a whole number."""
    code: str
    field: str | None
    obis_factor: int
    obis_divides: bool
    field_factor: int
    field_divides: bool
    unit: str | None


class _Value(NamedTuple):
    """A value that is not literal: its span in the learned telegram, its class, how it is read.

    The class is a pattern with a group for each part read (none for a wildcard).
    """

    start: int
    end: int
    pattern: bytes
    kind: int
    obis: Obis
    unit: str | None = None
    decimals: int = 0


def _factor(exponent: int) -> tuple[int, bool]:
    """``(10**|e|, divides)``: the arithmetic of :func:`~han2mqtt.meters.normalize.scale`."""
    return (10**-exponent, True) if exponent < 0 else (10**exponent, False)


class TelegramPlan:
    """The compiled structure of one telegram shape."""

    __slots__ = (
        "_channel_key",
        "_channel_part",
        "_channels",
        "_field_obis",
        "_fields",
        "_match",
        "_steps",
        "_texts",
        "_units",
        "pattern",
    )

    def __init__(self, pattern: bytes, values: list[_Value], manufacturer: str) -> None:
        self.pattern = pattern
        self._match = re.compile(pattern, re.DOTALL).fullmatch
        self._fields: dict[str, FieldValue] = {model.FIELD_METER_MANUFACTURER: manufacturer}
        self._units: dict[str, str] = {}
        self._field_obis: dict[str, str] = {}
        self._texts: dict[bytes, str] = {}
        steps: list[_Step] = []
        channels: list[tuple[int, Obis]] = []
        group = 0  # index into match.groups()
        for value in values:
            if value.kind == _CHANNEL:
                channels.append((group, value.obis))
            elif value.kind != _WILDCARD:
                step = self._step(value, group)
                if step is not None:
                    steps.append(step)
            if value.kind != _WILDCARD:
                group += 2 if value.kind == _NUMBER and value.decimals else 1
        self._steps = tuple(steps)
        self._channels = tuple(channels)
        self._channel_key: tuple[bytes, ...] | None = None
        self._channel_part = ChannelPart((), ())
        for step in self._steps:
            if step.unit:
                self._units[step.code] = step.unit
            if step.field is not None:
                self._field_obis[step.field] = step.code

    def _step(self, value: _Value, group: int) -> _Step | None:
        """The step of a value as :func:`~han2mqtt.meters.normalize.build_reading` treats it."""
        code, known = describe(value.obis)
        known = OVERRIDES.get(value.obis.cde, known)
        is_text = value.kind != _NUMBER
        if is_text and known is not None and known[1] is not TEXT:
            return None  # text where a number belongs: the full decoder drops it
        exponent = -value.decimals
        name: str | None = None
        shift = 0
        if known is not None:
            name, quantity = known
            found = 0 if is_text else quantity.exponents.get(value.unit)
            if found is None:
                name = None  # a unit that does not convert: OBIS topic only
            else:
                shift = found
        fraction = group + 1 if value.kind == _NUMBER and value.decimals else -1
        obis_factor, obis_divides = _factor(exponent)
        field_factor, field_divides = _factor(exponent + shift)
        return _Step(
            value.kind,
            group,
            fraction,
            code,
            name,
            obis_factor,
            obis_divides,
            field_factor,
            field_divides,
            value.unit,
        )

    def decode(self, raw: bytes) -> MeterReading | None:
        """The reading of a telegram of this shape (CRC already checked); None for another."""
        match = self._match(raw)
        if match is None:
            return None
        groups = match.groups()
        fields = dict(self._fields)
        by_obis: dict[str, FieldValue] = {}
        for (
            kind,
            group,
            fraction,
            code,
            name,
            ofactor,
            odivides,
            ffactor,
            fdivides,
            _,
        ) in self._steps:
            value: FieldValue
            if kind == _NUMBER:
                text = groups[group] if fraction < 0 else groups[group] + groups[fraction]
                mantissa = int(text)
                by_obis[code] = mantissa / ofactor if odivides else mantissa * ofactor
                if name is not None:
                    fields[name] = mantissa / ffactor if fdivides else mantissa * ffactor
                continue
            value = self._text(kind, groups[group])
            by_obis[code] = value
            if name is not None:
                fields[name] = value
        units = dict(self._units)
        subs: list[MeterReading] = []
        if self._channels:
            part = self._channels_of(groups)
            by_obis.update(part.obis)
            units.update(part.units)
            subs = fresh_subs(part)
        return MeterReading(fields, by_obis, units, dict(self._field_obis), "p1", subs)

    def _channels_of(self, groups: tuple[bytes, ...]) -> ChannelPart:
        """The channel lines' part, computed again only when one of them changed."""
        key = tuple(groups[group] for group, _ in self._channels)
        if key != self._channel_key:
            items = [
                object_of(obis, groups[group].decode("ascii", errors="replace"))
                for group, obis in self._channels
            ]
            self._channel_key, self._channel_part = key, channel_part(items)
        return self._channel_part

    def _text(self, kind: int, raw: bytes) -> str:
        if kind == _STAMP:
            stamp = p1_timestamp(raw.decode("ascii"))
            assert stamp is not None  # the class is a time stamp's
            return stamp
        text = self._texts.get(raw)
        if text is None:
            if len(self._texts) >= _MAX_TEXTS:
                self._texts.clear()
            text = self._texts[raw] = text_value(raw.decode("ascii", errors="replace"))
        return text


def compile_plan(raw: bytes) -> TelegramPlan | None:
    """Compile the structure of a telegram the full decoder has read; None where it cannot be."""
    end = raw.rfind(b"!")
    tail = _TAIL.fullmatch(raw, end + 1) if end >= 0 else None
    if tail is None or _LINE_BREAKS.search(raw) or raw[end - 1 : end] not in (b"\r", b"\n"):
        return None  # ("!" must open its line, or the line it ends would not be an object line)
    lines = raw[:end].splitlines(keepends=True)
    offset = len(lines[0]) if lines else 0
    values: list[_Value] = []
    open_object = False
    for line in lines[1:]:
        start, offset = offset, offset + len(line)
        text = line.decode("ascii", errors="replace")
        stripped = text.strip()
        if not stripped:
            continue
        if open_object and is_continuation(stripped):
            return None  # a DSMR 2.2/3.0 value line: the full decoder's business
        found = object_line(stripped)
        open_object = found is not None
        if found is not None:
            compiled = _object_values(found[0], found[1], stripped, start + text.index(stripped))
            if compiled is None:
                return None
            values += compiled
    return _plan(raw, end, tail.group(1), values)


def _plan(raw: bytes, end: int, tail: bytes, values: list[_Value]) -> TelegramPlan | None:
    """The plan: literal bytes between the values' classes, any CRC, the same line end."""
    pieces: list[bytes] = []
    cursor = 0
    for value in values:
        pieces += [re.escape(raw[cursor : value.start]), value.pattern]
        cursor = value.end
    pieces += [re.escape(raw[cursor : end + 1]), rb"[0-9A-Fa-f]{0,4}", re.escape(tail)]
    identification = raw[1:].split(b"\r", 1)[0].split(b"\n", 1)[0]
    flag = identification.decode("ascii", errors="replace")[:3].upper()
    plan = TelegramPlan(b"".join(pieces), values, MANUFACTURERS.get(flag, flag))
    return plan if plan.decode(raw) is not None else None


def _object_values(
    item: P1Object, spans: list[tuple[int, int]], line: str, at: int
) -> list[_Value] | None:
    """The values of one object line that are not literal, each with its class.

    Mirrors :func:`han2mqtt.meters.p1.object_values`: the value it reads gets a class that keeps
    its decision, a value it does not look at is any text, and a value it reads only to rule a
    number out stays literal.  None when the object cannot be compiled.
    """
    texts = [line[start:stop] for start, stop in spans]
    if is_channel(item.obis):  # the values part whole: "(" before the first, ")" after the last
        return [_Value(at + spans[0][0] - 1, at + spans[-1][1] + 1, _VALUES, _CHANNEL, item.obis)]
    if item.obis.cde == PROFILE:
        return None
    if not any(text.strip() for text, _ in item.values):
        return []  # "()": nothing sent, and only the same literal text keeps it so
    decided = _decide(item, texts)
    if decided is None:
        return None
    chosen, index, wildcard = decided
    if object_values(item) != [_expected(item, chosen, texts[index])]:
        return None  # the decision is not the one the classes stand for: leave it to the decoder
    result: list[_Value] = []
    for i, (start, stop) in enumerate(spans):
        if i == index:
            result.append(chosen._replace(start=at + start, end=at + stop))
        elif wildcard[i]:
            result.append(_Value(at + start, at + stop, _ANY, _WILDCARD, item.obis, None, 0))
    return result


def _decide(item: P1Object, texts: list[str]) -> tuple[_Value, int, list[bool]] | None:
    """The value the decoder reads (with its class), its index, and which others are any text."""
    if item.obis.c == IDENTIFIERS:
        if "*" in texts[0]:
            return None
        ident = _Value(0, 0, _IDENT_CLASS, _IDENT, item.obis, None, 0)
        return ident, 0, [True] * len(texts)
    numbers = [i for i, (text, _) in enumerate(item.values) if decimal_parts(text) is not None]
    clock = item.obis.cde == CLOCK
    if clock or (item.obis.a == 0 and not numbers):
        pattern = _stamp_class(texts[0], clock=clock)
        if pattern is None:
            return None
        stamp = _Value(0, 0, pattern, _STAMP, item.obis, None, 0)
        return stamp, 0, [clock] * len(texts)
    if not numbers:
        return None  # a text register: what it becomes depends on what it says
    index = numbers[-1]
    number, unit = item.values[index]
    rest = texts[index][len(number) :]  # "*kWh", as sent
    if not rest.isascii():
        return None  # a byte the text decoding replaced: the literal could not be rebuilt
    decimals = len(number.partition(".")[2])
    pattern = rb"([+-]?\d+)" + (rb"\.(\d{%d})" % decimals if decimals else b"")
    pattern += re.escape(rest.encode("ascii"))
    value = _Value(0, 0, pattern, _NUMBER, item.obis, unit_symbol(unit), decimals)
    return value, index, [i < index for i in range(len(texts))]


def _stamp_class(text: str, *, clock: bool) -> bytes | None:
    """The class of a time stamp that stays a time stamp (and, off the clock, not a number)."""
    if _LONG_STAMP.fullmatch(text):
        return rb"(\d{8} \d{2}:\d{2}:\d{2})"
    if clock and (_SHORT_STAMP.fullmatch(text) or _BARE_STAMP.fullmatch(text)):
        return rb"(\d{12}[SW]?)"
    if _SHORT_STAMP.fullmatch(text):
        return rb"(\d{12}[SW])"
    return None


def _expected(item: P1Object, chosen: _Value, text: str) -> ObisValue:
    """What the full decoder must have made of the object for the classes to hold."""
    if chosen.kind == _IDENT:
        return ObisValue(item.obis, text_value(text))
    if chosen.kind == _STAMP:
        return ObisValue(item.obis, p1_timestamp(text) or "")
    parts = decimal_parts(text.split("*", 1)[0])
    assert parts is not None
    return ObisValue(item.obis, parts[0], parts[1], chosen.unit)


class TelegramPlans:
    """The plans of the telegrams seen, most recently used first, and the full decoder behind.

    Attributes:
        hits: telegrams decoded by a plan (the rest took the full path).
    """

    def __init__(self) -> None:
        self._plans: list[TelegramPlan] = []
        self._compiles: OrderedDict[tuple[bytes, int, int], int] = OrderedDict()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._plans)

    def decode(self, telegram: P1Telegram) -> MeterReading:
        """Decode a telegram: by a plan when one matches, else fully (and learn its plan).

        Raises:
            ChecksumError: the CRC does not match.
            FramingError: the telegram has no OBIS line.
        """
        if not telegram.is_valid:
            raise ChecksumError("P1 telegram CRC mismatch")
        raw = telegram.raw
        plans = self._plans
        for index, plan in enumerate(plans):
            reading = plan.decode(raw)
            if reading is not None:
                self.hits += 1
                if index:
                    plans.insert(0, plans.pop(index))
                return reading
        reading = decode_telegram(telegram)
        self._learn(raw)
        return reading

    def _learn(self, raw: bytes) -> None:
        key = (raw.split(b"\n", 1)[0], raw.count(b"\n"), raw.count(b"("))
        compiles = self._compiles.pop(key, 0)
        if len(self._compiles) >= _MAX_STRUCTURES:
            self._compiles.popitem(last=False)
        self._compiles[key] = compiles + 1
        if compiles >= MAX_COMPILES:
            return
        plan = compile_plan(raw)
        if plan is None:
            return
        if len(self._plans) >= MAX_PLANS:
            self._plans.pop()
        self._plans.insert(0, plan)
