"""A day of Kamstrup frames replayed at full speed into ``han2mqtt run`` and a real mosquitto.

List 2 every 10 s and list 3 five seconds after every hour, all stamped with the meter clock, are
sent back to back over TCP: the day passes in seconds, and the energy stage must still give what
it would have given in real time, because it runs on the meter's clock.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from han2mqtt.energy import EnergyParameters, decode_state
from tests.conftest import Broker, Capture, free_port
from tests.energy.kamstrup import METER_ID, day_of_frames
from tests.integration.helpers import MeterSimulator, start_daemon, stop_daemon, write_config

pytestmark = [pytest.mark.integration, pytest.mark.broker]

DAY = datetime(2024, 5, 6)  # noqa: DTZ001 - the meter's naive local clock (Europe/Oslo)
BASE = f"han2mqtt/{METER_ID}"


class Replay:
    """A TCP meter that sends one stream once, as fast as the reader takes it, then idles."""

    def __init__(self, stream: bytes) -> None:
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._stream = stream
        self.go = threading.Event()
        """Set to start sending (once the daemon is connected to the broker)."""
        self._done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self._server.accept()
        with connection:
            self.go.wait(60)
            connection.sendall(self._stream)
            self._done.wait(120)

    def close(self) -> None:
        self._done.set()
        self._server.close()


@pytest.fixture
def replay() -> Iterator[Callable[[bytes], Replay]]:
    made: list[Replay] = []

    def make(stream: bytes) -> Replay:
        made.append(Replay(stream))
        return made[-1]

    yield make
    for item in made:
        item.close()


def _states(capture: Capture) -> list[dict[str, object]]:
    return [json.loads(p) for t, p, _ in capture.messages if t == f"{BASE}/state"]


@pytest.mark.timeout(150)
def test_a_day_replayed_at_full_speed_books_energy_in_the_right_hour(
    broker_factory: Callable[..., Broker],
    capture_factory: Callable[..., Capture],
    replay: Callable[[bytes], Replay],
    tmp_path: Path,
):
    frames, registers = day_of_frames(DAY)
    # A busy machine may leave the subscriber behind: the broker must queue, not drop.
    broker = broker_factory("allow_anonymous true\nmax_queued_messages 0\n")
    meter = replay(b"".join(frames))
    capture = capture_factory(broker, (f"{BASE}/state", "han2mqtt/bridge/state"))
    config = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": meter.port, "watchdog": 60},
        meter={"timezone": "Europe/Oslo", "offline_after": 60},
        mqtt={"queue_size": 100_000},
        # The state JSON only (it carries every derived value): a day of field topics would
        # measure the subscriber and the shared machine, not the energy stage.
        homeassistant={"discovery": False},
        publish={"obis": False, "fields": False},
        tariff={"preset": "no"},
    )
    started = time.monotonic()
    daemon = start_daemon(config)
    try:
        # Frames that arrive before the broker connection are coalesced (newest per topic).
        capture.wait_value("han2mqtt/bridge/state", "online", timeout=30)
        meter.go.set()
        last = f'"meter_time":"{(DAY + timedelta(days=1, seconds=5)).isoformat()}+02:00"'
        capture.wait_for(lambda m: bool(m) and last in m[-1][1], timeout=100)
    finally:
        code, err = stop_daemon(daemon)
    print(f"{len(frames)} frames in {time.monotonic() - started:.1f} s")
    assert code == 0, err
    states = _states(capture)
    assert len(states) == len(frames), f"{len(states)} of {len(frames)} states received"
    by_time = {str(state["meter_time"]): state for state in states}
    kwh = {moment: register / 100 for moment, register in registers.items()}
    for hour in range(1, 25):
        boundary = DAY + timedelta(hours=hour)
        before = by_time[(boundary - timedelta(seconds=10)).isoformat() + "+02:00"]
        consumption = kwh[boundary] - kwh[boundary - timedelta(hours=1)]
        tolerance = max(0.01 * consumption, 0.01)
        live = float(str(before["energy_import"]))
        assert abs(live - kwh[boundary]) <= tolerance, boundary
        closing = by_time[(boundary + timedelta(seconds=5)).isoformat() + "+02:00"]
        assert closing["energy_import_last_hour"] == round(consumption, 2), boundary
        assert closing["energy_import_last_hour_start"] == (
            (boundary - timedelta(hours=1)).isoformat() + "+02:00"
        )
    published = [
        float(str(s["energy_import_last_hour"])) for s in states if "energy_import_last_hour" in s
    ]
    hours = [DAY + timedelta(hours=h) for h in range(25)]
    assert published == [round(kwh[b] - kwh[a], 2) for a, b in pairwise(hours)]
    lives = [float(str(state["energy_import"])) for state in states if "energy_import" in state]
    assert lives == sorted(lives)
    peaks = states[-1]["tariff_peaks"]
    assert isinstance(peaks, list)  # a JSON list in the state JSON, not its text
    assert len(peaks) == 1  # 00:00-01:00 of the next day has just begun; one day's peak so far
    # The state file was written at stop.
    data = (tmp_path / "state" / "energy.json").read_bytes()
    assert METER_ID in decode_state(data, EnergyParameters())


def test_a_corrupt_state_file_is_moved_aside_and_replaced(
    broker: Broker,
    capture_factory: Callable[..., Capture],
    meter: MeterSimulator,
    tmp_path: Path,
):
    state = tmp_path / "state"
    state.mkdir()
    (state / "energy.json").write_text('{"version": 1, "meters": {"x": [')
    capture = capture_factory(broker, ("han2mqtt/+/state",))
    config = write_config(
        tmp_path, broker, {"type": "tcp", "host": "127.0.0.1", "port": meter.port}
    )
    daemon = start_daemon(config)
    try:
        capture.wait_for(lambda m: len(m) >= 3)
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    assert "unusable" in err
    assert "starting afresh" in err
    moved = list(state.glob("energy.json.bad-*"))
    assert len(moved) == 1
    assert moved[0].read_text() == '{"version": 1, "meters": {"x": ['
    assert decode_state((state / "energy.json").read_bytes(), EnergyParameters())
