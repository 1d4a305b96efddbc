"""Framing auto-detection: evidence decides, line noise never locks a framing out (issue 11.1)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt import AutoDecoder
from han2mqtt.protocol.crc import crc16_arc
from han2mqtt.protocol.p1 import P1Telegram, P1TelegramReader
from han2mqtt.protocol.stream import ContentReader, Format
from tests import corpus

AIDON = "no-aidon-6534-list2"
KAIFA = "no-kaifa-ma304h3e-list2-2017"
MBUS = "at-kaifa-tinetz-doc-testkey"
P1_CRC = "nl-dsmr42-kaifa"
P1_NO_CRC = "nl-dsmr30-iskra-nocrc"
STREAMS: dict[str, tuple[Format, str]] = {
    "aidon": ("hdlc", AIDON),
    "kaifa": ("hdlc", KAIFA),
    "mbus": ("mbus", MBUS),
    "p1-crc": ("p1", P1_CRC),
    "p1-no-crc": ("p1", P1_NO_CRC),
}


def _frame(item_id: str) -> bytes:
    raw = corpus.raw(corpus.by_id(item_id))
    return raw if raw.endswith((b"\n", b"~")) else raw + b"\r\n"


def _real(name: str, count: int = 10) -> tuple[bytes, list[bytes]]:
    """``count`` real frames of one framing, and the contents a reader of that framing gives."""
    framing, item_id = STREAMS[name]
    stream = _frame(item_id) * count
    expected = ContentReader(framing).read(stream)
    assert len(expected) == count
    return stream, expected


def _read(reader: ContentReader, stream: bytes, chunk: int) -> list[bytes]:
    return [c for i in range(0, len(stream), chunk) for c in reader.read(stream[i : i + chunk])]


@pytest.mark.parametrize("chunk", [1, 64, 4096])
def test_line_noise_before_the_first_aidon_frame_costs_no_frame(chunk: int):
    # The soak's case: five bytes pass as a CRC-less P1 telegram; HDLC was then ignored for good.
    stream, expected = _real("aidon")
    reader = ContentReader("auto")
    contents = _read(reader, b"/x!\r\n" + stream, chunk)
    assert contents == expected
    assert reader.format == "hdlc"
    decoder = AutoDecoder()
    assert sum(decoder.feed(content) is not None for content in contents) == 10


@pytest.mark.parametrize("name", list(STREAMS))
def test_random_bytes_then_real_frames_every_frame_is_read(name: str):
    # 16 KiB of random bytes locked detection onto P1 in 26% of the soak's runs.
    stream, expected = _real(name)
    framing = STREAMS[name][0]
    for seed in range(40):
        rng = random.Random(seed)
        reader = ContentReader("auto")
        contents = _read(reader, rng.randbytes(16 * 1024) + stream, rng.choice((1, 61, 1024)))
        assert contents == expected, f"seed {seed}"
        assert reader.format == framing


@settings(max_examples=150, deadline=None)
@given(
    garbage=st.binary(max_size=3000),
    name=st.sampled_from(list(STREAMS)),
    chunk=st.integers(1, 700),
)
def test_any_garbage_before_real_frames_costs_none_of_them(garbage: bytes, name: str, chunk: int):
    stream, expected = _real(name, 3)
    assert _read(ContentReader("auto"), garbage + stream, chunk) == expected


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("aidon", "p1-crc"),
        ("aidon", "p1-no-crc"),
        ("p1-crc", "kaifa"),
        ("p1-no-crc", "mbus"),
        ("mbus", "aidon"),
    ],
)
def test_the_framing_follows_the_evidence_in_both_directions(first: str, then: str):
    # A port re-plugged (or an ser2net bridge switched) to another meter without a reconnect.
    one, one_expected = _real(first, 3)
    two, two_expected = _real(then, 3)
    for chunk in (1, 97, 4096):
        reader = ContentReader("auto")
        assert _read(reader, one, chunk) == one_expected
        assert reader.format == STREAMS[first][0]
        assert _read(reader, two, chunk) == two_expected
        assert reader.format == STREAMS[then][0]


def test_noise_in_the_detected_framing_counts_as_bad_frames_and_other_framings_do_not():
    stream, _ = _real("aidon", 3)
    reader = ContentReader("auto")
    reader.read(stream + b"/x!\r\n" + bytes(range(256)) * 4 + stream)
    assert reader.stats.good == 6
    assert reader.stats.bad == 0  # the P1 and M-Bus readers saw noise, not bad frames
    reader.read(stream[:-5] + b"\x00\x00\x00\x00\x7e")  # a frame with a bad FCS
    assert reader.stats.bad >= 1


DSMR22_GAS = (
    b"/ISk5\\2MT382-1000\r\n\r\n0-1:24.3.0(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n"
    b"(00001.001)\r\n!"
)


def _crc_telegram(body: bytes) -> bytes:
    return body + f"{crc16_arc(body):04X}".encode()


@pytest.mark.parametrize(
    ("raw", "plausible"),
    [
        (b"/x!", False),
        (b"/ISk5\\2MT382-1000\r\n\r\n!", False),  # an identification, but no object line
        (b"/ISk5\\2MT382-1000\r\n\r\nnoise(1)\r\n!", False),
        (b"/garbage\r\n1-0:1.8.1(000123.456*kWh)\r\n!", False),  # no identification
        (b"/ISk5\\2MT382-1000 1-0:1.8.1(000123.456*kWh)\r\n!", False),  # not on its own line
        (b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(000123.456*kWh)\r\n!", True),
        (DSMR22_GAS, True),  # DSMR 2.2 gas: the value on a continuation line
        (_crc_telegram(b"/x!"), True),  # a CRC that checks is enough
        (_crc_telegram(b"/x!")[:-1] + b"G", False),  # a damaged CRC
    ],
)
def test_a_p1_telegram_is_plausible_only_as_a_meter_could_send_it(raw: bytes, plausible: bool):
    (telegram,) = P1TelegramReader().read(raw + b"\r\n")
    assert telegram.is_plausible is plausible


@pytest.mark.parametrize("item_id", corpus.ids(lambda i: i["format"] == "p1"))
def test_every_corpus_telegram_with_a_good_or_no_crc_is_plausible(item_id: str):
    item = corpus.by_id(item_id)
    reader = P1TelegramReader()
    (telegram,) = reader.read(_frame(item_id)) + reader.flush()
    assert telegram.is_plausible is (item["verification"]["status"] != "bad_crc")


def test_configured_p1_drops_noise_that_merely_looks_delimited():
    reader = ContentReader("p1")
    assert reader.read(b"/x!\r\n" + _frame(P1_NO_CRC)) == [_frame(P1_NO_CRC).rstrip(b"\r\n")]
    assert reader.stats.bad == 1


def test_a_run_of_slashes_is_dropped_in_bounded_steps_and_the_telegram_after_it_read():
    reader = P1TelegramReader()
    for _ in range(100):
        assert reader.read(b"/" * 1024) == []
        assert len(reader._buffer) <= 16 * 1024 + 1024
    (telegram,) = reader.read(_frame(P1_CRC))
    assert telegram.is_plausible
    assert isinstance(telegram, P1Telegram)
    assert reader.bytes_discarded == 100 * 1024 + 2  # and the line end after the CRC
