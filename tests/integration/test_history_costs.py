"""Cost and revenue in the history: a replayed day priced by a local ENTSO-E-like server.

A day and three hours of Kamstrup frames (1 October 2025, Europe/Oslo) go through ``han2mqtt
run`` with prices from a local HTTP server (ENTSO-E's A44 in EUR/MWh, converted at the ECB's
rate it also serves) and a real mosquitto.  Then, with no daemon running, ``han2mqtt export``
must give every hour of 1 October its exact energy (the registers) × its import price, computed
here from the fixture and the grid rules; 2 October (no prices on the server) must be null,
never 0.  A daemon started afterwards on the same database answers ``/api/history`` the same.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.conftest import Broker, Capture, free_port
from tests.energy.kamstrup import day_of_frames
from tests.integration.helpers import han2mqtt, run_until_done, start_daemon, stop_daemon
from tests.integration.test_prices_day import (
    DAY,
    OSLO,
    _config,
    _hourly_spot_nok,
    _import_price,
    _recording,
)
from tests.prices.server import PriceServer, PriceServerThread

pytestmark = [pytest.mark.integration, pytest.mark.broker]

NEXT_HOURS = 3
"""Hours of 2 October replayed (no prices for that day)."""


def _frames() -> tuple[list[bytes], dict[datetime, int]]:
    frames, registers = day_of_frames(DAY)
    following, more = day_of_frames(DAY + timedelta(days=1), registers[DAY + timedelta(days=1)])
    # Each hour is 360 lists 2 and one list 3; the day's first two frames are the last day's.
    frames += following[2 : NEXT_HOURS * 361 + 2]
    registers.update({k: v for k, v in more.items() if k <= DAY + timedelta(days=1, hours=3)})
    return frames, registers


def _export(config: Path, resolution: str, fmt: str = "json") -> Any:
    done = han2mqtt(
        "export", "--config", str(config), "--resolution", resolution,
        "--from", "2025-10-01", "--to", "2025-10-03", "--format", fmt,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return (
        json.loads(done.stdout) if fmt == "json" else list(csv.DictReader(io.StringIO(done.stdout)))
    )


@pytest.mark.timeout(300)
def test_history_costs_equal_energy_times_price_and_null_without_prices(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    recording = tmp_path / "day.rec"
    frames, registers = _frames()
    _recording(recording, frames)
    spots = _hourly_spot_nok(primary_works=True)
    with PriceServerThread(PriceServer()) as prices:
        config = _config(tmp_path, broker, recording, prices.base)
        run_until_done(config)
        hourly = _export(config, "hour")
        assert hourly["currency"] == "NOK"
        assert hourly["unit"] == "kWh"
        intervals = hourly["intervals"]
        assert len(intervals) == 24 + NEXT_HOURS
        for hour, interval in enumerate(intervals[:24]):
            start = DAY + timedelta(hours=hour)
            assert interval["start"] == start.replace(tzinfo=OSLO).isoformat()
            energy = (registers[start + timedelta(hours=1)] - registers[start]) / 100
            assert not interval["estimated"], hour
            assert interval["import"] == pytest.approx(energy, abs=1e-9)
            price = _import_price(hour, spots[hour])
            assert interval["cost"] == pytest.approx(interval["import"] * price, rel=1e-12), hour
            assert interval["cost"] == pytest.approx(energy * price, rel=1e-9)
            assert interval["revenue"] == 0  # the export register stays at 0: known, and 0
        for interval in intervals[24:]:
            assert interval["import"] > 0
            assert (interval["cost"], interval["revenue"]) == (None, None)
        daily = _export(config, "day")["intervals"]
        assert daily[0]["cost"] == pytest.approx(sum(i["cost"] for i in intervals[:24]), rel=1e-12)
        assert daily[1]["cost"] is None
        (month,) = _export(config, "month")["intervals"]
        assert month["cost"] is None  # 2 October is in it, unpriced
        rows = _export(config, "hour", "csv")
        assert [float(r["cost"]) for r in rows[:24]] == [i["cost"] for i in intervals[:24]]
        assert {r["cost"] for r in rows[24:]} == {""}
        api = asyncio.run(_api(config))
    assert api == hourly


async def _api(config: Path) -> dict[str, Any]:
    """``/api/history`` of a daemon started on the same state (a silent TCP meter)."""
    idle = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    settings = yaml.safe_load(config.read_text())
    port = free_port()
    settings["source"] = {
        "type": "tcp",
        "host": "127.0.0.1",
        "port": idle.sockets[0].getsockname()[1],
        "watchdog": None,
    }
    settings["web"] = {"port": port}
    settings["mqtt"]["client_id"] = "history-costs-api"
    config.write_text(yaml.safe_dump(settings))
    daemon = start_daemon(config)
    url = f"http://127.0.0.1:{port}/api/history"
    query = {"resolution": "hour", "from": "2025-10-01", "to": "2025-10-03"}
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(150):
                try:
                    async with session.get(url, params=query) as response:
                        if response.status == 200:
                            answer: dict[str, Any] = await response.json()
                            return answer
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("the status page did not answer")
    finally:
        stop_daemon(daemon)
        idle.close()


@pytest.mark.timeout(300)
def test_quarter_prices_cost_the_ledgers_quarters_live_and_in_the_history(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    """``prices.resolution: 15``: each closed hour's ``cost_last_hour`` is the sum of the
    ledger's quarters × their own prices, and the history's hour costs say the same."""
    from han2mqtt.prices.entsoe import parse_entsoe  # noqa: PLC0415
    from tests.energy.kamstrup import LIST3_DELAY, METER_ID  # noqa: PLC0415
    from tests.integration.test_prices_day import ECB_NOK  # noqa: PLC0415
    from tests.prices.server import FIXTURES  # noqa: PLC0415

    recording = tmp_path / "day.rec"
    _recording(recording)
    document = (FIXTURES / "entsoe_NO1_2025-10-01_PT15M_A03.xml").read_bytes()
    spots = [point.price * ECB_NOK for point in parse_entsoe(document)]
    capture = capture_factory(broker, (f"han2mqtt/{METER_ID}/state",))
    with PriceServerThread(PriceServer()) as prices:
        config = _config(tmp_path, broker, recording, prices.base)
        settings = yaml.safe_load(config.read_text())
        settings["prices"]["resolution"] = 15
        settings["history"] = {"retention": {"quarter": None}}  # 1 October 2025 is old
        config.write_text(yaml.safe_dump(settings))
        run_until_done(config)
        quarters = _export(config, "quarter")["intervals"]
        hours = _export(config, "hour")["intervals"]
    with capture.lock:
        states = [json.loads(p) for _, p, _ in capture.messages]
    closing = {str(s["meter_time"]): s for s in states if "cost_last_hour" in s}
    by_start = {datetime.fromisoformat(q["start"]).replace(tzinfo=None): q for q in quarters}
    hourly = {datetime.fromisoformat(h["start"]).replace(tzinfo=None): h for h in hours}
    for hour in range(1, 24):
        start = DAY + timedelta(hours=hour)
        expected = sum(
            by_start[start + timedelta(minutes=15 * index)]["import"]
            * _import_price(hour, spots[hour * 4 + index])
            for index in range(4)
        )
        state = closing[(start + timedelta(hours=1) + LIST3_DELAY).replace(tzinfo=OSLO).isoformat()]
        assert state["cost_last_hour"] == pytest.approx(expected, rel=1e-9), hour
        assert hourly[start]["cost"] == pytest.approx(expected, rel=1e-9), hour
    five = DAY + timedelta(hours=5)
    shares = [by_start[five + timedelta(minutes=15 * i)]["import"] for i in range(4)]
    assert max(shares) - min(shares) > 0.01  # uneven quarters: their own prices mattered
