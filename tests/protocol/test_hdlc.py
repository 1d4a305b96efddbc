"""HDLC frame reader: real vectors, damage recovery, and properties over any chunking."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt.protocol.hdlc import HdlcFrameReader, HdlcSegmentAssembler
from tests import corpus, encoder

AIDON_LIST1 = bytes.fromhex(
    "7EA02A410883130413E6E7000F40000000000101020309060100010700FF060000067D02020F00161B1C057E"
)
KAIFA_LIST1_WITH_7E = bytes.fromhex(corpus.by_id("no-kaifa-list1-flag-7e-in-info")["hex_or_text"])


def _good_hdlc_items() -> list[str]:
    return corpus.ids(lambda i: i["format"] == "hdlc" and i["verified"])


def _stream(ids: list[str]) -> tuple[bytes, int]:
    """Concatenate corpus frames into one stream; return it and its number of frames."""
    data = b"".join(corpus.raw(corpus.by_id(i)) for i in ids)
    count = sum(len(corpus.by_id(i)["verification"]["frames"]) for i in ids)
    return data, count


def test_reads_one_frame_with_addresses_and_payload():
    (frame,) = HdlcFrameReader().read(AIDON_LIST1)
    assert frame.is_valid
    assert frame.destination_address == b"\x41"
    assert frame.source_address == b"\x08\x83"
    assert frame.control == 0x13
    assert frame.frame_length == 42
    assert not frame.segmented
    assert frame.payload.startswith(b"\xe6\xe7\x00\x0f")
    assert frame.as_bytes() == AIDON_LIST1


@pytest.mark.parametrize("item_id", _good_hdlc_items())
def test_every_verified_corpus_frame_is_valid(item_id):
    item = corpus.by_id(item_id)
    frames = HdlcFrameReader().read(corpus.raw(item))
    expected = item["verification"]["frames"]
    assert [f.is_valid for f in frames] == [True] * len(expected)
    assert [f.segmented for f in frames] == [e["segmented"] for e in expected]


@pytest.mark.parametrize(
    "item_id",
    corpus.ids(
        lambda i: (
            i["format"] == "hdlc"
            and not i["verified"]
            and i["verification"]["status"] != "frames_ok_but_extra_bytes"
        )
    ),
)
def test_corpus_frames_with_bad_checksums_or_truncation_are_rejected(item_id):
    reader = HdlcFrameReader()
    frames = reader.read(corpus.raw(corpus.by_id(item_id))) + reader.flush()
    assert not any(f.is_valid for f in frames)


def test_payload_bytes_7e_and_7d_are_data_not_flags_or_escapes():
    item = corpus.by_id("no-aidon-list1-escape-7d")
    (frame,) = HdlcFrameReader().read(corpus.raw(item))
    assert frame.is_valid
    assert b"\x7d" in frame.payload
    (frame,) = HdlcFrameReader().read(corpus.raw(corpus.by_id("no-kaifa-list1-flag-7e-in-info")))
    assert frame.is_valid
    assert b"\x7e" in frame.payload


def test_shared_and_doubled_flags_between_frames():
    body = AIDON_LIST1[1:-1]
    shared = b"\x7e" + body + b"\x7e" + body + b"\x7e"
    doubled = AIDON_LIST1 + AIDON_LIST1
    for stream in (shared, doubled):
        assert [f.is_valid for f in HdlcFrameReader().read(stream)] == [True, True]


def test_truncated_frame_followed_by_good_frames_loses_none_of_them():
    truncated = AIDON_LIST1[:25]
    reader = HdlcFrameReader()
    frames = reader.read(truncated + AIDON_LIST1 + AIDON_LIST1)
    assert [f.is_valid for f in frames] == [False, True, True]
    assert reader.stats.frames_good == 2
    assert reader.stats.frames_bad == 1


def test_long_truncated_frame_does_not_delay_frames_behind_it():
    """A frame that announces 600 bytes but stops after 40 is reported as soon as an intact frame
    behind it is complete, not when 600 bytes have arrived."""
    item = corpus.by_id("se-aidon-doc-3p-list")
    long_frame = corpus.raw(item)
    reader = HdlcFrameReader()
    frames = reader.read(long_frame[:40] + AIDON_LIST1)
    assert [f.is_valid for f in frames] == [False, True]


def test_corrupted_frame_is_reported_and_the_next_one_is_kept():
    damaged = bytearray(AIDON_LIST1)
    damaged[30] ^= 0x01
    reader = HdlcFrameReader()
    frames = reader.read(bytes(damaged) + AIDON_LIST1)
    assert [f.is_valid for f in frames] == [False, True]
    assert frames[0].is_good_hcs and not frames[0].is_good_ffc


def test_flush_reports_a_pending_partial_frame():
    reader = HdlcFrameReader()
    assert reader.read(AIDON_LIST1[:30]) == []
    (frame,) = reader.flush()
    assert not frame.is_expected_length
    assert reader.buffered == 0


def test_segmented_frames_reassemble_to_one_content():
    item = corpus.by_id("xx-iskra-am550-hdlc-segmented")
    assembler = HdlcSegmentAssembler()
    results = [assembler.add(f) for f in HdlcFrameReader().read(corpus.raw(item))]
    assert results[:2] == [None, None]
    assert results[2] is not None
    assert results[2].startswith(b"\xe6\xe7\x00\x0f")


def test_segment_chain_with_a_damaged_frame_is_dropped():
    first = encoder.hdlc(b"\xe6\xe7\x00\x0f\x40\x00", segmented=True)
    last = bytearray(encoder.hdlc(b"\x00\x00\x01\x00"))
    last[-4] ^= 0xFF
    assembler = HdlcSegmentAssembler()
    results = [assembler.add(f) for f in HdlcFrameReader().read(first + bytes(last))]
    assert results == [None, None]
    assert assembler.chains_dropped == 1


def test_octet_stuffing_is_opt_in():
    information = b"\xe6\xe7\x00\x7e\x7d\x01"
    frame = encoder.hdlc(information)
    stuffed = (
        frame[:1]
        + frame[1:-1].replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e")
        + frame[-1:]
    )
    (decoded,) = HdlcFrameReader(use_octet_stuffing=True).read(stuffed)
    assert decoded.is_valid
    assert decoded.payload == information


def test_address_lengths_one_to_four_bytes():
    for dest, src in (
        (b"\x03", b"\x21"),
        (b"\x00\x02\x00\x21", b"\x03"),
        (b"\x02\x23", b"\x00\x02\x00\x01"),
    ):
        (frame,) = HdlcFrameReader().read(encoder.hdlc(b"\xe6\xe7\x00\x0f", dest=dest, src=src))
        assert frame.is_valid
        assert (frame.destination_address, frame.source_address) == (dest, src)


# -- properties -------------------------------------------------------------------------------

_STREAM_IDS = [
    "no-aidon-6534-list2",
    "no-kaifa-list1-flag-7e-in-info",
    "no-kamstrup-list1-2018",
    "no-aidon-list1-escape-7d",
    "se-aidon-doc-3p-list",
    "xx-iskra-am550-hdlc-segmented",
]


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=40))
def test_any_chunking_yields_the_same_frames(cuts):
    stream, count = _stream(_STREAM_IDS)
    reader = HdlcFrameReader()
    frames = []
    previous = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        frames += reader.read(stream[previous:cut])
        previous = cut
    assert len(frames) == count
    assert all(f.is_valid for f in frames)
    whole = HdlcFrameReader().read(stream)
    assert [f.raw for f in frames] == [f.raw for f in whole]


@settings(max_examples=200, deadline=None)
@given(
    garbage=st.lists(st.binary(max_size=60), min_size=7, max_size=7),
    split=st.integers(min_value=1, max_value=64),
)
def test_intact_frames_after_injected_garbage_are_all_recovered(garbage, split):
    frames = [
        corpus.raw(corpus.by_id(i)) for i in _STREAM_IDS if i != "xx-iskra-am550-hdlc-segmented"
    ]
    stream = (
        garbage[0]
        + b"".join(g + f for g, f in zip(garbage[1:], frames, strict=False))
        + garbage[-1]
    )
    reader = HdlcFrameReader()
    got = []
    for start in range(0, len(stream), split):
        got += reader.read(stream[start : start + split])
    got += reader.flush()
    good = [f.raw for f in got if f.is_valid]
    assert good == [f[1:-1] for f in frames]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000))
def test_random_bytes_never_raise_and_never_yield_a_valid_frame_by_accident(data):
    reader = HdlcFrameReader()
    frames = reader.read(data) + reader.flush()
    # A random valid frame needs a matching HCS and FCS (2^-32): hypothesis will not find one.
    assert not any(f.is_valid for f in frames)


def test_mutated_frames_are_never_valid_and_the_reader_recovers():
    rng = random.Random(1)
    base = corpus.raw(corpus.by_id("no-kamstrup-list1-2018"))
    for _ in range(500):
        mutated = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(1, len(mutated) - 1)] ^= 1 << rng.randrange(8)
        reader = HdlcFrameReader()
        frames = reader.read(bytes(mutated) + AIDON_LIST1)
        assert frames[-1].is_valid
        assert frames[-1].raw == AIDON_LIST1[1:-1]
        assert all(not f.is_valid for f in frames[:-1])


def test_the_corpus_copy_is_current():
    if not corpus.SHARED.exists():
        pytest.skip(f"no shared corpus at {corpus.SHARED} to compare the copy with")
    assert corpus.VENDORED.read_bytes() == corpus.SHARED.read_bytes(), (
        f"refresh the copy: cp {corpus.SHARED} {corpus.VENDORED}"
    )
