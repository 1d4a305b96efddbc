import random

import pytest

from han2mqtt.protocol.crc import crc16_arc, crc16_arc_table, crc16_x25
from tests import corpus


def _x25_bitwise(data: bytes) -> int:
    """Reference: the textbook bit-by-bit reflected CRC-16/X.25."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


@pytest.mark.parametrize(
    ("function", "check"), [(crc16_x25, 0x906E), (crc16_arc, 0xBB3D)], ids=["x25", "arc"]
)
def test_catalogue_check_values(function, check):
    assert function(b"123456789") == check


def test_x25_matches_bitwise_reference_on_random_data():
    rng = random.Random(7)
    for length in range(300):
        data = rng.randbytes(length)
        assert crc16_x25(data) == _x25_bitwise(data)


def test_x25_of_a_real_frame_matches_its_hcs_and_fcs():
    # Aidon list 1 (corpus no-aidon-list1-escape-7d) without its flags.
    frame = bytes.fromhex(
        "A02A410883130413E6E7000F40000000000101020309060100010700FF060000067D02020F00161B1C05"
    )
    assert crc16_x25(frame[:6]) == int.from_bytes(frame[6:8], "little")
    assert crc16_x25(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def test_arc_matches_the_python_table_loop_on_random_data():
    # crc16_arc is crcmod's C loop where it is installed; the Python table loop is the fallback.
    rng = random.Random(11)
    for length in range(300):
        data = rng.randbytes(length)
        assert crc16_arc(data) == crc16_arc_table(data)
        assert crc16_arc(bytearray(data)) == crc16_arc(memoryview(data)) == crc16_arc(data)
    assert crc16_arc_table(b"123456789") == 0xBB3D


def test_arc_of_a_real_telegram_matches_its_crc():
    telegram = corpus.raw(corpus.by_id("nl-dsmr50-iskra"))
    end = telegram.rindex(b"!") + 1
    assert crc16_arc(telegram[:end]) == int(telegram[end : end + 4], 16)


def test_the_c_loop_of_the_crcmod_plus_dependency_is_in_use():
    # A dependency of han2mqtt: without its C extension P1 decoding loses a third of its speed.
    assert crc16_arc is not crc16_arc_table
