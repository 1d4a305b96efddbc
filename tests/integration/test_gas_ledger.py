"""Gas and water behind a P1 port in the ledger: a Fluvius telegram replayed over five hours.

The telegram is the corpus's ``be-fluvius-v171`` (gas on channel 1 as ``24.2.3``, water on
channel 2 as ``24.2.1``), sent every 30 s from 23:00 on 31 May 2026 to 04:00 on 1 June, with
the gas reading captured every five minutes (DSMR 5, stamped a second late) or once an hour
(DSMR 4, stamped with the hour it was taken), water hourly.  ``han2mqtt run`` replays it into a
real mosquitto; ``han2mqtt export`` must give each of the gas meter's hours the register
difference across it (in m³, costed at ``prices.gas``), the electricity meter stays the default,
and the gas meter publishes ``cost_gas_today`` and ``cost_gas_month``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.protocol.crc import crc16_arc
from han2mqtt.protocol.recording import Chunk, format_line, header_lines
from tests import corpus
from tests.conftest import Broker, Capture
from tests.integration.helpers import (
    han2mqtt,
    run_until_done,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.broker]

BRUSSELS = ZoneInfo("Europe/Brussels")
ELECTRICITY, GAS, WATER = "1SAG3101021605", "7FLO2119033733", "8SAG1234567890"
START = datetime(2026, 5, 31, 23, tzinfo=BRUSSELS)
"""Within the quarters' retention (400 days): older intervals are purged as they are written."""
HOURS = 5
GAS_PRICE = 1.35
RATES = (0.4, 0.1, 0.0, 0.25, 0.6)
"""m³ per hour of gas used in each hour from 23:00."""


def gas_at(moment: datetime) -> float:
    """The gas register (m³) at ``moment``: the integral of the hourly rates from 112.384."""
    elapsed = (moment - START).total_seconds() / 3600
    whole = int(elapsed)
    used = sum(RATES[:whole]) + (elapsed - whole) * RATES[min(whole, HOURS - 1)]
    return round(112.384 + used, 3)


def water_at(hour: datetime) -> float:
    return round(872.234 + 0.05 * (hour - START).total_seconds() / 3600, 3)


def stamp(moment: datetime) -> str:
    return moment.astimezone(BRUSSELS).strftime("%y%m%d%H%M%S") + "S"


def telegram(moment: datetime, gas_every: int) -> bytes:
    text = corpus.raw(corpus.by_id("be-fluvius-v171")).decode()
    body = text[: text.index("!") + 1]
    floor = moment - timedelta(minutes=moment.minute % gas_every, seconds=moment.second)
    captured = floor + timedelta(seconds=1) if gas_every == 5 else floor
    hour = moment.replace(minute=0, second=0)
    replaced = {
        "0-0:1.0.0(200512135409S)": f"0-0:1.0.0({stamp(moment)})",
        "0-1:24.2.3(200512134558S)(00112.384*m3)": (
            f"0-1:24.2.3({stamp(captured)})({gas_at(floor):09.3f}*m3)"
        ),
        "0-2:24.2.1(200512134558S)(00872.234*m3)": (
            f"0-2:24.2.1({stamp(hour)})({water_at(hour):09.3f}*m3)"
        ),
    }
    for old, new in replaced.items():
        assert old in body
        body = body.replace(old, new)
    return body.encode() + f"{crc16_arc(body.encode()):04X}\r\n".encode()


def recording(path: Path, gas_every: int) -> int:
    lines = header_lines("a Fluvius meter with gas and water, five hours")
    moment, count = START, 0
    while moment <= START + timedelta(hours=HOURS, minutes=1):
        when = moment + timedelta(seconds=2)
        lines.append(format_line(Chunk(when, telegram(moment, gas_every))))
        moment += timedelta(seconds=30)
        count += 1
    path.write_text("\n".join(lines) + "\n")
    return count


def export(config: Path, *args: str) -> dict[str, Any]:
    done = han2mqtt(
        "export", "--config", str(config), "--resolution", "hour",
        "--from", "2026-05-31", "--to", "2026-06-02", "--format", "json", *args,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@pytest.mark.timeout(300)
@pytest.mark.parametrize("gas_every", [5, 60], ids=["dsmr5-five-minutes", "dsmr4-hourly"])
def test_gas_and_water_hours_in_the_ledger_and_gas_costs(
    broker: Broker, capture_factory: Callable[..., Capture], tmp_path: Path, gas_every: int
):
    path = tmp_path / "fluvius.rec"
    count = recording(path, gas_every)
    capture = capture_factory(broker, (f"han2mqtt/{GAS}/state",))
    config = write_config(
        tmp_path,
        broker,
        {"type": "file", "path": str(path), "speed": "max"},
        meter={"timezone": "Europe/Brussels", "offline_after": 600},
        mqtt={"client_id": f"gas-ledger-{gas_every}", "queue_size": 100_000},
        homeassistant={"discovery": False},
        publish={"obis": False, "fields": False},
        prices={"gas": GAS_PRICE},
    )
    run_until_done(config)
    gas = export(config, "--meter", GAS)
    assert (gas["unit"], gas["currency"]) == ("m³", "EUR")
    hours = {datetime.fromisoformat(i["start"]): i for i in gas["intervals"]}
    assert list(hours) == [START + timedelta(hours=h) for h in range(HOURS)]
    for start, interval in hours.items():
        used = gas_at(start + timedelta(hours=1)) - gas_at(start)
        assert interval["import"] == pytest.approx(used, abs=1e-9), start
        assert interval["export"] is None
        assert not interval["estimated"]
        assert interval["cost"] == pytest.approx(interval["import"] * GAS_PRICE, rel=1e-12)
        assert interval["revenue"] is None
    water = export(config, "--meter", WATER)
    assert water["unit"] == "m³"
    assert [i["import"] for i in water["intervals"]] == pytest.approx([0.05] * HOURS, abs=1e-9)
    assert {i["cost"] for i in water["intervals"]} == {None}
    electricity = export(config)  # no --meter: the electricity meter, not its sub-meters
    assert (electricity["meter"], electricity["unit"]) == (ELECTRICITY, "kWh")
    capture.wait_for(lambda _m: len(capture.messages) >= 1, timeout=30)
    with capture.lock:
        last = json.loads(capture.messages[-1][1])
    today = gas_at(START + timedelta(hours=HOURS)) - gas_at(START + timedelta(hours=1))
    assert last["cost_gas_today"] == pytest.approx(today * GAS_PRICE, rel=1e-9)
    assert last["cost_gas_month"] == last["cost_gas_today"]  # 1 June: the month is the day
    assert "price_spot" not in last
    assert count > 0
