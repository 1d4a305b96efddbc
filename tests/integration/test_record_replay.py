"""``han2mqtt record`` and ``source.type: file``: what the day gave, again, through the daemon."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from han2mqtt.mqtt.discovery import DERIVED_CLASSES
from han2mqtt.protocol.recording import Chunk, format_line, header_lines, parse_recording
from tests.conftest import Broker, Capture
from tests.fleet import meter_frames, meter_id
from tests.integration.helpers import (
    AIDON,
    AIDON_ID,
    MeterSimulator,
    clean_env,
    han2mqtt,
    start_daemon,
    stop_daemon,
    write_config,
)
from tests.integration.test_mqtt_source import Relay, wait_subscribed

pytestmark = [pytest.mark.integration, pytest.mark.broker]

BASE = "han2mqtt"


def _states(capture: Capture, meter: str) -> list[dict[str, object]]:
    with capture.lock:
        return [
            json.loads(payload)
            for topic, payload, _ in capture.messages
            if topic == f"{BASE}/{meter}/state"
        ]


def _replay(broker: Broker, directory: Path, recording: Path) -> subprocess.CompletedProcess[str]:
    """``han2mqtt run`` on the recording at full speed: it stops by itself at the end."""
    directory.mkdir()
    config = write_config(
        directory,
        broker,
        {"type": "file", "path": str(recording), "speed": "max"},
        mqtt={"client_id": "replay"},
    )
    process = start_daemon(config)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        _, err = stop_daemon(process)
        raise AssertionError(f"the replay did not end by itself:\n{err}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_a_recording_of_the_tcp_meter_replayed_at_max_gives_the_same_readings(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    simulator = MeterSimulator(AIDON, interval=0.05)
    simulator.start()
    recording = tmp_path / "meter.rec"
    try:
        config = write_config(
            tmp_path, broker, {"type": "tcp", "host": "127.0.0.1", "port": simulator.port}
        )
        done = han2mqtt(
            "record", "--config", str(config), "--output", str(recording), "--duration", "1.5"
        )
    finally:
        simulator.stop()
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr  # no progress line when stderr is not a terminal
    text = recording.read_text()
    assert text.startswith("# han2mqtt recording 1\n")
    assert f"tcp 127.0.0.1:{simulator.port}" in text.splitlines()[1]
    chunks = list(parse_recording(text.splitlines()))
    assert len(chunks) >= 10
    assert b"".join(chunk.data for chunk in chunks).startswith(AIDON[0])  # raw, as it came

    decoded = han2mqtt("decode", str(recording))
    assert decoded.returncode == 0, decoded.stderr
    expected = [json.loads(line) for line in decoded.stdout.splitlines()]
    assert len(expected) >= 10

    capture = capture_factory(broker)
    replay = _replay(broker, tmp_path / "replay", recording)
    assert replay.returncode == 0, replay.stderr
    capture.wait_for(lambda _m: len(_states(capture, AIDON_ID)) == len(expected))
    states = _states(capture, AIDON_ID)
    recorded_times = {chunk.received_at for chunk in chunks}
    for state, reading in zip(states, expected, strict=True):
        stamp = datetime.fromisoformat(str(state.pop("timestamp")))
        assert stamp in recorded_times  # the day's receive time, not the replay's
        # The reading as decoded; the energy stage's values come on top of it.
        assert {k: v for k, v in state.items() if k not in DERIVED_CLASSES} == reading
    assert "replayed" in replay.stderr


def test_a_recording_of_an_mqtt_source_keeps_each_topic_apart_on_replay(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    """Two meters' segments interleaved on two topics: recorded with topics, replayed apart.

    Recorded beside a running bridge with the same configuration (a shared group even): the
    bridge keeps every message, the recording gets every message too.
    """
    config = write_config(
        tmp_path, broker, {"type": "mqtt", "topic": "relay/+", "shared_group": "fleet"}
    )
    live = capture_factory(broker, ("han2mqtt/+/state", "han2mqtt/bridge/info"))
    bridge = start_daemon(config)
    recording = tmp_path / "relays.rec"
    command = [sys.executable, "-m", "han2mqtt", "record", "--config", str(config)]
    recorder = subprocess.Popen(
        [*command, "--output", str(recording)],
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )

    def recorded() -> str:
        return recording.read_text() if recording.exists() else ""

    relay = Relay(broker)
    try:
        wait_subscribed(live)
        deadline = time.monotonic() + 30
        while "relay/probe" not in recorded() and time.monotonic() < deadline:
            relay.send("relay/probe", b"\x00")  # until the recorder has subscribed too
            time.sleep(0.1)
        one, two = meter_frames(1, segmented=True), meter_frames(2, segmented=True)
        for first, second in zip(one, two, strict=True):
            relay.send("relay/one two", first.hex())  # a space in the topic, a hex payload
            relay.send("relay/2", second)
        while recorded().count("relay/2 ") < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        relay.close()
        recorder.send_signal(signal.SIGINT)  # Ctrl-C ends a recording
        _, err = recorder.communicate(timeout=20)
    assert recorder.returncode == 0, err
    live.wait_for(lambda _m: all(len(_states(live, meter_id(n))) == 3 for n in (1, 2)))
    code, bridge_err = stop_daemon(bridge)
    assert code == 0, bridge_err
    chunks = [
        chunk
        for chunk in parse_recording(recording.read_text().splitlines())
        if chunk.topic != "relay/probe"
    ]
    assert [chunk.topic for chunk in chunks] == ["relay/one two", "relay/2"] * 6
    assert chunks[0].data == one[0].hex().encode()  # raw: the payload as it came

    capture = capture_factory(broker)
    live.clear()
    replay = _replay(broker, tmp_path / "replay", recording)
    assert replay.returncode == 0, replay.stderr
    capture.wait_for(lambda _m: all(len(_states(capture, meter_id(n))) == 3 for n in (1, 2)))
    for number in (1, 2):
        assert _states(capture, meter_id(number))[1]["active_power_import"] == 512
    assert not _states(capture, "unknown")


def test_record_shows_progress_on_a_terminal_and_writes_to_stdout(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text("source:\n  type: demo\n  demo_interval: 0.05\n")
    command = [sys.executable, "-m", "han2mqtt", "record", "--config", str(config)]
    controller, terminal = os.openpty()
    try:
        done = subprocess.run(
            [*command, "--output", "-", "--duration", "1.2"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            env=clean_env(),
            timeout=30,
            check=False,
        )
        os.close(terminal)
        shown = _read_all(controller)
    finally:
        os.close(controller)
    assert done.returncode == 0
    assert "\rrecording: " in shown
    assert " chunks, " in shown
    chunks = list(parse_recording(done.stdout.splitlines()))
    assert len(chunks) >= 5


def _read_all(fd: int) -> str:
    data = b""
    with contextlib.suppress(OSError):  # EIO once the other side is closed
        while chunk := os.read(fd, 4096):
            data += chunk
    return data.decode(errors="replace")


def test_a_realtime_replay_stops_on_sigterm(broker: Broker, tmp_path: Path):
    recording = tmp_path / "slow.rec"
    lines = [*header_lines("test")]
    frames = meter_frames(1)
    for index, frame in enumerate(frames):
        stamp = datetime(2026, 11, 29, 12, 0, tzinfo=UTC) + timedelta(hours=index)
        lines.append(format_line(Chunk(stamp, frame)))
    recording.write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path, broker, {"type": "file", "path": str(recording)})
    daemon = start_daemon(config)
    time.sleep(2)
    assert daemon.poll() is None  # waiting an hour for the second chunk
    code, err = stop_daemon(daemon)
    assert code == 0, err
    assert "Traceback" not in err
