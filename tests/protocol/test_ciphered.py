"""Bare ciphered APDUs on a serial line (Smarty): where frames start and end, in any chunks."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from han2mqtt import AutoDecoder
from han2mqtt.errors import DecryptionError
from han2mqtt.protocol.ciphered import MAX_BODY, CipheredApduReader
from han2mqtt.protocol.stream import ContentReader
from tests.protocol.test_encrypted_p1 import AUTH, KEY, _telegram, smarty_frame

FRAME = smarty_frame(_telegram())


def _read_all(reader: CipheredApduReader, stream: bytes, size: int) -> list[bytes]:
    frames: list[bytes] = []
    for start in range(0, len(stream), size):
        frames += reader.read(stream[start : start + size])
    return frames


@pytest.mark.parametrize("size", [1, 7, 64, 1024, 100_000])
def test_back_to_back_frames_in_any_chunking(size: int):
    assert _read_all(CipheredApduReader(), FRAME * 3, size) == [FRAME] * 3


def test_noise_between_frames_is_skipped_and_counted():
    noise = bytes(random.Random(5).randrange(256) for _ in range(300)).replace(b"\xdb", b"\x00")
    reader = CipheredApduReader()
    assert _read_all(reader, noise + FRAME + noise + FRAME, 50) == [FRAME, FRAME]
    assert reader.stats.skipped_bytes == 600


@pytest.mark.parametrize(
    "false_start",
    [
        b"\xdb\x08" + bytes(8) + b"\x83\x00\x00\x10",  # a length form A-XDR has no use for here
        b"\xdb\x08" + bytes(8) + b"\x05\x30",  # a body too short to hold counter and tag
        b"\xdb\x08" + bytes(8) + b"\x82" + (MAX_BODY + 1).to_bytes(2, "big") + b"\x30",
        b"\xdb\x08" + bytes(8) + b"\x40\x99",  # no security control of suite 0
    ],
)
def test_a_start_no_frame_can_have_does_not_swallow_the_next_frame(false_start: bytes):
    assert CipheredApduReader().read(false_start + FRAME) == [FRAME]


@pytest.mark.parametrize("size", [1, 33, 4096])
def test_a_frame_cut_short_does_not_take_the_next_frame_with_it(size: int):
    stream = FRAME[:40] + FRAME + FRAME[: len(FRAME) // 2] + FRAME
    assert _read_all(CipheredApduReader(), stream, size) == [FRAME, FRAME]


def test_a_truncated_frame_waits_then_the_next_header_is_not_lost_in_it():
    reader = CipheredApduReader()
    assert reader.read(FRAME[:100]) == []
    assert reader.read(FRAME[100:]) == [FRAME]


@given(st.binary(max_size=2000))
def test_random_bytes_never_raise_and_the_buffer_stays_bounded(noise: bytes):
    reader = CipheredApduReader()
    frames = reader.read(noise) + reader.read(FRAME)
    assert all(frame.startswith(b"\xdb\x08") for frame in frames)
    assert len(reader._buffer) <= len(FRAME) + MAX_BODY + 16


def test_content_reader_apdu_format_feeds_the_decoder():
    reader = ContentReader("apdu")
    decoder = AutoDecoder(encryption_key=KEY, authentication_key=AUTH)
    (content,) = reader.read(b"\x00\xff" + FRAME)
    assert decoder.decode(content).fields["active_power_import"] == 244


def test_auto_does_not_guess_bare_apdus():
    """An encrypted HDLC frame carries the same bytes inside: auto must not read them twice."""
    assert ContentReader("auto").read(FRAME) == []


def test_a_false_frame_is_a_decryption_error_and_the_next_frame_still_decodes():
    garbage = b"\xdb\x08" + bytes(8) + b"\x20\x30" + bytes(31)
    reader = ContentReader("apdu")
    decoder = AutoDecoder(encryption_key=KEY, authentication_key=AUTH)
    first, second = reader.read(garbage + FRAME)
    with pytest.raises(DecryptionError):
        decoder.decode(first)
    assert decoder.decode(second).fields["active_power_import"] == 244
