"""Compiled P1 plans: the fast path gives exactly the full decoder's reading, or steps aside."""

from __future__ import annotations

import contextlib
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt import AutoDecoder
from han2mqtt.errors import ChecksumError, DecodeError
from han2mqtt.meters.p1 import decode_telegram
from han2mqtt.meters.p1plan import MAX_COMPILES, MAX_PLANS, TelegramPlans, compile_plan
from han2mqtt.model import MeterReading
from han2mqtt.protocol.crc import crc16_arc
from han2mqtt.protocol.p1 import P1Telegram, P1TelegramReader, check_telegram
from han2mqtt.protocol.stream import ContentReader
from tests import corpus
from tests.meters.test_p1_dsmr22 import ISKRA_MT382, KAMSTRUP_162, XEMEX
from tests.protocol.test_encrypted_p1 import AUTH, KEY, smarty_frame

P1_IDS = corpus.ids(lambda i: i["format"] == "p1" and i["verification"]["status"] != "bad_crc")
DSMR22 = {"iskra-mt382": ISKRA_MT382, "kamstrup-162": KAMSTRUP_162, "xemex": XEMEX}
NOT_COMPILED = {"nl-dsmr30-iskra-nocrc", *DSMR22}
"""DSMR 2.2/3.0 telegrams: their gas value sits on a value-only line, the full decoder's part."""
_VALUE = re.compile(rb"\(([^()\r\n]*)\)")


def _vectors() -> dict[str, bytes]:
    vectors = {item_id: corpus.raw(corpus.by_id(item_id)) for item_id in P1_IDS}
    vectors.update({name: text.encode("ascii") for name, text in DSMR22.items()})
    return vectors


VECTORS = _vectors()


def _with_crc(raw: bytes) -> bytes:
    """The telegram with its CRC recomputed (what a meter sending these values would send)."""
    start, end = raw.index(b"/"), raw.rindex(b"!") + 1
    return raw[start:end] + f"{crc16_arc(raw[start:end]):04X}\r\n".encode()


def _same(fast: MeterReading, full: MeterReading) -> None:
    """Equal readings, in the same key order (the state JSON and the topics follow it)."""
    assert fast == full
    for part in ("fields", "obis", "units", "field_obis"):
        assert list(getattr(fast, part).items()) == list(getattr(full, part).items()), part


def _outcome(decode: object, telegram: P1Telegram) -> MeterReading | type[Exception]:
    assert callable(decode)
    try:
        reading = decode(telegram)
    except DecodeError as exc:
        return type(exc)
    assert isinstance(reading, MeterReading)
    return reading


def _learned(original: bytes) -> TelegramPlans:
    """Plans that have learned ``original``'s plan (the full path decoded it once)."""
    plans = TelegramPlans()
    plans.decode(check_telegram(original))
    return plans


def _same_outcome(plans: TelegramPlans, telegram: P1Telegram) -> None:
    """``plans`` decode ``telegram`` as the full decoder does: the same reading or error."""
    fast, full = _outcome(plans.decode, telegram), _outcome(decode_telegram, telegram)
    if isinstance(full, MeterReading):
        assert isinstance(fast, MeterReading)
        _same(fast, full)
    else:
        assert fast == full


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_the_fast_path_equals_the_full_decoder_on_every_p1_vector(name: str):
    telegram = check_telegram(VECTORS[name])
    plans = TelegramPlans()
    learned = plans.decode(telegram)  # the full path, and the plan learned from it
    again = plans.decode(telegram)
    full = decode_telegram(telegram)
    _same(learned, full)
    _same(again, full)
    assert plans.hits == (0 if name in NOT_COMPILED else 1)
    assert (compile_plan(telegram.raw) is None) == (name in NOT_COMPILED)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_the_fast_path_equals_the_full_decoder_through_the_stream_path(name: str):
    raw = _with_crc(VECTORS[name])
    reader, decoder = ContentReader("auto"), AutoDecoder()
    contents = reader.read(raw * 3)
    assert len(contents) == 3
    readings = [decoder.feed(content) for content in contents]
    full = decode_telegram(check_telegram(raw))
    for reading in readings:
        assert reading is not None
        _same(reading, full)


def _mutate(raw: bytes, rng: random.Random, alphabet: bytes, count: int) -> bytes:
    """Replace the text of ``count`` values (between parentheses) with random text."""
    spans = [m.span(1) for m in _VALUE.finditer(raw)]
    data = bytearray(raw)
    for start, stop in sorted(rng.sample(spans, min(count, len(spans))), reverse=True):
        length = rng.choice((0, 1, stop - start, stop - start, rng.randint(1, 20)))
        data[start:stop] = bytes(rng.choice(alphabet) for _ in range(length))
    return bytes(data)


VALUE_TEXT = b"0123456789000000.*+- SWkWhVAm3"
"""What values are made of, so that mutations mostly hit the classes' edges."""


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(VECTORS)),
    seed=st.integers(0, 2**32),
    count=st.integers(1, 6),
)
def test_changed_values_decode_as_the_full_decoder_decodes_them(name: str, seed: int, count: int):
    original = _with_crc(VECTORS[name])
    plans = _learned(original)
    changed = check_telegram(_with_crc(_mutate(original, random.Random(seed), VALUE_TEXT, count)))
    _same_outcome(plans, changed)


_NUMBER = re.compile(rb"\((\d+(?:\.\d+)?)(\*[^()\r\n]*)?\)")


def _renumber(raw: bytes, rng: random.Random, *, reshape: bool | None = None) -> bytes:
    """Every number sent anew: other digits and widths; in half the telegrams, other decimals."""
    reshape = rng.random() < 0.5 if reshape is None else reshape

    def new(match: re.Match[bytes]) -> bytes:
        whole, _, decimals = match.group(1).partition(b".")
        width, places = len(whole), len(decimals)
        if rng.random() < 0.2:
            width = rng.randint(1, 9)
        if reshape and rng.random() < 0.2:
            places = rng.choice((0, 0, 1, 2, 3, 4))
        sign = rng.choice((b"", b"", b"", b"-", b"+"))
        digits = bytes(rng.choice(b"0123456789") for _ in range(width))
        fraction = b"." + bytes(rng.choice(b"0123456789") for _ in range(places)) if places else b""
        return b"(" + sign + digits + fraction + (match.group(2) or b"") + b")"

    return _NUMBER.sub(new, raw)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(VECTORS)), seed=st.integers(0, 2**32))
def test_new_numbers_of_any_width_decode_as_the_full_decoder_decodes_them(name: str, seed: int):
    original = _with_crc(VECTORS[name])
    plans = _learned(original)
    changed = check_telegram(_with_crc(_renumber(original, random.Random(seed))))
    _same_outcome(plans, changed)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(VECTORS)),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_any_changed_bytes_decode_as_the_full_decoder_decodes_them(name, flips):
    original = _with_crc(VECTORS[name])
    plans = _learned(original)
    data = bytearray(original)
    end = data.rindex(b"!")
    for position, value in flips:
        data[1 + position % (end - 1)] = value  # keep "/" and the last "!" where they are
    changed = check_telegram(_with_crc(bytes(data)))
    _same_outcome(plans, changed)


@settings(max_examples=100, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 4000), max_size=12),
    seed=st.integers(0, 2**32),
)
def test_any_chunking_of_changing_telegrams_gives_the_full_decoders_readings(cuts, seed):
    rng = random.Random(seed)
    names = [rng.choice(sorted(VECTORS)) for _ in range(6)]
    telegrams = [_with_crc(_mutate(VECTORS[n], rng, b"0123456789", 3)) for n in names]
    stream = b"".join(telegrams)
    reader, decoder = ContentReader("auto"), AutoDecoder()
    readings = []
    position = 0
    for cut in [*sorted(cuts), len(stream)]:
        readings += [decoder.feed(content) for content in reader.read(stream[position:cut])]
        position = max(position, cut)
    expected = [decode_telegram(check_telegram(raw)) for raw in telegrams]
    assert len(readings) == len(expected)
    for reading, full in zip(readings, expected, strict=True):
        assert reading is not None
        _same(reading, full)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600))
def test_random_content_after_a_plan_is_a_reading_or_a_typed_error(data: bytes):
    decoder = AutoDecoder()
    decoder.feed(VECTORS["nl-dsmr50-iskra"])
    with contextlib.suppress(DecodeError):  # anything else fails the test
        decoder.feed(b"/" + data)


def test_a_fleet_of_one_model_shares_one_plan():
    original = VECTORS["nl-dsmr50-iskra"]
    plans = TelegramPlans()
    for serial in range(50):
        equipment = f"E00{serial:014d}".encode().hex().upper().encode()
        raw = _with_crc(original.replace(b"4B384547303034303436333935353037", equipment[:32]))
        reading = plans.decode(check_telegram(raw))
        assert reading.fields["meter_id"] == f"E00{serial:014d}"[:16]
    assert len(plans) == 1
    assert plans.hits == 49


def test_a_bad_crc_is_rejected_on_the_fast_path_too():
    plans = TelegramPlans()
    raw = VECTORS["nl-dsmr50-iskra"]
    plans.decode(check_telegram(raw))
    bad = raw.replace(b"1-0:1.7.0(00.244*kW)", b"1-0:1.7.0(00.245*kW)")
    with pytest.raises(ChecksumError):
        plans.decode(check_telegram(bad))
    assert plans.hits == 0


def test_plans_are_bounded_and_a_structure_that_keeps_changing_is_left_alone():
    plans = TelegramPlans()
    raw = VECTORS["nl-dsmr50-iskra"]
    for decimals in range(1, 3 * MAX_PLANS):
        # Another number of decimals each time: a new shape for the same structure.
        changed = raw.replace(b"(00.244*kW)", b"(0." + b"2" * decimals + b"*kW)")
        plans.decode(check_telegram(_with_crc(changed)))
    assert len(plans) == MAX_COMPILES
    for name in sorted(VECTORS):
        plans.decode(check_telegram(VECTORS[name]))
    assert len(plans) <= MAX_PLANS


def test_the_reader_verdict_is_reused_and_other_content_is_checked():
    raw = VECTORS["nl-dsmr50-iskra"]
    reader = P1TelegramReader()
    (telegram,) = reader.read(raw)
    assert check_telegram(telegram.raw) is telegram
    copy = bytes(bytearray(telegram.raw))
    again = check_telegram(copy)
    assert again is not telegram
    assert (again.crc_present, again.crc_ok) == (True, True)
    damaged = copy.replace(b"00.244", b"00.245")
    assert not check_telegram(damaged).is_valid


@pytest.mark.parametrize("name", sorted(set(VECTORS) - NOT_COMPILED))
def test_new_digits_in_the_same_decimals_always_take_the_fast_path(name: str):
    original = _with_crc(VECTORS[name])
    plans = _learned(original)
    rng = random.Random(name)
    for _ in range(40):
        changed = check_telegram(_with_crc(_renumber(original, rng, reshape=False)))
        _same(plans.decode(changed), decode_telegram(changed))
    assert plans.hits == 40


def test_encrypted_p1_telegrams_take_the_plan_too():
    frame = smarty_frame(VECTORS["nl-dsmr50-iskra"])
    decoder = AutoDecoder(encryption_key=KEY, authentication_key=AUTH)
    first, second = decoder.decode(frame), decoder.decode(frame)
    full = decode_telegram(check_telegram(VECTORS["nl-dsmr50-iskra"]))
    _same(first, full)
    _same(second, full)
    assert decoder._telegrams.hits == 1


def test_an_object_line_that_runs_into_the_end_mark_is_not_compiled():
    # "...(0.5*kW)!CRC" is no object line for the full decoder: the plan must not read it either.
    raw = _with_crc(VECTORS["nl-dsmr50-iskra"].replace(b"0-2:96.1.0()\r\n!", b"1-0:2.7.0(0.5*kW)!"))
    telegram = check_telegram(raw)
    assert compile_plan(raw) is None
    plans = TelegramPlans()
    _same(plans.decode(telegram), decode_telegram(telegram))
    _same(plans.decode(telegram), decode_telegram(telegram))
    assert "1-0:2.7.0.255" in decode_telegram(telegram).obis  # the line earlier in the telegram


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(sorted(VECTORS)),
    seed=st.integers(0, 2**32),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
)
def test_plans_learned_from_odd_telegrams_still_equal_the_full_decoder(name, seed, flips):
    # The plan is learned from a damaged-but-CRC-correct telegram, then reads its relatives.
    rng = random.Random(seed)
    data = bytearray(_with_crc(VECTORS[name]))
    end = data.rindex(b"!")
    for position, value in flips:
        data[1 + position % (end - 1)] = rng.choice((value, *b"\r\n()*!.0 "))
    if rng.random() < 0.25:  # the last line runs into the end mark
        data[:end] = data[:end].rstrip(b"\r\n")
    learned = _with_crc(_mutate(bytes(data), rng, VALUE_TEXT, 2))
    plans = TelegramPlans()
    for raw in (learned, learned, _with_crc(_renumber(learned, rng, reshape=False))):
        _same_outcome(plans, check_telegram(raw))


def test_sub_meters_behind_the_port_come_from_the_plan_as_from_the_full_decoder():
    telegram = check_telegram(VECTORS["nl-dsmr50-iskra"])
    plans = TelegramPlans()
    readings = [plans.decode(telegram) for _ in range(3)]
    assert plans.hits == 2
    full = decode_telegram(telegram)
    assert full.sub_readings  # the gas meter on channel 1
    for reading in readings:
        _same(reading, full)
        assert reading.sub_readings == full.sub_readings
    # Each reading's sub-meters have dicts of their own, though the plan keeps one channel part.
    first, second = readings[1].sub_readings[0], readings[2].sub_readings[0]
    assert first.fields is not second.fields
    assert first.obis is not second.obis
