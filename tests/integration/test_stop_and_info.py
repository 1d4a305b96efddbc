"""The daemon's retained topics tell the truth: meters ``offline`` after a clean stop, a
``bridge/info`` that follows every state change, and frames rejected for a bad checksum counted."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Broker, Capture
from tests.integration.helpers import (
    AIDON,
    AIDON_ID,
    MeterSimulator,
    start_daemon,
    stop_daemon,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.broker]

BASE = "han2mqtt"
INFO = f"{BASE}/bridge/info"
AVAILABILITY = f"{BASE}/{AIDON_ID}/availability"


def _tcp(meter: MeterSimulator) -> dict[str, object]:
    return {"type": "tcp", "host": "127.0.0.1", "port": meter.port}


def _info(capture: Capture) -> dict[str, Any]:
    """The last ``bridge/info`` (empty before the first)."""
    info: dict[str, Any] = json.loads(capture.last(INFO) or "{}")
    return info


def _meter_online(capture: Capture) -> bool | None:
    online: bool | None = _info(capture).get("meters", {}).get(AIDON_ID, {}).get("online")
    return online


def test_a_clean_stop_leaves_every_meter_offline_before_the_bridge(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    # offline_after is long: only the stop can make the meter offline within this test.
    config = write_config(tmp_path, broker, _tcp(meter), meter={"offline_after": 300})
    capture = capture_factory(broker)
    daemon = start_daemon(config)
    try:
        capture.wait_value(AVAILABILITY, "online")
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    capture.wait_value(f"{BASE}/bridge/state", "offline")
    order = [(t, p) for t, p, _ in capture.messages if t in {AVAILABILITY, f"{BASE}/bridge/state"}]
    assert order[-2:] == [(AVAILABILITY, "offline"), (f"{BASE}/bridge/state", "offline")]
    late = capture_factory(broker)  # what a Home Assistant starting now is told
    late.wait_value(AVAILABILITY, "offline")
    late.wait_for(lambda _m: _meter_online(late) is False)


def test_bridge_info_follows_state_changes_not_only_the_interval(
    broker: Broker, capture_factory: Callable[..., Capture], meter: MeterSimulator, tmp_path: Path
):
    config = write_config(tmp_path, broker, _tcp(meter), publish={"info_interval": 600})
    capture = capture_factory(broker, (INFO,))
    daemon = start_daemon(config)
    try:
        # Connected, first frame, meter online: each is news, long before the interval.
        capture.wait_for(lambda _m: _meter_online(capture) is True)
        info = _info(capture)
        assert info["source"]["state"] == "connected"
        assert info["frames"] > 0
        meter.stop()  # the source is lost, then the meter goes offline: news again
        capture.wait_for(lambda _m: _meter_online(capture) is False, timeout=20)
        updates = capture.count(INFO)
    finally:
        meter.start()
        code, err = stop_daemon(daemon)
    assert code == 0, err
    assert updates < 15  # a handful of changes, at most one update a second


@pytest.fixture
def noisy_meter() -> Iterator[MeterSimulator]:
    """The Aidon meter, with every other list 2 frame damaged (one octet inside it flipped)."""
    damaged = bytearray(AIDON[0])
    damaged[len(damaged) // 2] ^= 0x55
    simulator = MeterSimulator([*AIDON, bytes(damaged)], interval=0.05)
    simulator.start()
    yield simulator
    simulator.stop()


def test_frames_with_a_bad_checksum_are_counted_and_summarized(
    broker: Broker,
    capture_factory: Callable[..., Capture],
    noisy_meter: MeterSimulator,
    tmp_path: Path,
):
    config = write_config(tmp_path, broker, _tcp(noisy_meter))
    capture = capture_factory(broker, (INFO,))
    daemon = start_daemon(config)
    try:
        capture.wait_for(lambda _m: _info(capture).get("bad_checksum", 0) >= 3)
        noisy_meter.stop()  # a new connection reads with a new reader: the count carries on
        time.sleep(0.5)
        before = _info(capture)["bad_checksum"]
        assert isinstance(before, int)
        noisy_meter.start()
        capture.wait_for(lambda _m: _info(capture)["bad_checksum"] > before + 2)
        info = _info(capture)
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    assert info["decode_errors"] == 0  # rejected by the framing, never decoded
    summaries = [line for line in err.splitlines() if "rejected for a bad checksum" in line]
    assert len(summaries) == 1, err  # a summary, not a line per frame
