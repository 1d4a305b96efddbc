from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt import AutoDecoder, Han2MqttError, LayoutError, kaifa, kamstrup
from tests import corpus, encoder

SEED_EXAMPLE = bytes.fromhex("e6e7000f40000000000101020309060100010700ff060000011802020f00161b")


def test_seed_example_decodes_as_aidon():
    decoded = AutoDecoder().decode_frame_content(SEED_EXAMPLE)
    assert decoded == {"meter_manufacturer": "Aidon", "active_power_import": 280}


def test_message_payload_without_llc_header():
    assert AutoDecoder().decode_message_payload(SEED_EXAMPLE[3:]) == {
        "meter_manufacturer": "Aidon",
        "active_power_import": 280,
    }


def test_bad_content_gives_none_and_is_counted():
    decoder = AutoDecoder()
    assert decoder.decode_frame_content(b"\xe6\xe7\x00\x0f\x00") is None
    assert decoder.stats.failed == 1
    assert decoder.stats.last_error


def test_a_frame_never_inherits_the_previous_layout():
    """amshan's AutoDecoder retries the last successful decoder first; a Kaifa list then
    decodes as whatever came before. Each frame is recognised on its own here."""
    decoder = AutoDecoder()
    order = [
        "no-kamstrup-list1-2018",
        "no-kaifa-ma304h3e-list2-2017",
        "no-aidon-6534-list2",
        "no-kaifa-ma304h3e-list1-2017",
        "no-kamstrup-list1-2018",
    ]
    layouts = [decoder.decode(corpus.content(corpus.by_id(i)) or b"").layout for i in order]
    assert layouts == ["kamstrup", "kaifa", "aidon", "kaifa", "kamstrup"]


def test_configured_meter_type_conflicting_with_the_frame_is_an_error():
    content = corpus.content(corpus.by_id("no-kamstrup-list1-2018")) or b""
    with pytest.raises(LayoutError, match="Kamstrup"):
        AutoDecoder("aidon").decode(content)


def test_unknown_meter_type_is_an_error():
    with pytest.raises(LayoutError):
        AutoDecoder("nonsense")


def test_vendor_modules_decode_their_own_lists():
    assert (
        kaifa.decode_frame_content(
            corpus.content(corpus.by_id("no-kaifa-ma304h3e-list1-2017")) or b""
        )["active_power_import"]
        == 1320
    )
    assert (
        kamstrup.decode_frame_content(
            corpus.content(corpus.by_id("no-kamstrup-list1-2018")) or b""
        )["meter_id"]
        == "5706567274389702"
    )


_MUTATION_SOURCES = [
    "no-aidon-6534-list3",
    "no-kaifa-ma304h3e-list2-2017",
    "no-kamstrup-list1-2018",
    "se-aidon-doc-3p-list",
]


@settings(max_examples=400, deadline=None)
@given(
    source=st.sampled_from(_MUTATION_SOURCES),
    flips=st.dictionaries(st.integers(0, 10_000), st.integers(1, 255), min_size=1, max_size=6),
    cut=st.integers(0, 10_000),
)
def test_mutated_or_truncated_contents_give_a_reading_or_a_typed_error(source, flips, cut):
    """Contents behind a good FCS are trusted for their bytes, but a decoder must still never
    crash on them: a corrupted structure is a typed error, never a foreign exception."""
    content = bytearray(corpus.content(corpus.by_id(source)) or b"")
    for position, mask in flips.items():
        content[position % len(content)] ^= mask
    decoder = AutoDecoder()
    for candidate in (bytes(content), bytes(content[: cut % (len(content) + 1)])):
        try:
            reading = decoder.feed(candidate)
        except Han2MqttError:
            continue
        assert reading is None or all(v is not None and v != "" for v in reading.fields.values())


def test_a_list_whose_only_value_is_text_for_a_number_decodes_to_nothing_of_it():
    # 1-0:1.8.0 (an energy register) sent as visible-string "123": dropped, never a crash.
    content = bytes.fromhex("e6e7000f40000000000101020309060100010800ff0a0331323302020f00161e")
    decoder = AutoDecoder()
    for _ in range(2):  # the second decode runs the compiled template of the first
        assert decoder.decode_frame_content(content) == {"meter_manufacturer": "Aidon"}


@pytest.mark.parametrize(
    ("scaler", "expected"),
    [
        ("0fff", 0.028),  # int8 -1: 280 x 0.1 Wh
        ("0f7f", None),  # int8 +127: an energy total of 10^127
        ("0f80", None),  # int8 -128: an energy total of 0.0
        ("107fff", None),  # a long: 32,768 digits
        ("057fffffff", None),  # a double-long: minutes of arithmetic
    ],
)
def test_scalers_out_of_range_are_a_layout_error_not_a_value(scaler: str, expected: float | None):
    content = bytes.fromhex(
        "e6e7000f40000000000101020309060100010800ff06000001180202" + scaler + "161e"
    )
    if expected is None:
        with pytest.raises(LayoutError, match="out of range"):
            AutoDecoder().decode(content)
        assert AutoDecoder().decode_frame_content(content) is None
    else:
        assert AutoDecoder().decode(content).fields["active_power_import_total"] == expected


def test_kamstrup_power_with_a_huge_scaler_is_a_typed_error():
    pairs = [
        encoder.visible("Kamstrup_V0001"),
        encoder.obis("1-1:0.0.5.255"),
        encoder.visible("5706567280463991"),
        encoder.obis("1-1:1.7.0.255"),
        encoder.u32(500),
        encoder.structure(encoder.i16(400), encoder.enum(27)),
        encoder.obis("1-1:31.7.0.255"),
        encoder.u32(100),
    ]
    content = encoder.LLC + b"\x0f\x00\x00\x00\x00\x00" + encoder.structure(*pairs)
    with pytest.raises(LayoutError):
        AutoDecoder().decode(content)
