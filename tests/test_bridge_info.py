"""``bridge/info`` after state changes (rate-limited), the checksum counter and its log summary,
and what a clean stop publishes: the bridge driven with a clock and the printing publisher."""

from __future__ import annotations

import json
import logging

import pytest

from han2mqtt.bridge import Bridge, PrintPublisher
from han2mqtt.config import Settings
from han2mqtt.io import ConnectionState
from han2mqtt.protocol.hdlc import HdlcFrameReader
from han2mqtt.simulator import load_samples

AIDON_ID = "7359992891237028"
INFO = "han2mqtt/bridge/info"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _bridge(**sections: object) -> tuple[Bridge, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    bridge = Bridge(
        Settings.model_validate(sections), PrintPublisher("han2mqtt", lines.append), clock
    )
    return bridge, lines, clock


def _infos(lines: list[str]) -> list[dict[str, object]]:
    prefix = INFO + " "
    return [
        json.loads(line.removeprefix(prefix).removesuffix(" (retained)\n"))
        for line in lines
        if line.startswith(prefix)
    ]


LIST2 = HdlcFrameReader().read(load_samples()[0])[0].payload


def test_info_follows_changes_at_most_once_a_second():
    bridge, lines, clock = _bridge(publish={"info_interval": 600})
    bridge.publish_info_when_due()  # at start
    assert len(_infos(lines)) == 1
    for _ in range(10):  # a flapping source
        bridge.on_source_state(ConnectionState.CONNECTED)
        bridge.publish_info_when_due()
        bridge.on_source_state(ConnectionState.CLOSED)
        bridge.publish_info_when_due()
    assert len(_infos(lines)) == 1
    clock.now += 1.0
    bridge.on_source_state(ConnectionState.CONNECTED)
    bridge.publish_info_when_due()
    assert _infos(lines)[-1]["source"] == {"type": "serial", "state": "connected"}
    clock.now += 1.0
    bridge.handle_content(LIST2)  # first frame, meter online
    bridge.publish_info_when_due()
    assert len(_infos(lines)) == 3
    assert _infos(lines)[-1]["frames"] == 1
    clock.now += 5.0
    bridge.publish_info_when_due()  # nothing new, the interval is far
    assert len(_infos(lines)) == 3
    clock.now += 600
    bridge.publish_info_when_due()
    assert len(_infos(lines)) == 4


def test_bad_checksums_are_counted_and_summarized(caplog: pytest.LogCaptureFixture):
    bridge, lines, clock = _bridge()
    with caplog.at_level(logging.WARNING):
        bridge.count_bad_frames(3)
        bridge.count_bad_frames(5)
        clock.now += 100
        bridge.count_bad_frames(9)
        clock.now += 200
        bridge.count_bad_frames(9)
        bridge.count_bad_frames(9)
    summaries = [r.getMessage() for r in caplog.records if "bad checksum" in r.getMessage()]
    assert len(summaries) == 2
    assert summaries[0].startswith("3 frame(s)")
    assert summaries[1].startswith("6 frame(s)")
    bridge.publish_info_when_due()
    assert _infos(lines)[-1]["bad_checksum"] == 9
    assert _infos(lines)[-1]["decode_errors"] == 0


def test_a_clean_stop_takes_every_online_meter_offline():
    bridge, lines, _clock = _bridge()
    bridge.handle_content(LIST2)
    lines.clear()
    bridge.on_stop()
    assert f"han2mqtt/{AIDON_ID}/availability offline (retained)\n" in lines
    assert _infos(lines)[-1]["meters"] == {
        AIDON_ID: {"online": False, "frames": 1, "manufacturer": "Aidon", "type": "6534"}
    }


def test_tic_groups_with_a_bad_checksum_are_counted_in_info():
    from han2mqtt.simulator.linky import linky_frames  # noqa: PLC0415

    frame = linky_frames(1)[0]
    # Break one group's checksum (PAPP's value): that group is dropped, the frame still decodes.
    at = frame.index(b"PAPP ") + 5
    broken = frame[:at] + bytes([frame[at] ^ 0x01]) + frame[at + 1 :]
    bridge, _lines, _clock = _bridge()
    bridge.handle_content(broken)
    info = json.loads(bridge.info_message().payload)
    assert info["tic_groups_dropped"] == 1
    assert info["decoded"] == 1
