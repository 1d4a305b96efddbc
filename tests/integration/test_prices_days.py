"""Two days replayed: ENTSO-E serves the first and answers 503 for the second (Christmas Day), which
hvakosterstrommen serves; the holiday is billed at the night rate all day.

Each of the 48 closed hours must cost its register energy × its import price, computed here from
the fixtures, the ECB rate of the day and the grid rules, independently of the daemon.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from statistics import fmean

import pytest

from han2mqtt.prices.entsoe import parse_entsoe
from tests.conftest import Broker, Capture
from tests.energy.kamstrup import LIST3_DELAY, day_of_frames
from tests.integration.helpers import start_daemon, stop_daemon
from tests.integration.test_prices_day import (
    BASE,
    DAY_RATE,
    MARKUP,
    NIGHT_RATE,
    OSLO,
    TAXES,
    VAT,
    _config,
    _recording,
    _states,
)
from tests.prices.server import FIXTURES, PriceServer, PriceServerThread

pytestmark = [pytest.mark.integration, pytest.mark.broker]

EVE = datetime(2025, 12, 24)  # noqa: DTZ001 - the meter's naive local clock; a Wednesday
CHRISTMAS = EVE + timedelta(days=1)  # a public holiday in Norway: the night rate all day
ECB_NOK_EVE = 11.8140


def _two_days() -> tuple[list[bytes], dict[datetime, int]]:
    first, registers = day_of_frames(EVE)
    second, more = day_of_frames(CHRISTMAS, start_register=registers[CHRISTMAS])
    registers.update(more)
    return first[:-2] + second, registers  # the first day's last two frames open the second


def _spots() -> list[float]:
    points = parse_entsoe((FIXTURES / "entsoe_NO1_2025-12-24_PT15M_A03.xml").read_bytes())
    quarters = [p.price * ECB_NOK_EVE for p in points]
    listed = json.loads((FIXTURES / "hvakosterstrommen_2025-12-25_NO1.json").read_text())
    quarters += [entry["NOK_per_kWh"] for entry in listed]
    return [fmean(quarters[h * 4 : h * 4 + 4]) for h in range(48)]


def _import_price(hour: int, spot: float) -> float:
    working = hour < 24 and 6 <= hour < 22  # 24 December is a working day, 25 December is not
    return (spot + MARKUP + (DAY_RATE if working else NIGHT_RATE) + TAXES) * (1 + VAT)


@pytest.mark.timeout(300)
def test_the_fallback_serves_the_day_the_primary_fails_and_holidays_get_the_night_rate(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path
):
    frames, registers = _two_days()
    recording = tmp_path / "days.rec"
    count = _recording(recording, frames, EVE)
    capture = capture_factory(
        broker, (f"{BASE}/state", "han2mqtt/prices/NO1", "han2mqtt/bridge/info")
    )
    server = PriceServer(entsoe_status={"2025-12-25": 503})
    with PriceServerThread(server) as prices:
        process = start_daemon(_config(tmp_path, broker, recording, prices.base))
        try:
            _, err = process.communicate(timeout=250)
        except subprocess.TimeoutExpired:
            _, err = stop_daemon(process)
            raise AssertionError(f"the replay did not end by itself:\n{err}") from None
    assert process.returncode == 0, err
    capture.wait_for(lambda _m: len(_states(capture)) >= count, timeout=30)
    states = {str(s["meter_time"]): s for s in _states(capture)}
    spots = _spots()
    costs = []
    for hour in range(48):
        boundary = EVE + timedelta(hours=hour + 1)
        state = states[(boundary + LIST3_DELAY).replace(tzinfo=OSLO).isoformat()]
        energy = (registers[boundary] - registers[boundary - timedelta(hours=1)]) / 100
        assert state["energy_import_last_hour"] == round(energy, 2), hour
        expected = energy * _import_price(hour, spots[hour])
        assert state["cost_last_hour"] == pytest.approx(expected, rel=1e-12), hour
        costs.append(expected)
    late = states[(CHRISTMAS + timedelta(hours=23) + LIST3_DELAY).replace(tzinfo=OSLO).isoformat()]
    closed_today = float(str(late["cost_today"])) - float(str(late["cost_hour"]))
    assert closed_today == pytest.approx(sum(costs[24:47]), rel=1e-9)
    assert "cost_month" not in late  # the replay began on the 24th: December was not seen whole
    for hour in (12, 36):  # noon on each day
        noon = states[(EVE + timedelta(hours=hour, minutes=30)).replace(tzinfo=OSLO).isoformat()]
        assert noon["price_spot"] == pytest.approx(spots[hour], rel=1e-12)
        assert noon["price_import"] == pytest.approx(_import_price(hour, spots[hour]), rel=1e-12)
    info = json.loads(capture.last("han2mqtt/bridge/info") or "{}")
    assert info["prices"]["faults"] == {"http_5xx": 1}
    assert info["prices"]["days_fetched"] >= 2
    assert err.count("entsoe failed: HTTP 503") == 1
    area = json.loads(capture.last("han2mqtt/prices/NO1") or "{}")
    christmas = [i for i in area["intervals"] if i["start"].startswith("2025-12-25")]
    assert [i["spot"] for i in christmas] == pytest.approx(spots[24:], rel=1e-12)
