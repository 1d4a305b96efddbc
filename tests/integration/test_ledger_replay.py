"""Three days across the October DST change replayed into ``han2mqtt run``: the ledger's numbers.

Kamstrup lists every 30 s (list 2) and five seconds after every hour (list 3, with the hour's
registers), stamped with the meter's naive local clock, so the autumn day repeats 02:00-03:00.
The daemon is stopped at 14:30 on the DST day and started again (two recordings, one state
directory), and the meter resends the previous hour's list in place of one hourly list.  Every
hour, quarter, day and the month from ``han2mqtt export`` and ``/api/history`` is compared with
the registers the meter held; the live counter at 15:00 after the restart too.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from han2mqtt.history import open_database
from han2mqtt.history.ledger import LedgerStore
from han2mqtt.protocol.recording import Chunk, format_line, header_lines
from tests.conftest import Broker, Capture, free_port
from tests.energy.kamstrup import LIST3_DELAY, METER_ID, kamstrup_frame, power_at
from tests.integration.helpers import (
    han2mqtt,
    run_until_done,
    start_daemon,
    stop_daemon,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.broker]

OSLO = ZoneInfo("Europe/Oslo")
STEP = timedelta(seconds=30)
BASE = f"han2mqtt/{METER_ID}"


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=OSLO).astimezone(UTC)


FIRST, LAST = utc(10, 24), utc(10, 27)
RESTART = utc(10, 25, 14, 30)
LAST_HOUR = timedelta(hours=1)
REPEATED = utc(10, 26, 9)
"""The meter sends the 08:00 list again in place of the 09:00 one."""


class Meter:
    """Three days of frames, and what the meter counted (registers, true quarters)."""

    def __init__(self) -> None:
        self.frames: list[tuple[datetime, bytes]] = []
        self.registers: dict[datetime, float] = {}  # kWh at each hour
        self.quarters: dict[datetime, float] = {}
        self.counted: dict[datetime, float] = {}  # kWh the meter has counted at each frame
        energy = 12_345_600 * 10.0  # Wh
        moment, index, last_list = FIRST - STEP, 0, b""
        while moment < LAST + timedelta(minutes=3):
            power = power_at(index)
            self.counted[moment] = energy / 1000
            naive = moment.astimezone(OSLO).replace(tzinfo=None)
            self.frames.append((moment, kamstrup_frame(naive, power)))
            if moment.minute == 0 and moment.second == 0:
                register = int(energy // 10)
                self.registers[moment] = register / 100
                listed = kamstrup_frame(naive + LIST3_DELAY, power, (register, 0))
                sent = last_list if moment == REPEATED else listed
                self.frames.append((moment + LIST3_DELAY, sent))
                last_list = listed
            quarter = moment - timedelta(minutes=moment.minute % 15, seconds=moment.second)
            self.quarters[quarter] = self.quarters.get(quarter, 0.0) + power * 30 / 3_600_000
            energy += power * 30 / 3600
            moment += STEP
            index += 1

    def recording(self, path: Path, start: datetime, end: datetime) -> Path:
        lines = header_lines("three days across the October DST change")
        lines += [
            format_line(Chunk(moment + timedelta(seconds=1), frame))
            for moment, frame in self.frames
            if start <= moment < end
        ]
        path.write_text("\n".join(lines) + "\n")
        return path

    def between(self, start: datetime, end: datetime) -> float:
        return self.registers[end] - self.registers[start]


def _replay(broker: Broker, directory: Path, recording: Path, port: int) -> str:
    config = write_config(
        directory,
        broker,
        {"type": "file", "path": str(recording), "speed": "max"},
        meter={"timezone": "Europe/Oslo", "offline_after": 600},
        mqtt={"client_id": "ledger", "queue_size": 100_000},
        homeassistant={"discovery": False},
        publish={"obis": False, "fields": False},
        web={"port": port},
    )
    return run_until_done(config)


def _intervals(
    config: Path,
    resolution: str,
    fmt: str = "json",
    period: tuple[str, str] = ("2026-10-24", "2026-10-27"),
) -> list[dict[str, object]]:
    done = han2mqtt(
        "export", "--config", str(config), "--resolution", resolution,
        "--from", period[0], "--to", period[1], "--format", fmt,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(done.stdout)))
    document = json.loads(done.stdout)
    assert document["meter"] == METER_ID
    assert document["unit"] == "kWh"
    return list(document["intervals"])


def _start(interval: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(interval["start"])).astimezone(UTC)


@pytest.mark.timeout(600)
def test_three_days_with_a_restart_and_a_repeated_list(  # noqa: PLR0915 - one long story
    broker_factory: Callable[..., Broker],
    capture_factory: Callable[..., Capture],
    tmp_path: Path,
):
    meter = Meter()
    broker = broker_factory("allow_anonymous true\nmax_queued_messages 0\n")
    capture = capture_factory(broker, (f"{BASE}/state",))
    port = free_port()
    first_run = meter.recording(tmp_path / "a.rec", FIRST - STEP, RESTART)
    second_run = meter.recording(tmp_path / "b.rec", RESTART, LAST + LAST_HOUR)
    _replay(broker, tmp_path, first_run, port)
    log = _replay(broker, tmp_path, second_run, port)
    assert log.count("repeated its previous list") == 1
    config = tmp_path / "config.yaml"

    # The live counter at 15:00 after the restart at 14:30 (was 1.33 kWh short of the register).
    states = [json.loads(p) for t, p, _ in capture.messages if t == f"{BASE}/state"]
    at = {str(s.get("meter_time")): s for s in states}
    before = at["2026-10-25T14:59:30+01:00"]
    counted = meter.counted[utc(10, 25, 14, 59) + timedelta(seconds=30)]
    assert float(before["energy_import"]) == pytest.approx(counted, abs=0.015)

    hours = {_start(i): i for i in _intervals(config, "hour")}
    assert len(hours) == 24 + 25 + 24
    repeated = {REPEATED - timedelta(hours=1), REPEATED}
    for start, hour in hours.items():
        expected = meter.between(start, start + timedelta(hours=1))
        if start in repeated:
            assert hour["estimated"] is True
            continue
        assert hour["estimated"] is False, start
        assert hour["import"] == pytest.approx(expected, abs=1e-6), start
        assert hour["export"] == pytest.approx(0.0, abs=1e-9)
        assert hour["cost"] is None
        assert hour["revenue"] is None
    pair = sum(float(str(hours[start]["import"])) for start in repeated)
    both = meter.between(REPEATED - LAST_HOUR, REPEATED + LAST_HOUR)
    assert pair == pytest.approx(both, abs=1e-6)
    local = [s.astimezone(OSLO) for s in hours]
    twice = [s for s in local if s.day == 25 and s.hour == 2]
    assert len(twice) == 2  # 02:00+02:00 and 02:00+01:00

    quarters = {_start(i): i for i in _intervals(config, "quarter")}
    assert len(quarters) == 4 * (24 + 25 + 24)
    for start, quarter in quarters.items():
        assert quarter["estimated"] is True  # an hourly meter: registers bracket hours only
        # Scaled to the registers: within the registers' 10 Wh of what the meter counted.
        assert float(str(quarter["import"])) == pytest.approx(meter.quarters[start], abs=0.011)
    for start, hour in hours.items():
        parts = [quarters[start + timedelta(minutes=m)]["import"] for m in (0, 15, 30, 45)]
        total = sum(float(str(p)) for p in parts)
        assert total == pytest.approx(float(str(hour["import"])), abs=1e-9)

    days = {_start(i): i for i in _intervals(config, "day")}
    assert sorted(days) == [utc(10, 24), utc(10, 25), utc(10, 26)]
    for start, day in days.items():
        end = (start + timedelta(hours=30)).astimezone(OSLO).replace(hour=0).astimezone(UTC)
        assert float(str(day["import"])) == pytest.approx(meter.between(start, end), abs=1e-6)
    assert days[utc(10, 26)]["estimated"] is True
    assert days[utc(10, 24)]["estimated"] is False
    (month,) = _intervals(config, "month", period=("2026-10-01", "2026-11-01"))
    assert month["start"] == "2026-10-01T00:00:00+02:00"
    assert float(str(month["import"])) == pytest.approx(meter.between(FIRST, LAST), abs=1e-6)
    assert month["estimated"] is True  # three days of October

    rows = _intervals(config, "hour", "csv")
    assert list(rows[0]) == ["start", "import_kwh", "export_kwh", "cost", "revenue", "estimated"]
    assert len(rows) == 73
    first = meter.between(FIRST, FIRST + LAST_HOUR)
    assert float(str(rows[0]["import_kwh"])) == pytest.approx(first, abs=1e-6)

    asyncio.run(_api_matches(config, broker, tmp_path, hours))


async def _api_matches(
    config: Path, broker: Broker, tmp_path: Path, hours: dict[datetime, dict[str, object]]
) -> None:
    """The same hours from ``/api/history`` of a running daemon, and 400s for bad parameters."""
    port = free_port()
    idle = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    live = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": idle.sockets[0].getsockname()[1],
         "watchdog": None},
        meter={"timezone": "Europe/Oslo"},
        web={"port": port},
    )  # fmt: skip
    assert live == config
    daemon = start_daemon(live)
    url = f"http://127.0.0.1:{port}/api/history"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(url, params={"minutes": "1"}) as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            query = {"resolution": "hour", "from": "2026-10-24", "to": "2026-10-27"}
            async with session.get(url, params=query) as response:
                assert response.status == 200
                answer = await response.json()
            assert answer["meter"] == METER_ID
            assert {_start(i): i for i in answer["intervals"]} == hours
            for bad in (
                {"resolution": "week"},
                {"resolution": "hour", "from": "yesterday"},
                {"resolution": "hour", "from": "2026-10-27", "to": "2026-10-24"},
                {"resolution": "hour", "meter": "nobody"},
                {"resolution": "quarter", "from": "2000-01-01", "to": "2026-01-01"},
                {"resolution": "hour", "minutes": "5"},
                {"resolution": "hour", "colour": "red"},
            ):
                async with session.get(url, params=bad) as response:
                    assert response.status == 400, bad
                    text = await response.text()
                    assert "\n" not in text
                    assert set(json.loads(text)) == {"error"}
            async with session.get(url + "?resolution=hour&resolution=day") as response:
                assert response.status == 400
    finally:
        code, err = stop_daemon(daemon)
        idle.close()
    assert code == 0, err


@pytest.mark.timeout(60)
def test_a_second_daemon_on_the_same_state_dir_stops_with_a_clear_error(
    broker: Broker, tmp_path: Path
):
    config = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": free_port(), "watchdog": None},
        meter={"timezone": "Europe/Oslo"},
    )
    first = start_daemon(config)
    try:
        lock = tmp_path / "state" / "history.sqlite.lock"
        for _ in range(100):
            if lock.exists():
                break
            asyncio.run(asyncio.sleep(0.1))
        second = han2mqtt("run", "--config", str(config), timeout=30)
    finally:
        code, err = stop_daemon(first)
    assert code == 0, err
    assert second.returncode == 1
    assert "in use by another process" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.timeout(120)
def test_a_read_only_database_keeps_the_live_values_and_says_so_once(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    """The database cannot be written (``chattr +i``: not even root may): live values go on."""
    meter = Meter()
    recording = meter.recording(tmp_path / "hours.rec", FIRST - STEP, FIRST + 3 * LAST_HOUR)
    sent = sum(1 for moment, _ in meter.frames if FIRST - STEP <= moment < FIRST + 3 * LAST_HOUR)
    database = tmp_path / "state" / "history.sqlite"
    database.parent.mkdir()
    connection = open_database(database)
    LedgerStore(connection, OSLO).migrate()
    connection.close()
    capture = capture_factory(broker, (f"{BASE}/state", "han2mqtt/bridge/info"))
    subprocess.run(["chattr", "+i", str(database)], check=True)
    try:
        log = _replay(broker, tmp_path, recording, free_port())
    finally:
        subprocess.run(["chattr", "-i", str(database)], check=True)
    assert log.count("cannot be written") == 1, log
    assert "Traceback" not in log
    topic = f"{BASE}/state"
    capture.wait_for(lambda messages: sum(t == topic for t, _, _ in messages) >= sent, timeout=30)
    states = [json.loads(p) for t, p, _ in capture.messages if t == topic]
    assert len(states) == sent
    assert states[-1]["energy_import"] > 0
    infos = [json.loads(p) for t, p, _ in capture.messages if t == "han2mqtt/bridge/info"]
    history = infos[-1]["history"]
    assert set(history) == {"written", "queued", "dropped", "failing"}
    assert history["written"] == 0  # the outage itself is the log line above
