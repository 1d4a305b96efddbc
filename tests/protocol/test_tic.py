"""TIC framing: group checksums of both modes, bad groups dropped alone, resync on noise and EOT."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt.protocol.stream import ContentReader
from han2mqtt.protocol.tic import (
    TicFrameReader,
    TicMode,
    frames_from_text,
    horodate_iso,
    parse_frame,
    parse_group,
)
from tests import tic
from tests.corpus import by_id, raw


def _frames(data: bytes, chunk: int) -> list[tuple[tuple[str, str], ...]]:
    reader = TicFrameReader()
    frames = [f for i in range(0, len(data), chunk) for f in reader.read(data[i : i + chunk])]
    return [tuple((g.label, g.value) for g in frame.groups) for frame in frames]


def test_every_group_of_the_historique_captures_passes_its_checksum():
    for item_id in (tic.HISTORIQUE, tic.HISTORIQUE_CUT):
        frames = [parse_frame(f) for f in frames_from_text(tic.text(item_id))]
        assert all(frame.bad_groups == 0 for frame in frames)
        assert all(g.mode is TicMode.HISTORIC for frame in frames for g in frame.groups)
    frame = parse_frame(frames_from_text(tic.text(tic.HISTORIQUE))[0])
    assert frame.value("ADCO") == "111111111111"
    assert frame.value("PTEC") == "HP.."  # the checksum character after it is a space


def test_standard_groups_pass_and_the_masked_ids_fail():
    (raw_frame,) = frames_from_text(tic.text(tic.STANDARD))
    frame = parse_frame(raw_frame)
    assert len(frame.groups) == 51
    assert frame.bad_groups == 2  # ADSC and PRM: the poster replaced digits with dots
    assert {g.label for g in frame.groups}.isdisjoint({"ADSC", "PRM"})
    assert all(g.mode is TicMode.STANDARD for g in frame.groups)
    smax = next(g for g in frame.groups if g.label == "SMAXSN")
    assert (smax.horodate, smax.value) == ("E210718001319", "03680")
    date = next(g for g in frame.groups if g.label == "DATE")
    assert (date.horodate, date.value) == ("E210718111041", "")
    assert frame.value("NGTF") == "      BASE      "  # blanks kept: they are in the checksum


@pytest.mark.parametrize(
    "line",
    [
        b"EASD02\t00134230\t%",  # esphome/issues#4690: the meter sends '%', the sum gives '>'
        b"ADSC\t021662096073\t8",  # hekmon/linkytic#51: computed '7', sent '8'
        b"EASD01\t06476 712\tA",  # hekmon/linkytic#51: a character lost on the line
    ],
)
def test_groups_the_sources_report_as_bad_are_dropped(line: bytes):
    assert parse_group(line) is None


def test_a_bad_group_costs_only_itself():
    lines = tic.text(tic.HISTORIQUE).splitlines()
    lines[3] = lines[3][:-1] + ("*" if lines[3][-1] != "*" else "+")  # HCHC's checksum broken
    frame = parse_frame(frames_from_text("\n".join(lines))[0])
    assert frame.bad_groups == 1
    assert frame.value("HCHC") is None
    assert frame.value("HCHP") == "049126843"
    assert len(frame.groups) == 10


@pytest.mark.parametrize("chunk", [1, 7, 100, 10_000])
@pytest.mark.parametrize("parity", [False, True])
def test_any_chunking_and_the_parity_bit_give_the_same_frames(chunk: int, parity: bool):
    data = tic.wire(tic.HISTORIQUE) * 3 + tic.wire(tic.STANDARD)
    expected = _frames(data, len(data))
    assert len(expected) == 4
    assert _frames(tic.with_parity(data) if parity else data, chunk) == expected


def test_eot_drops_the_interrupted_frame_and_the_next_one_is_read():
    whole = tic.wire(tic.HISTORIQUE)
    reader = TicFrameReader()
    frames = reader.read(whole[:40] + b"\x04" + whole + whole[:30] + whole)
    assert [len(f.groups) for f in frames] == [11, 11]
    assert reader.interrupted == 2  # EOT, and a new STX before the ETX


def test_noise_between_frames_is_skipped():
    whole = tic.wire(tic.HISTORIQUE)
    rng = random.Random(4)
    noise = bytes(b for b in rng.randbytes(5000) if b & 0x7F not in (2, 3, 4))
    reader = TicFrameReader()
    frames = reader.read(noise + whole + noise + whole)
    assert [len(f.groups) for f in frames] == [11, 11]
    assert reader.bytes_discarded == 2 * len(noise)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=4000), chunk=st.integers(1, 500))
def test_random_bytes_never_raise(data: bytes, chunk: int):
    reader = TicFrameReader()
    for i in range(0, len(data), chunk):
        reader.read(data[i : i + chunk])
    reader.flush()


def test_an_endless_frame_is_bounded():
    reader = TicFrameReader()
    assert reader.read(b"\x02" + b"\nA 1 Q\r" * 3000) == []
    assert len(reader._buffer) <= 8 * 1024
    assert reader.read(tic.wire(tic.HISTORIQUE))[0].value("ADCO") == "111111111111"


@pytest.mark.parametrize(
    ("horodate", "iso"),
    [
        ("E210718111041", "2021-07-18T11:10:41+02:00"),
        ("H240213083135", "2024-02-13T08:31:35+01:00"),
        ("e210718111041", None),  # the meter's own clock is in degraded mode: not certain
        (" 210718111041", None),
        ("E2107181110", None),
    ],
)
def test_horodate(horodate: str, iso: str | None):
    assert horodate_iso(horodate) == iso


@pytest.mark.parametrize("chunk", [1, 64, 4096])
def test_auto_recognises_tic_after_hdlc_and_noise(chunk: int):
    hdlc = raw(by_id("no-aidon-6534-list2"))
    rng = random.Random(7)
    stream = rng.randbytes(3000) + hdlc + tic.with_parity(tic.wire(tic.HISTORIQUE)) * 2
    reader = ContentReader("auto")
    contents = [c for i in range(0, len(stream), chunk) for c in reader.read(stream[i : i + chunk])]
    tic_contents = [c for c in contents if c[:1] == b"\x02"]
    assert len(tic_contents) == 2
    assert reader.format == "tic"


def test_a_frame_without_its_meter_id_is_no_content():
    reader = ContentReader("tic")
    assert reader.read(tic.wire(tic.STANDARD)) == []  # ADSC masked by the poster
    assert reader.stats.bad == 1
    assert len(reader.read(tic.wire(tic.HISTORIQUE))) == 1


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=3000))
def test_noise_is_never_taken_for_tic(data: bytes):
    reader = ContentReader("auto")
    assert all(c[:1] != b"\x02" for c in reader.read(data))


def test_a_relay_that_publishes_tic_frames():
    from han2mqtt.protocol.relay import RelayDemux  # noqa: PLC0415

    demux = RelayDemux()
    relayed = demux.read("linky/raw", tic.with_parity(tic.wire(tic.HISTORIQUE)))
    assert relayed.problem is None
    assert len(relayed.contents) == 1
    assert relayed.contents[0][:1] == b"\x02"
