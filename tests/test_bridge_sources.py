"""The bridge with many sources (MQTT relay topics): decoder state and meter ids per topic."""

from __future__ import annotations

import json

from han2mqtt.bridge import METER_ID_GRACE
from han2mqtt.protocol.hdlc import HdlcFrameReader
from han2mqtt.protocol.stream import ContentReader
from han2mqtt.tracker import UNKNOWN_METER
from tests import corpus
from tests.fleet import meter_frames, meter_id
from tests.test_bridge import _bridge


def _contents(number: int) -> list[bytes]:
    """Lists 2, 1, 3 of fleet meter ``number`` as frame contents."""
    reader = ContentReader("hdlc")
    return [content for frame in meter_frames(number) for content in reader.read(frame)]


def _state_topics(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[0] for line in lines if line.split(" ", 1)[0].endswith("/state")]


def test_list1_takes_the_meter_of_its_own_topic_not_the_last_one_seen():
    bridge, printed, _ = _bridge()
    one, two = _contents(1), _contents(2)
    bridge.handle_content(one[0], source="relay/1")
    bridge.handle_content(two[0], source="relay/2")
    printed.clear()
    bridge.handle_content(one[1], source="relay/1")  # list 1: no id; the last id seen was 2's
    assert _state_topics(printed.lines) == [f"han2mqtt/{meter_id(1)}/state"]


def test_list1_of_a_new_topic_waits_for_its_own_meter_then_is_unknown():
    bridge, printed, clock = _bridge()
    bridge.handle_content(_contents(1)[0], source="relay/1")
    printed.clear()
    bridge.handle_content(_contents(2)[1], source="relay/2")
    assert printed.lines == []  # held back, not attributed to meter 1
    assert bridge.held_back == 1
    clock.now += METER_ID_GRACE + 1
    bridge.handle_content(_contents(2)[1], source="relay/2")
    assert _state_topics(printed.lines) == [f"han2mqtt/{UNKNOWN_METER}/state"]
    printed.clear()
    bridge.handle_content(_contents(2)[0], source="relay/2")  # the topic names its meter
    assert UNKNOWN_METER not in bridge.tracker.meters
    assert _state_topics(printed.lines) == [f"han2mqtt/{meter_id(2)}/state"]


def test_decoders_per_topic_are_bounded_and_count_together():
    bridge, _, _ = _bridge(source={"type": "mqtt", "topic": "relay/#", "max_topics": 5})
    for number in range(20):
        bridge.handle_content(_contents(number)[0], source=f"relay/{number}")
    assert len(bridge._sources) == 5
    assert bridge.decoder.stats.decoded == 20
    assert len(bridge.tracker.meters) == 20


def test_malformed_payload_counters_are_in_bridge_info():
    bridge, _, _ = _bridge()
    bridge.source_counters["unrecognised"] = 3
    info = json.loads(bridge.info_message().payload)
    assert info["source"]["unrecognised"] == 3


def test_block_transfers_of_two_topics_interleaved_both_complete():
    """General-block-transfer blocks join per topic (the L&G E450 capture, ciphered, 3 blocks)."""
    item = corpus.by_id("xx-landisgyr-e450-gbt-enc-testkey")
    meter = {"encryption_key": item["key_hex"], "authentication_key": item["auth_key_hex"]}
    bridge, _, _ = _bridge(meter=meter)
    blocks = [frame.payload for frame in HdlcFrameReader().read(corpus.raw(item))]
    assert len(blocks) == 3
    for block in blocks:
        bridge.handle_content(block, source="relay/a")
        bridge.handle_content(block, source="relay/b")
    assert bridge.decode_errors == 0
    assert bridge.decoder.stats.decoded == 2
