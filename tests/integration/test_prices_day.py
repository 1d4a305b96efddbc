"""A day of Kamstrup frames replayed into ``han2mqtt run`` with prices from a local HTTP server.

The server answers in ENTSO-E's and hvakosterstrommen's formats (the fixtures of
``tests/prices``); the replay is a recording at full speed, a real mosquitto carries the state.
Each closed hour's cost must be its exact energy (the hour's registers) × its import price,
computed here from the fixtures and the grid rules independently of the daemon.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from statistics import fmean
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Broker, Capture
from tests.energy.kamstrup import LIST3_DELAY, METER_ID, day_of_frames
from tests.integration.helpers import start_daemon, stop_daemon, write_config
from tests.prices.server import FIXTURES, PriceServer, PriceServerThread

pytestmark = [pytest.mark.integration, pytest.mark.broker]

OSLO = ZoneInfo("Europe/Oslo")
DAY = datetime(2025, 10, 1)  # noqa: DTZ001 - the meter's naive local clock
BASE = f"han2mqtt/{METER_ID}"
ECB_NOK = 11.7045
MARKUP, DAY_RATE, NIGHT_RATE, TAXES, VAT = 0.049, 0.3604, 0.2804, 0.0713, 0.25


def _recording(path: Path, frames: list[bytes] | None = None, start: datetime = DAY) -> int:
    """The frames as a recording, each received at its meter time (Europe/Oslo)."""
    frames = frames if frames is not None else day_of_frames(DAY)[0]
    lines = ["# han2mqtt recording 1"]
    moment = start
    step = timedelta(seconds=10)
    for index, frame in enumerate(frames):
        # day_of_frames: list 2 every 10 s, and list 3 LIST3_DELAY after each hour
        if index and frame_is_list3(frames, index):
            stamp = moment - step + LIST3_DELAY
        else:
            stamp, moment = moment, moment + step
        lines.append(f"{stamp.replace(tzinfo=OSLO).isoformat()} {frame.hex()}")
    path.write_text("\n".join(lines) + "\n")
    return len(frames)


def frame_is_list3(frames: list[bytes], index: int) -> bool:
    return len(frames[index]) > len(frames[0])


def _hourly_spot_nok(primary_works: bool) -> list[float]:
    if primary_works:
        from han2mqtt.prices.entsoe import parse_entsoe  # noqa: PLC0415

        points = parse_entsoe((FIXTURES / "entsoe_NO1_2025-10-01_PT15M_A03.xml").read_bytes())
        quarters = [p.price * ECB_NOK for p in points]
    else:
        listed = json.loads((FIXTURES / "hvakosterstrommen_2025-10-01_NO1.json").read_text())
        quarters = [entry["NOK_per_kWh"] for entry in listed]
    return [fmean(quarters[h * 4 : h * 4 + 4]) for h in range(24)]


def _import_price(hour: int, spot: float) -> float:
    grid = DAY_RATE if 6 <= hour < 22 else NIGHT_RATE  # 1 October 2025 is a Wednesday
    return (spot + MARKUP + grid + TAXES) * (1 + VAT)


def _config(tmp_path: Path, broker: Broker, recording: Path, base: str) -> Path:
    return write_config(
        tmp_path,
        broker,
        {"type": "file", "path": str(recording), "speed": "max"},
        meter={"timezone": "Europe/Oslo", "offline_after": 60},
        mqtt={"queue_size": 100_000, "client_id": "prices-replay"},
        homeassistant={"discovery": False},
        publish={"obis": False, "fields": False},
        prices={
            "source": "entsoe",
            "token": "test-token",
            "area": "NO1",
            "url": f"{base}/entsoe/api",
            "urls": {"hvakosterstrommen": f"{base}/hks", "ecb": f"{base}/ecb"},
            "fallback": ["hvakosterstrommen"],
            "markup": MARKUP,
            "vat": VAT,
        },
        grid={
            "holidays": "NO",
            "taxes": TAXES,
            "energy": [
                {
                    "price": DAY_RATE,
                    "hours": "06-22",
                    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                    "holidays": False,
                },
                {"price": NIGHT_RATE},
            ],
        },
    )


@pytest.mark.timeout(240)
@pytest.mark.parametrize("primary_works", [True, False], ids=["entsoe", "entsoe-503-fallback"])
def test_each_closed_hour_costs_its_exact_energy_times_its_price(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path, primary_works
):
    recording = tmp_path / "day.rec"
    count = _recording(recording)
    _, registers = day_of_frames(DAY)
    server = PriceServer() if primary_works else PriceServer(status={"/entsoe": 503})
    capture = capture_factory(
        broker, (f"{BASE}/state", "han2mqtt/prices/NO1", "han2mqtt/bridge/info")
    )
    with PriceServerThread(server) as prices:
        config = _config(tmp_path, broker, recording, prices.base)
        process = start_daemon(config)
        try:
            _, err = process.communicate(timeout=200)
        except subprocess.TimeoutExpired:
            _, err = stop_daemon(process)
            raise AssertionError(f"the replay did not end by itself:\n{err}") from None
    assert process.returncode == 0, err
    capture.wait_for(lambda _m: len(_states(capture)) >= count, timeout=30)
    states = _states(capture)
    spots = _hourly_spot_nok(primary_works)
    closing = {str(s["meter_time"]): s for s in states if "energy_import_last_hour" in s}
    hours = []
    for hour in range(24):
        boundary = DAY + timedelta(hours=hour + 1)
        state = closing[(boundary + LIST3_DELAY).replace(tzinfo=OSLO).isoformat()]
        energy = (registers[boundary] - registers[boundary - timedelta(hours=1)]) / 100
        assert state["energy_import_last_hour"] == round(energy, 2)
        expected = energy * _import_price(hour, spots[hour])
        assert state["cost_last_hour"] == pytest.approx(expected, rel=1e-12), hour
        start = (boundary - timedelta(hours=1)).replace(tzinfo=OSLO).isoformat()
        assert state["cost_last_hour_start"] == start
        hours.append(expected)
    middle = {str(s["meter_time"]): s for s in states}
    noon = middle[DAY.replace(hour=12, minute=30, tzinfo=OSLO).isoformat()]
    assert noon["price_spot"] == pytest.approx(spots[12], rel=1e-12)
    assert noon["price_import"] == pytest.approx(_import_price(12, spots[12]), rel=1e-12)
    assert noon["revenue_today"] == 0  # the meter's export register stays at 0
    last_hour = closing[(DAY + timedelta(hours=23) + LIST3_DELAY).replace(tzinfo=OSLO).isoformat()]
    live = float(str(last_hour["cost_hour"]))  # 23:00:00-23:00:05, not yet closed
    assert float(str(last_hour["cost_today"])) - live == pytest.approx(sum(hours[:23]), rel=1e-9)
    assert last_hour["cost_month"] == last_hour["cost_today"]
    # 2 October has no prices on the server: its first hour is not known, so neither is the month
    next_day = closing[(DAY + timedelta(days=1) + LIST3_DELAY).replace(tzinfo=OSLO).isoformat()]
    assert "cost_month" not in next_day
    assert next_day["cost_last_hour"] == pytest.approx(hours[23], rel=1e-12)
    _check_area_and_info(capture, spots, err, primary_works=primary_works)


def _check_area_and_info(
    capture: Capture, spots: list[float], err: str, *, primary_works: bool
) -> None:
    area = [json.loads(p) for t, p, _ in capture.messages if t == "han2mqtt/prices/NO1"]
    assert area
    assert area[-1]["currency"] == "NOK"
    assert area[-1]["resolution"] == 60
    today = [i for i in area[-1]["intervals"] if i["start"].startswith("2025-10-01")]
    assert [i["spot"] for i in today] == pytest.approx(spots, rel=1e-12)
    info = json.loads(capture.last("han2mqtt/bridge/info") or "{}")
    assert info["prices"]["source"] == "entsoe"
    assert info["prices"]["days_fetched"] >= 1
    if not primary_works:
        assert info["prices"]["faults"]["http_5xx"] >= 1
        assert "entsoe failed: HTTP 503" in err
        assert err.count("entsoe failed") == 1  # logged once per outage


def _states(capture: Capture) -> list[dict[str, object]]:
    with capture.lock:
        return [json.loads(p) for t, p, _ in capture.messages if t == f"{BASE}/state"]
