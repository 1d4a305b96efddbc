"""docs/tariffs.md is true: its worked examples, and a replayed week per grid against an oracle.

Every YAML block of the page is loaded as the daemon loads it; each grid's block then gets a week
of meter readings (one a minute, with the register, as a P1 port or a list 3 gives them) through
the energy engine, and the published ``tariff_peaks``, ``tariff_average``,
``tariff_capacity_cost`` and ``tariff_headroom`` are compared with an oracle written here from
the rule's words alone: brute force over the closed windows, and the headroom found by bisection
on the bill rather than solved.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml

from han2mqtt.bridge import energy_parameters
from han2mqtt.config import Settings
from han2mqtt.energy import PRESETS, CapacityTariff, EnergyEngine, TariffModel, Weight
from han2mqtt.energy.calendar import PublicHolidays
from han2mqtt.model import FieldValue
from tests.energy.helpers import reading

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tariffs.md"
GRIDS = (
    "Ellevio",
    "Vattenfall",
    "E.ON",
    "Falkenberg",
    "SEOM",
    "Mälarenergi",
    "Fjellnett",
    "HSEV",
    "Fluvius",
)


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HAN2MQTT_"):
            monkeypatch.delenv(name)


def _blocks() -> dict[str, dict[str, Any]]:
    """The page's YAML blocks under each ``###`` heading (the grid's), evcc's under its own."""
    found: dict[str, dict[str, Any]] = {}
    heading = ""
    for part in re.split(r"^(### .*|## .*)$", PAGE.read_text(), flags=re.MULTILINE):
        if part.startswith("#"):
            heading = part
            continue
        for block in re.findall(r"```yaml\n(.*?)```", part, flags=re.DOTALL):
            found[heading] = yaml.safe_load(block)
    return found


def _grid_blocks() -> dict[str, dict[str, Any]]:
    blocks = _blocks()
    return {grid: next(b for h, b in blocks.items() if grid in h) for grid in GRIDS}


def test_every_grid_has_a_block_and_every_block_loads():
    blocks = _blocks()
    grids = _grid_blocks()
    assert len(grids) == len(GRIDS)
    for block in grids.values():
        settings = Settings.model_validate(block)
        assert energy_parameters(settings).tariff is not None
    evcc = next(b for h, b in blocks.items() if "evcc" in h)
    assert evcc["circuits"][0]["GetMaxPower"]["topic"].endswith("/tariff_headroom_power")


# -- the worked examples ---------------------------------------------------------------------

OSLO = ZoneInfo("Europe/Oslo")
STOCKHOLM = ZoneInfo("Europe/Stockholm")
BRUSSELS = ZoneInfo("Europe/Brussels")


def _march(model: TariffModel) -> CapacityTariff:
    tariff = CapacityTariff(model, OSLO)
    for day, energy in ((1, 6.0), (2, 5.0), (3, 3.0), (4, 5.0)):
        tariff.close(datetime(2024, 3, day, 18, tzinfo=OSLO), energy)
    return tariff


def _power(room: float, minutes: float) -> int:
    return round(room * 60 / minutes * 1000)


def test_example_tiers_on_distinct_days():
    tariff = _march(PRESETS["no"])
    assert tariff.average() == pytest.approx(16 / 3)
    room = tariff.headroom(datetime(2024, 3, 5, 9, tzinfo=OSLO), 1.0)
    assert room == pytest.approx(18.0)
    assert _power(18.0, 30) == 36_000


def test_example_night_weight():
    weighted = TariffModel(60, 3, True, PRESETS["no"].tiers, weights=(Weight(0.5, ((22, 24),)),))
    room = _march(weighted).headroom(datetime(2024, 3, 5, 23, tzinfo=OSLO), 1.0)
    assert room == pytest.approx(37.0)
    assert _power(37.0, 30) == 74_000


def test_example_a_window_that_cannot_count():
    model = TariffModel(
        60,
        3,
        True,
        (5,),
        months=frozenset({11, 12, 1, 2, 3}),
        holidays=PublicHolidays("SE", de_facto=True),
    )
    tariff = CapacityTariff(model, STOCKHOLM)
    tariff.close(datetime(2026, 12, 23, 12, tzinfo=STOCKHOLM), 2.0)
    assert tariff.headroom(datetime(2026, 12, 25, 12, tzinfo=STOCKHOLM), 0.0) is None
    assert tariff.headroom(datetime(2027, 4, 1, 12, tzinfo=STOCKHOLM), 0.0) is None


def test_example_the_floor():
    tariff = CapacityTariff(PRESETS["be"], BRUSSELS)
    tariff.roll(datetime(2026, 12, 1, tzinfo=BRUSSELS))
    assert tariff.average() == 2.5
    room = tariff.headroom(datetime(2026, 12, 1, tzinfo=BRUSSELS), 0.1)
    assert room == pytest.approx(0.525)
    assert _power(0.525, 10) == 3_150


def test_example_the_rolling_mean_with_tiers():
    past = (("2026-10", 6.0), ("2026-11", 4.0))
    model = TariffModel(60, 1, tiers=(2, 5, 10), period="rolling-12", past=past)
    tariff = CapacityTariff(model, OSLO)
    tariff.close(datetime(2026, 12, 2, 18, tzinfo=OSLO), 3.0)
    assert tariff.average() == pytest.approx(13 / 3)
    assert model.tier(13 / 3) == ("2-5", 5)
    room = tariff.headroom(datetime(2026, 12, 3, 10, tzinfo=OSLO), 1.0)
    assert room == pytest.approx(4.0)
    assert _power(4.0, 30) == 8_000


def test_example_per_kw_without_tiers_the_first_window():
    tariff = CapacityTariff(TariffModel(60, 3), STOCKHOLM)
    tariff.roll(datetime(2026, 12, 1, tzinfo=STOCKHOLM))
    assert tariff.headroom(datetime(2026, 12, 1, tzinfo=STOCKHOLM), 0.2) == 0.0
    tariff.close(datetime(2026, 12, 1, tzinfo=STOCKHOLM), 1.5)
    assert tariff.headroom(datetime(2026, 12, 1, 1, tzinfo=STOCKHOLM), 0.2) == pytest.approx(1.3)


def test_example_per_kw_without_tiers():
    tariff = CapacityTariff(TariffModel(60, 3), STOCKHOLM)
    for day, energy in ((1, 6.0), (2, 5.7), (3, 5.4)):
        tariff.close(datetime(2026, 12, day, 12, tzinfo=STOCKHOLM), energy)
    assert tariff.average() == pytest.approx(5.7)
    room = tariff.headroom(datetime(2026, 12, 4, 10, tzinfo=STOCKHOLM), 2.0)
    assert room == pytest.approx(3.4)
    assert _power(3.4, 30) == 6_800


# -- a replayed week per grid, against the oracle ---------------------------------------------

_PRESETS: dict[str, dict[str, Any]] = {
    "custom": {},
    "no": {"peaks": 3, "distinct_days": True, "tiers": [2, 5, 10, 15, 20, 25, 50, 75, 100]},
    "be": {"window": 15, "floor": 2.5, "period": "rolling-12"},
}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class Rule:
    """The rule as the block words it, with the preset's words filled in."""

    tariff: dict[str, Any]
    zone: ZoneInfo
    country: str | None

    @classmethod
    def of(cls, block: dict[str, Any]) -> Rule:
        given = block["tariff"]
        words = {"window": 60, "peaks": 1, "floor": 0.0, "period": "month"}
        words |= _PRESETS[given["preset"]] | given
        zone = ZoneInfo(block["meter"]["timezone"])
        return cls(words, zone, block.get("grid", {}).get("holidays"))

    def get(self, key: str, default: Any = None) -> Any:
        return self.tariff.get(key, default)

    def counts(self, local: datetime) -> bool:
        if self.get("months") and local.month not in self.get("months"):
            return False
        if self.get("weekdays") and _DAYS[local.weekday()] not in self.get("weekdays"):
            return False
        if self.get("hours") and not _in(self.get("hours"), local.hour):
            return False
        return not (self.get("holidays") is False and self._holiday(local))

    def _holiday(self, local: datetime) -> bool:
        assert self.country is not None
        calendar = holidays.country_holidays(self.country, years=local.year)
        eves = holidays.country_holidays(self.country, years=local.year, categories=("de_facto",))
        return local.date() in calendar or local.date() in eves

    def factor(self, local: datetime) -> float:
        for weight in self.get("weights") or ():
            hours = weight.get("hours")
            hours = [hours] if isinstance(hours, str) else hours
            if hours and not _in(hours, local.hour):
                continue
            return float(weight["factor"])
        return 1.0


def _in(ranges: list[str], hour: int) -> bool:
    return any(int(r[:2]) <= hour < int(r[3:]) for r in ranges)


def _month_value(rule: Rule, windows: dict[datetime, float], month: str) -> float | None:
    counted: list[tuple[float, str]] = []
    for start, energy in windows.items():
        local = start.astimezone(rule.zone)
        if local.strftime("%Y-%m") == month and rule.counts(local):
            counted.append((energy * rule.factor(local), local.date().isoformat()))
    if rule.get("distinct_days"):
        best: dict[str, float] = {}
        for energy, day in counted:
            best[day] = max(best.get(day, energy), energy)
        values = sorted(best.values(), reverse=True)
    else:
        values = sorted((energy for energy, _ in counted), reverse=True)
    top = values[: rule.get("peaks")]
    return sum(top) / len(top) * 60 / rule.get("window") if top else None


def _months_back(month: str, count: int) -> list[str]:
    year, number = int(month[:4]), int(month[5:])
    found = []
    for _ in range(count):
        year, number = (year - 1, 12) if number == 1 else (year, number - 1)
        found.append(f"{year}-{number:02d}")
    return found


def _billed(rule: Rule, windows: dict[datetime, float], month: str) -> float | None:
    floor = float(rule.get("floor"))
    current = _month_value(rule, windows, month)
    months: list[float] = []
    if rule.get("period") == "rolling-12":
        past: dict[str, float] = rule.get("past") or {}
        for earlier in _months_back(month, 11):
            value = past.get(earlier, _month_value(rule, windows, earlier))
            if value is not None:
                months.append(max(floor, value))
    if current is None and not floor and not months:
        return None
    months.append(max(floor, current or 0.0))
    return sum(months) / len(months)


def _tier_upper(rule: Rule, billed: float) -> float | None:
    uppers = [t for t in rule.get("tiers") or () if billed < t]
    return float(uppers[0]) if uppers else None


def _cost(rule: Rule, billed: float, month: int) -> float | None:
    given = rule.get("prices") if rule.get("prices") is not None else rule.get("price_per_kw")
    if given is None:
        return None
    seasons = given if isinstance(given, list) and isinstance(given[0], dict) else [given]
    for season in seasons:
        price = season
        if isinstance(season, dict):
            if season.get("months") and month not in season["months"]:
                continue
            price = season.get("price", season.get("prices"))
        if isinstance(price, list):
            return float(price[sum(1 for t in rule.get("tiers") if billed >= t)])
        return billed * float(price)
    return None


def _headroom(
    rule: Rule, windows: dict[datetime, float], start: datetime, used: float
) -> float | None:
    """Bisection: the most energy the open window may reach with the bill on its boundary."""
    local = start.astimezone(rule.zone)
    month = local.strftime("%Y-%m")
    if not rule.counts(local):
        return None
    now = _billed(rule, windows, month) or 0.0
    boundary = _tier_upper(rule, now) if rule.get("tiers") else now

    def bill(energy: float) -> float:
        return _billed(rule, {**windows, start: energy}, month) or 0.0

    if boundary is None:
        return None
    if bill(used) > boundary + 1e-9:
        return 0.0
    low, high = used, used + 1000.0
    for _ in range(80):
        middle = (low + high) / 2
        low, high = (middle, high) if bill(middle) <= boundary + 1e-12 else (low, middle)
    return low - used


def _power_at(local: datetime) -> float:
    """A household in W: a base load, morning and evening peaks, night charging, and spikes."""
    index = int(local.timestamp() // 60)
    watts = 500.0 + (index * 7919) % 700
    day = local.day
    if local.hour == 7:
        watts += 2500
    if 17 <= local.hour < 19:
        watts += 3000 + 350 * (day % 5)
    if local.hour in (23, 0):
        watts += 6500  # night charging: weighted half where the grid says so
    if local.hour == 12 and (local.month, day) in ((12, 24), (12, 25)):
        watts += 9000  # Christmas Eve and Day: public or de-facto holidays in Sweden
    if local.hour == 10 and local.weekday() == 5:
        watts += 5000  # Saturday: weekday-only grids leave it out
    if local.hour == 20 and local.minute // 15 == 1 and day % 3 == 0:
        watts += 9000  # one hot quarter hour
    return watts


def _replay(
    block: dict[str, Any], first: datetime, last: datetime
) -> tuple[dict[str, FieldValue], dict[datetime, float], float]:
    """Feed a reading a minute from ``first`` to ``last`` (local); the last values, the closed
    windows' energy from the registers, and the open window's energy so far."""
    rule = Rule.of(block)
    engine = EnergyEngine(energy_parameters(Settings.model_validate(block)))
    registers: dict[datetime, float] = {}
    energy, moment, values = 12_345.0, first, {}
    while moment <= last:
        stamp = moment.astimezone(UTC)
        registers[stamp] = round(energy, 3)
        frame = reading(moment, power=round(_power_at(moment)), register=registers[stamp])
        values = engine.feed(frame, stamp + timedelta(seconds=1)).values
        energy += _power_at(moment) / 60_000
        moment = (stamp + timedelta(minutes=1)).astimezone(rule.zone)
    window = timedelta(minutes=rule.get("window"))
    closed = {}
    start = first.astimezone(UTC)
    while start + window <= last.astimezone(UTC):
        closed[start] = registers[start + window] - registers[start]
        start += window
    return values, closed, registers[last.astimezone(UTC)] - registers[start]


def _weeks() -> Iterator[tuple[str, datetime, datetime]]:
    for grid in GRIDS:
        zone = ZoneInfo(_grid_blocks()[grid]["meter"]["timezone"])
        if grid == "Fluvius":  # across the month change, for the rolling mean
            yield (
                grid,
                datetime(2026, 11, 27, tzinfo=zone),
                datetime(2026, 12, 4, 10, 5, tzinfo=zone),
            )
        else:
            yield (
                grid,
                datetime(2026, 12, 21, tzinfo=zone),
                datetime(2026, 12, 28, 10, 30, tzinfo=zone),
            )


@pytest.mark.parametrize(("grid", "first", "last"), list(_weeks()))
def test_a_replayed_week_gives_what_the_oracle_bills(grid, first, last):
    block = _grid_blocks()[grid]
    rule = Rule.of(block)
    values, closed, used = _replay(block, first, last)
    month = last.strftime("%Y-%m")
    start = last - timedelta(minutes=last.minute % rule.get("window"))
    start_utc = start.astimezone(UTC)
    # The peaks: the top counted windows of the month, highest first.
    in_month = {
        s: e for s, e in closed.items() if s.astimezone(rule.zone).strftime("%Y-%m") == month
    }
    peaks = [p["kwh"] for p in json.loads(str(values["tariff_peaks"]))]
    expected_value = _month_value(rule, in_month, month)
    assert (expected_value is None) == (not peaks)
    if expected_value is not None:
        assert sum(peaks) / len(peaks) * 60 / rule.get("window") == pytest.approx(
            expected_value, abs=0.002
        )
    billed = _billed(rule, closed, month)
    assert billed is not None
    assert values["tariff_average"] == pytest.approx(billed, abs=0.0006)
    cost = _cost(rule, billed, last.month)
    if cost is None:
        assert "tariff_capacity_cost" not in values
    else:
        assert values["tariff_capacity_cost"] == pytest.approx(cost, rel=1e-9)
    room = _headroom(rule, closed, start_utc, used)
    if room is None:
        assert "tariff_headroom" not in values
        assert "tariff_headroom_power" not in values
    else:
        assert values["tariff_headroom"] == pytest.approx(room, abs=0.002)
        remaining = (start + timedelta(minutes=rule.get("window")) - last).total_seconds()
        assert values["tariff_headroom_power"] == pytest.approx(room * 3.6e6 / remaining, abs=10)


ELLEVIO_LIKE = """
meter:
  timezone: Europe/Stockholm
grid:
  holidays: SE
tariff:
  preset: custom
  peaks: 3
  distinct_days: true
  months: [11, 12, 1, 2, 3]
  holidays: false
  weights:
    - {hours: ["22-24", "00-06"], factor: 0.5}
  price_per_kw: 81.25
  currency: SEK
"""


@pytest.mark.parametrize(
    ("last", "counts"),
    [
        (datetime(2026, 12, 28, 10, 30, tzinfo=STOCKHOLM), True),  # a Monday morning
        (datetime(2026, 12, 27, 23, 20, tzinfo=STOCKHOLM), True),  # a night hour: weight 0.5
        (datetime(2026, 12, 25, 12, 45, tzinfo=STOCKHOLM), False),  # Christmas Day
        (datetime(2026, 12, 24, 18, 10, tzinfo=STOCKHOLM), False),  # Christmas Eve (de facto)
    ],
)
def test_an_ellevio_like_december_week(last, counts):
    """The acceptance's rule (not a documented grid): night 0.5, winter, no holidays, per kW."""
    block = yaml.safe_load(ELLEVIO_LIKE)
    rule = Rule.of(block)
    first = datetime(2026, 12, 21, tzinfo=STOCKHOLM)
    values, closed, used = _replay(block, first, last)
    start = last - timedelta(minutes=last.minute)
    billed = _billed(rule, closed, "2026-12")
    assert billed is not None
    assert values["tariff_average"] == pytest.approx(billed, abs=0.0006)
    assert values["tariff_capacity_cost"] == pytest.approx(billed * 81.25, rel=1e-9)
    room = _headroom(rule, closed, start.astimezone(UTC), used)
    assert (room is not None) == counts
    if room is None:
        assert "tariff_headroom" not in values
        assert "tariff_headroom_power" not in values
    else:
        assert values["tariff_headroom"] == pytest.approx(room, abs=0.002)
