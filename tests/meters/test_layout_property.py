"""Property: a random data-notification body is a reading of a recognised layout or a typed error.

And a reading never carries a value under an OBIS code the body does not carry, except where a
layout recognised from the frame itself says which code a bare value has: Kaifa's positional
lists (by their list identifier, and list 1, a lone integer), the Netz Burgenland E450 list (13
numbers and a text), Kamstrup's list identifier sent without its code, and the meter number some
Austrian lists send last without a code.
"""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from han2mqtt import AutoDecoder
from han2mqtt.errors import DecodeError
from han2mqtt.protocol.apdu import decode_data_notification
from han2mqtt.protocol.axdr import AxdrValue
from tests import encoder as enc

LAYOUTS = {
    "aidon",
    "kaifa",
    "kamstrup",
    "landisgyr",
    "landisgyr-e450-at",
    "generic",
    "self-describing",
    "iskra-si",
}
CODES = [
    "1-0:1.7.0.255",
    "1-0:2.7.0.255",
    "1-0:1.8.0.255",
    "1-0:32.7.0.255",
    "1-0:31.7.0.255",
    "0-0:96.1.0.255",
    "0-0:1.0.0.255",
    "1-1:0.2.129.255",
    "1-0:0.4.2.255",
]
TEXTS = ["KFM_001", "Kamstrup_V0001", "AIDON_V0001", "EMBRIQ_1", "6970631400000000", "x", ""]


class Node(NamedTuple):
    """Encoded A-XDR data and the OBIS codes (as text) it carries."""

    wire: bytes
    codes: frozenset[str]


def _obis_text(raw: bytes) -> str:
    return f"{raw[0]}-{raw[1]}:{raw[2]}.{raw[3]}.{raw[4]}.{raw[5]}"


def _leaf(wire: bytes) -> Node:
    return Node(wire, frozenset())


def _octets(raw: bytes) -> Node:
    return Node(enc.octets(raw), frozenset({_obis_text(raw)}) if len(raw) == 6 else frozenset())


def _code(text: str) -> Node:
    return Node(enc.obis(text), frozenset({text}))


LEAVES = st.one_of(
    st.just(_leaf(enc.null())),
    st.integers(0, 2**32 - 1).map(lambda n: _leaf(enc.u32(n))),
    st.integers(-(2**31), 2**31 - 1).map(lambda n: _leaf(enc.i32(n))),
    st.integers(0, 2**16 - 1).map(lambda n: _leaf(enc.u16(n))),
    st.integers(-128, 127).map(lambda n: _leaf(enc.i8(n))),
    st.integers(0, 255).map(lambda n: _leaf(enc.enum(n))),
    st.integers(0, 255).map(lambda n: _leaf(enc.u8(n))),
    st.booleans().map(lambda b: _leaf(enc.encode_value(b))),
    st.binary(max_size=16).map(_octets),
    st.sampled_from(CODES).map(_code),
    st.sampled_from(TEXTS).map(lambda t: _leaf(enc.visible(t))),
    st.sampled_from(TEXTS).map(lambda t: _leaf(enc.octets(t.encode()))),
    st.just(_leaf(enc.octets(enc.date_time(2026, 1, 2, 3, 4, 5)))),
    st.tuples(st.integers(-12, 12), st.integers(0, 255)).map(
        lambda su: _leaf(enc.scaler_unit(*su))
    ),
)


def _join(tag: bytes, children: list[Node]) -> Node:
    wire = tag + enc.length(len(children)) + b"".join(child.wire for child in children)
    return Node(wire, frozenset().union(*(child.codes for child in children)))


def _containers(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    items = st.lists(children, max_size=8)
    return st.one_of(items.map(lambda c: _join(b"\x02", c)), items.map(lambda c: _join(b"\x01", c)))


TREES = st.recursive(LEAVES, _containers, max_leaves=40)


@st.composite
def _capture_lists(draw: st.DrawFn) -> Node:
    """Self-describing lists, well formed or not: random definitions paired with random values."""
    definitions = draw(
        st.lists(
            st.tuples(
                st.sampled_from([1, 3, 4, 5, 8, 7]),
                st.sampled_from(CODES),
                st.integers(-2, 5),
                st.integers(0, 2),
            ),
            min_size=1,
            max_size=6,
        )
    )
    values = draw(st.lists(st.one_of(LEAVES, _containers(LEAVES)), max_size=7))
    wires = [
        enc.structure(enc.u16(c), enc.obis(code), enc.i8(a), enc.u16(i))
        for c, code, a, i in definitions
    ]
    codes = frozenset(code for _, code, _, _ in definitions)
    return _join(b"\x02", [Node(enc.array(*wires), codes), _join(b"\x01", values)])


@st.composite
def _obis_lists(draw: st.DrawFn) -> Node:
    """Flat OBIS/value(/scaler-unit) lists with loose values in between, as vendors send."""
    parts: list[Node] = []
    for code in draw(st.lists(st.sampled_from(CODES), max_size=8)):
        parts.append(_code(code))
        parts += draw(st.lists(LEAVES, min_size=0, max_size=2))
    return _join(b"\x02", draw(st.lists(LEAVES, max_size=1)) + parts)


BODIES = st.one_of(TREES, _capture_lists(), _obis_lists())


def _text(value: AxdrValue) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes) and all(0x20 <= b < 0x7F for b in value):
        return value.decode("ascii")
    return None


def _derived_codes(body: AxdrValue, layout: str) -> set[str] | None:
    """Codes a recognised layout may give bare values; None when the layout is positional."""
    if not isinstance(body, tuple | list):  # meters send the list as a structure or an array
        return set()
    first = _text(body[0]) if body else None
    if layout == "kaifa" and (first or "").startswith("KFM_"):
        return None  # positional, recognised by its list identifier
    if layout == "kaifa" and len(body) == 1 and type(body[0]) is int:
        return None  # Kaifa list 1: a lone integer, which nobody else sends
    if layout == "iskra-si":
        return None  # positional, recognised by its full structure (meters/iskra.py)
    if layout == "landisgyr-e450-at" and len(body) == 14 and _text(body[-1]) is not None:
        return None  # 13 numbers and the meter number (README: recognised by its shape)
    derived = set()
    if first is not None and first.startswith(("Kamstrup_", "KFM_", "AIDON_", "EMBRIQ_")):
        derived.add("1-1:0.2.129.255")  # the list identifier Kamstrup sends without a code
    last = _text(body[-1]) if body else None
    if last is not None and last.isdigit() and 6 <= len(last) <= 20:
        derived.add("0-0:96.1.0.255")  # a meter number sent last without a code (Netz NÖ)
    return derived


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES)
def test_random_bodies_give_a_recognised_reading_or_a_typed_error(body: Node):
    apdu = enc.notification(body.wire)
    try:
        reading = AutoDecoder().decode(enc.LLC + apdu)
    except DecodeError:
        return
    assert reading.layout in LAYOUTS
    derived = _derived_codes(decode_data_notification(apdu).body, reading.layout)
    if derived is None:
        return
    strangers = set(reading.obis) - body.codes - derived
    assert not strangers, (strangers, body.wire.hex())


def test_a_list_identifier_in_an_array_body_is_the_list_identifier():
    """Found by the property test: an array (not a structure) that starts with ``KFM_001``."""
    body = bytes.fromhex("01030a074b464d5f30303109060100010700ff00")
    reading = AutoDecoder().decode(enc.LLC + enc.notification(body))
    assert reading.fields["list_ver_id"] == "KFM_001"
    assert set(reading.obis) == {"1-1:0.2.129.255"}
    # A Kaifa list recognised by its identifier, whether sent as a structure or an array.
    assert _derived_codes(decode_data_notification(enc.notification(body)).body, "kaifa") is None
