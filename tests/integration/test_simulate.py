"""``han2mqtt simulate`` and ``python -m han2mqtt.simulator``: a meter users can run, for real."""

from __future__ import annotations

import re
import shlex
import signal
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from han2mqtt.autodecoder import AutoDecoder
from han2mqtt.protocol.hdlc import HdlcFrameReader
from tests.conftest import Broker, Capture, free_port
from tests.integration.helpers import SAMPLES, clean_env, stop_daemon

ROOT = Path(__file__).resolve().parents[2]
HAN2MQTT = Path(sys.executable).parent / "han2mqtt"  # the console script, as users run it
ANNOUNCE = re.compile(r"serving (\d+) built-in meter frames on 127\.0\.0\.1:(\d+), one step every ")
LIVE = re.compile(r"serving simulated meters (.*) \(meter time (.*)x\) on 127\.0\.0\.1:(\d+), ")

pytestmark = [pytest.mark.integration]


def _simulate(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``han2mqtt simulate`` through the console script, as users do, to its end."""
    return subprocess.run(
        [str(HAN2MQTT), "simulate", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=clean_env(),
    )


def _start(*command: str) -> tuple[subprocess.Popen[str], int]:
    """Start a simulator command and read the port from its first line."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env()
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = ANNOUNCE.match(line) or LIVE.match(line)
    if match is None:
        process.kill()
        raise AssertionError(f"no announcement: {line!r} {process.communicate()[1]}")
    if match.re is ANNOUNCE:
        assert int(match.group(1)) == len(SAMPLES)
    return process, int(match.groups()[-1])


def _read_frames(port: int, count: int) -> list[bytes]:
    reader = HdlcFrameReader()
    frames: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        while len(frames) < count:
            chunk = sock.recv(4096)
            assert chunk, "the simulator closed the connection"
            frames.extend(b"\x7e" + f.raw + b"\x7e" for f in reader.read(chunk) if f.is_valid)
    # One recv may bring more than was asked for (a loaded machine lets frames pile up).
    return frames[:count]


@pytest.mark.parametrize(
    "command",
    [[str(HAN2MQTT), "simulate"], [sys.executable, "-m", "han2mqtt.simulator"]],
    ids=["han2mqtt-simulate", "python-m-han2mqtt.simulator"],
)
def test_the_simulator_serves_every_built_in_frame_and_stops_cleanly(command: list[str]):
    process, port = _start(*command, "--replay", "--port", "0", "--interval", "0.01")
    try:
        frames = _read_frames(port, len(SAMPLES) + 2)
        # Every client gets every frame, valid and unchanged, in order, then again from the start.
        assert frames == [*SAMPLES, *SAMPLES[:2]]
        assert _read_frames(port, 1) == SAMPLES[:1]
    finally:
        code, err = stop_daemon(process, signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err


def test_simulate_says_why_it_cannot_listen():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _simulate("--port", str(port))
    assert result.returncode == 2
    assert result.stderr == (
        f"han2mqtt: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
    bad = _simulate("--interval", "-1")
    assert bad.returncode == 2
    assert "--interval" in bad.stderr


def _wait_seen(capture: Capture, topic: str) -> None:
    capture.wait_for(lambda messages: any(seen == topic for seen, _, _ in messages))


def _readme_quick_start() -> tuple[list[str], list[str]]:
    """The simulator's and the bridge's command lines from the README's quick start."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### Try it without a meter", 1)[1].split("```sh\n", 1)[1]
    lines = [line for line in block.split("```", 1)[0].splitlines() if line.strip()]
    simulate = next(shlex.split(line, comments=True) for line in lines if " simulate" in line)
    run = next(shlex.split(line, comments=True) for line in lines if line.endswith(" run"))
    return simulate, run


@pytest.mark.broker
def test_the_readme_quick_start_publishes_the_simulated_meters(
    broker: Broker, capture_factory, tmp_path: Path
):
    """The README's two terminals, as written: only the ports differ (free ones)."""
    simulate, run = _readme_quick_start()
    assert simulate[0] == ".venv/bin/han2mqtt"
    capture: Capture = capture_factory(broker)
    process, port = _start(str(HAN2MQTT), *simulate[1:], "--port", "0", "--interval", "0.05")
    env = clean_env()
    while "=" in run[0]:
        name, _, value = run.pop(0).partition("=")
        env[name] = value
    assert run == [".venv/bin/han2mqtt", "run"]
    assert env["HAN2MQTT_SOURCE__TYPE"] == "tcp"
    assert env["HAN2MQTT_SOURCE__PORT"] == "8899"  # simulate's default
    assert env["HAN2MQTT_MQTT__HOST"] == "localhost"
    env.update(
        HAN2MQTT_SOURCE__PORT=str(port),
        HAN2MQTT_MQTT__HOST=broker.host,
        HAN2MQTT_MQTT__PORT=str(broker.port),
        HAN2MQTT_MQTT__CLIENT_ID=f"quick-start-{free_port()}",
    )
    daemon = subprocess.Popen(
        [str(HAN2MQTT), "run"],
        cwd=tmp_path,  # no ./config.yaml: environment variables only
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The simulated meters: Aidon, Kaifa, Kamstrup and a P1 meter.
        for meter in (
            "7359992891237028",
            "6970631401753985",
            "5706567274389702",
            "E0044007131650618",
        ):
            _wait_seen(capture, f"han2mqtt/{meter}/state")
            capture.wait_value(f"han2mqtt/{meter}/availability", "online")
    finally:
        code, err = stop_daemon(daemon)
        sim_code, sim_err = stop_daemon(process)
    assert code == 0, err
    assert sim_code == 0, sim_err


def test_simulated_meters_clocks_move_at_the_given_speed():
    process, port = _start(
        str(HAN2MQTT),
        "simulate",
        "--meter",
        "kaifa",
        "--port",
        "0",
        "--interval",
        "0.05",
        "--speed",
        "1200",
    )
    try:
        frames = _read_frames(port, 6)
    finally:
        code, err = stop_daemon(process, signal.SIGINT)
    assert code == 0, err
    decoder, reader = AutoDecoder(), HdlcFrameReader()
    times = []
    for frame in frames:
        for found in reader.read(frame):
            reading = decoder.feed(found.payload)
            assert reading is not None and reading.layout == "kaifa"
            times.append(datetime.fromisoformat(str(reading.fields["meter_datetime"])))
    assert times == sorted(times) and len(set(times)) == len(times)  # the clock moves
    assert times[-1] - times[0] >= timedelta(minutes=4)  # 0.05 s x 1200 = a minute a step


def test_simulate_names_an_unknown_meter():
    result = _simulate("--meter", "lnky", "--port", "0")
    assert result.returncode == 2
    assert "unknown simulated meter 'lnky'" in result.stderr
