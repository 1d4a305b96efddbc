"""MQTT relay payloads → frame contents: every form relays use, per-topic state, bad payloads."""

from __future__ import annotations

import base64
import random

import pytest

from han2mqtt.protocol.relay import PayloadProblem, RelayDemux, TopicReader, unpack_payload
from han2mqtt.protocol.stream import ContentReader, Format
from tests import corpus
from tests.fleet import AIDON_LISTS, information, meter_frames

LIST2 = meter_frames(1)[0]
CONTENT = information(AIDON_LISTS[0], 1)
P1 = b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.7.0(01.193*kW)\r\n!"


@pytest.mark.parametrize(
    ("payload", "payload_format", "expected"),
    [
        (LIST2, "auto", LIST2),
        (LIST2.hex().encode(), "auto", LIST2),
        (LIST2.hex().upper().encode() + b"\n", "auto", LIST2),
        (" ".join(f"{b:02x}" for b in LIST2).encode(), "auto", LIST2),
        (base64.b64encode(LIST2), "auto", LIST2),
        (P1, "auto", P1),
        (LIST2.hex().encode(), "hex", LIST2),
        (base64.b64encode(LIST2), "base64", LIST2),
        (LIST2.hex().encode(), "binary", LIST2.hex().encode()),
        (b"0f40", "base64", base64.b64decode(b"0f40")),  # hex digits, but told base64
        (b"xyz", "hex", None),
        (b"abc", "hex", None),  # odd number of digits
        (b"!!!!", "base64", None),
        (b"zz" + LIST2.hex().encode(), "auto", b"zz" + LIST2.hex().encode()),
    ],
)
def test_unpack_payload(payload: bytes, payload_format, expected: bytes | None):
    assert unpack_payload(payload, payload_format) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (LIST2, [CONTENT]),
        (LIST2[1:-1], [CONTENT]),  # no flags
        (LIST2[1:-1] * 2, [CONTENT, CONTENT]),  # two frames, no flags
        (LIST2 + LIST2, [CONTENT, CONTENT]),
        (LIST2[:-1] + LIST2, [CONTENT, CONTENT]),  # a shared flag
        (CONTENT, [CONTENT]),  # LLC + data-notification
        (CONTENT[3:], [CONTENT[3:]]),  # a bare data-notification
        (b"\xdb\x08" + bytes(20), [b"\xdb\x08" + bytes(20)]),  # ciphered: the decoder's business
    ],
)
def test_a_payload_gives_its_contents(payload: bytes, expected: list[bytes]):
    relayed = TopicReader().read(payload)
    assert relayed.contents == expected
    assert relayed.problem is None


def test_segments_and_split_frames_join_per_topic():
    demux = RelayDemux()
    one, two = meter_frames(1, segmented=True), meter_frames(2, segmented=True)
    assert demux.read("a", one[0]).contents == []
    assert demux.read("b", two[0]).contents == []
    assert demux.read("a", one[1]).contents == [information(AIDON_LISTS[0], 1)]
    assert demux.read("b", two[1]).contents == [information(AIDON_LISTS[0], 2)]
    # One frame cut across two messages (a relay with a small buffer).
    assert demux.read("a", LIST2[:50]) == ([], None)
    assert demux.read("b", meter_frames(2)[0][:70]) == ([], None)
    assert demux.read("a", LIST2[50:]).contents == [CONTENT]


def test_a_p1_telegram_across_messages():
    reader = TopicReader()
    telegram = _p1_with_crc()
    assert reader.read(telegram[:30]).contents == []
    assert reader.read(telegram[30:]).contents == [telegram.removesuffix(b"\r\n")]


def _p1_with_crc() -> bytes:
    from han2mqtt.protocol.crc import crc16_arc  # noqa: PLC0415

    body = b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.7.0(01.193*kW)\r\n1-0:2.7.0(00.000*kW)\r\n!"
    return body + f"{crc16_arc(body):04X}\r\n".encode()


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"", PayloadProblem.EMPTY),
        (b"hello world", PayloadProblem.UNRECOGNISED),
        (b"\x01\x02\x03", PayloadProblem.UNRECOGNISED),
        (LIST2[:40] + b"\x00" + LIST2[41:], PayloadProblem.BAD_FRAME),
    ],
)
def test_a_bad_payload_says_what_is_wrong(payload: bytes, problem: PayloadProblem):
    relayed = TopicReader().read(payload)
    assert relayed.contents == []
    assert relayed.problem is problem


def test_encoding_problems_come_from_the_format():
    assert RelayDemux("hex").read("t", b"not hex").problem is PayloadProblem.ENCODING


def test_topics_are_bounded_least_recent_first():
    demux = RelayDemux(max_topics=3)
    for topic in "abcd":
        demux.read(topic, meter_frames(1, segmented=True)[0])
    assert len(demux) == 3
    assert demux.evicted == 1
    assert demux.read("d", meter_frames(1, segmented=True)[1]).contents == [CONTENT]
    assert demux.evicted == 1
    # "a" was forgotten (a topic heard again starts afresh), evicting "b".
    assert demux.read("a", meter_frames(1, segmented=True)[0]).contents == []
    assert demux.evicted == 2
    assert demux.read("c", meter_frames(1, segmented=True)[1]).contents == [CONTENT]


def test_random_payloads_never_raise():
    rng = random.Random(7)
    demux = RelayDemux()
    for _ in range(3000):
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
        if rng.random() < 0.3:
            payload = LIST2[: rng.randrange(len(LIST2))] + payload
        relayed = demux.read(f"t{rng.randrange(4)}", payload)
        assert all(isinstance(content, bytes) for content in relayed.contents)


PORT_FORMAT: dict[str, Format] = {"mbus-long": "mbus", "p1": "p1", "hdlc": "hdlc"}


@pytest.mark.parametrize("framing", ["mbus-long", "p1", "hdlc"])
def test_corpus_captures_sent_whole_give_what_a_port_gives(framing: str):
    """One message per capture: the same contents as the port's reader finds in the bytes."""
    for item_id in corpus.ids(lambda i, f=framing: i["format"] == f):
        raw = corpus.raw(corpus.by_id(item_id))
        port = ContentReader(PORT_FORMAT[framing])
        expected = port.read(raw)
        relayed = TopicReader().read(raw)
        assert relayed.contents == expected, item_id
        assert (relayed.problem is None) == (port.stats.bad == 0), item_id
