"""The quarter-hour ledger's cost: CPU per frame, and how the database grows per meter and year.

1. A day of frames of one meter (power every 10 s, registers at every hour) through
   :class:`~han2mqtt.energy.ledger.Ledger` alone: microseconds per frame.
2. A year of one meter's intervals (35,040 quarters, 8,760 hours, and the days and months they
   roll up to) written as the daemon writes them (one transaction per closed hour), then the
   database's size on disk (WAL checkpointed): bytes per meter and year, and with the default
   retention (quarters 400 days, hours 5 years, days and months for ever) what a meter's
   database settles at.

Usage: python benchmarks/history.py [--meters 1] [--days 365]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from han2mqtt.energy.ledger import Ledger, LedgerInterval
from han2mqtt.history.db import open_database
from han2mqtt.history.ledger import LedgerStore

OSLO = ZoneInfo("Europe/Oslo")
STEP = timedelta(seconds=10)


def ledger_per_frame() -> float:
    """Microseconds per frame for a day of one meter."""
    ledger = Ledger("m", OSLO)
    moment = datetime(2026, 11, 2, tzinfo=UTC)
    energy = 1000.0
    frames = 24 * 360
    started = time.perf_counter()
    for index in range(frames):
        power = 300.0 + (index * 7919) % 3700
        registers = {}
        if moment.minute == 0 and moment.second == 0:
            registers = {"import": round(energy, 3), "export": 0.0}
        ledger.feed(moment, {"import": power, "export": 0.0}, registers, moment)
        energy += power * 10 / 3_600_000
        moment += STEP
    return (time.perf_counter() - started) / frames * 1e6


def year_of_intervals(meter: str, start: datetime, days: int) -> list[list[LedgerInterval]]:
    """The intervals of ``days`` days, one batch per hour (as the daemon writes them)."""
    batches = []
    moment = start
    for _ in range(days * 24):
        batch = [
            LedgerInterval(
                meter, moment + timedelta(minutes=m), 0.1234567 + m, 0.0012345, estimated=True
            )
            for m in (0, 15, 30, 45)
        ]
        batch.append(
            LedgerInterval(meter, moment, 0.4938268, 0.004938, estimated=False, minutes=60)
        )
        batches.append(batch)
        moment += timedelta(hours=1)
    return batches


def database_growth(meters: int, days: int) -> tuple[int, float]:
    """Bytes on disk for ``meters`` meters over ``days`` days, and the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.sqlite"
        store = LedgerStore(open_database(path), OSLO)
        store.migrate()
        start = datetime(2026, 1, 1, tzinfo=OSLO).astimezone(UTC)
        batches = [
            year_of_intervals(f"{7359990000000000 + n:016d}", start, days) for n in range(meters)
        ]
        started = time.perf_counter()
        for hour in range(days * 24):
            store.write([i for meter in batches for i in meter[hour]])
        seconds = time.perf_counter() - started
        store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.connection.close()
        return path.stat().st_size, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=1)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    cost = ledger_per_frame()
    print(f"ledger           : {cost:.1f} µs per frame (one meter, a day of 10 s frames)")
    size, seconds = database_growth(args.meters, args.days)
    per_meter_year = size / args.meters * 365 / args.days
    hours = args.days * 24 * args.meters
    print(
        f"database         : {size / 1e6:.2f} MB for {args.meters} meter(s) x {args.days} days "
        f"({per_meter_year / 1e6:.2f} MB per meter and year)"
    )
    print(f"writes           : {seconds / hours * 1e3:.2f} ms per meter-hour batch")
    rows_year = 35_040 + 8_760 + 365 + 12
    per_row = size / (args.meters * args.days / 365 * rows_year)
    settled = per_row * (400 * 96 + 1826 * 24) + per_row * 377 * 4  # + 4 years of days/months
    print(
        f"default retention: ~{per_row:.0f} bytes per interval; a meter settles near "
        f"{settled / 1e6:.1f} MB after 5 years (then days and months add "
        f"{377 * per_row / 1e3:.0f} kB a year)"
    )


if __name__ == "__main__":
    main()
