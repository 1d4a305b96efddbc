"""The energy stage's cost per reading with each capacity-tariff rule on (sans-IO, one core).

A week of readings, one every 10 s with power and register (as a P1 port or list 2/3 send them),
fed to :class:`EnergyEngine` under: no tariff, preset ``no``, ``no`` with tier prices, an
Ellevio-like rule (night weight 0.5, winter months, holidays out, price per kW), and preset
``be`` with a price per kW and past months (15-minute windows, floor, rolling-12).  Prints
readings/s and µs per reading for each (process CPU time, not wall time: the machine may be
shared), best of ``--repeat`` runs.

Usage: python benchmarks/tariff.py [--days N] [--repeat N] [--rules off,no,...]
(``--rules off,no`` also runs against a han2mqtt without the rule keys, for a comparison.)
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from han2mqtt.bridge import energy_parameters
from han2mqtt.config import Settings
from han2mqtt.energy import EnergyEngine
from han2mqtt.model import MeterReading

RULES: dict[str, dict[str, Any]] = {
    "off": {},
    "no": {"tariff": {"preset": "no"}},
    "no + prices": {
        "tariff": {"preset": "no", "prices": list(range(100, 1100, 100)), "currency": "NOK"}
    },
    "ellevio-like": {
        "grid": {"holidays": "SE"},
        "tariff": {
            "preset": "custom",
            "peaks": 3,
            "distinct_days": True,
            "months": [11, 12, 1, 2, 3],
            "holidays": False,
            "weights": [{"hours": ["22-24", "00-06"], "factor": 0.5}],
            "price_per_kw": 81.25,
            "currency": "SEK",
        },
    },
    "be + rolling": {
        "tariff": {
            "preset": "be",
            "price_per_kw": 3.37,
            "currency": "EUR",
            "past": {"2026-10": 3.0},
        }
    },
}


def _readings(days: int) -> list[tuple[MeterReading, datetime]]:
    moment, energy, found = datetime(2026, 12, 1), 12_000.0, []  # noqa: DTZ001 - meter clock
    for index in range(days * 8640):
        power = 300 + (index * 7919) % 3700
        fields: dict[str, int | float | str] = {
            "meter_datetime": moment.isoformat(),
            "active_power_import": power,
            "active_power_import_total": round(energy, 3),
        }
        codes = {
            "active_power_import": "1-0:1.7.0.255",
            "active_power_import_total": "1-0:1.8.0.255",
        }
        reading = MeterReading(fields, {}, {}, codes, "bench")
        found.append((reading, moment.replace(tzinfo=UTC) + timedelta(seconds=1)))
        energy += power * 10 / 3.6e6
        moment += timedelta(seconds=10)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rules", default=",".join(RULES), help="comma-separated names")
    options = parser.parse_args()
    readings = _readings(options.days)
    print(f"{len(readings)} readings, best of {options.repeat}")
    for name in options.rules.split(","):
        sections = RULES[name]
        settings = Settings.model_validate({"meter": {"timezone": "Europe/Stockholm"}, **sections})
        best = float("inf")
        for _ in range(options.repeat):
            engine = EnergyEngine(energy_parameters(settings))
            started = time.process_time()
            for reading, received in readings:
                engine.feed(reading, received)
            best = min(best, time.process_time() - started)
        rate = len(readings) / best
        print(f"{name:>14}: {rate:9,.0f} readings/s  {1e6 / rate:6.1f} µs/reading")


if __name__ == "__main__":
    main()
