"""The ledger's tables: roll-ups, retention, and the faults of a real file (lock, damage, disk)."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from han2mqtt.energy.clock import next_day_start
from han2mqtt.energy.ledger import LedgerInterval
from han2mqtt.errors import StateError
from han2mqtt.history import open_database
from han2mqtt.history.ledger import LedgerStore, Retention
from han2mqtt.history.writer import HistoryWriter, open_reader

OSLO = ZoneInfo("Europe/Oslo")


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=OSLO).astimezone(UTC)


def day_of_hours(
    day: datetime, kwh: float = 0.5, *, estimated: frozenset[int] = frozenset()
) -> Iterator[LedgerInterval]:
    """A local day's quarters and hours, ``kwh`` an hour (the estimated hours' numbers given)."""
    moment, index = day, 0
    while moment < next_day_start(day, OSLO):
        for quarter in range(4):
            start = moment + timedelta(minutes=15 * quarter)
            yield LedgerInterval("m", start, kwh / 4, 0.01, estimated=True)
        yield LedgerInterval("m", moment, kwh, 0.04, index in estimated, 60)
        moment += timedelta(hours=1)
        index += 1


@pytest.fixture
def store() -> LedgerStore:
    ledger = LedgerStore(open_database(":memory:"), OSLO)
    ledger.migrate()
    return ledger


def test_days_and_months_roll_up_from_hours_on_dst_days(store: LedgerStore):
    store.write(day_of_hours(utc(2026, 10, 25)))  # 25 hours
    store.write(day_of_hours(utc(2026, 10, 26), estimated=frozenset({3})))
    days = store.read("m", "day", utc(2026, 10, 1), utc(2026, 11, 1))
    assert [(d.start, d.estimated) for d in days] == [
        (utc(2026, 10, 25), False),
        (utc(2026, 10, 26), True),
    ]
    assert [d.import_kwh for d in days] == pytest.approx([12.5, 12.0])
    assert len(store.read("m", "quarter", utc(2026, 10, 25), utc(2026, 10, 26))) == 100
    (month,) = store.read("m", "month", utc(2026, 10, 1), utc(2026, 11, 1))
    assert month.start == utc(2026, 10, 1)
    assert month.import_kwh == pytest.approx(24.5)
    assert month.export_kwh == pytest.approx(0.04 * 49)
    assert month.estimated  # 2 of October's 31 days
    assert store.meters() == ["m"]


def test_a_day_with_hours_missing_is_estimated(store: LedgerStore):
    hours = [i for i in day_of_hours(utc(2026, 3, 29)) if i.minutes == 60]
    assert len(hours) == 23
    store.write(hours[1:])
    (day,) = store.read("m", "day", utc(2026, 3, 29), utc(2026, 3, 30))
    assert day.estimated
    store.write(hours[:1])
    (day,) = store.read("m", "day", utc(2026, 3, 29), utc(2026, 3, 30))
    assert not day.estimated
    assert day.import_kwh == pytest.approx(11.5)


def test_rewriting_an_interval_replaces_it(store: LedgerStore):
    store.write([LedgerInterval("m", utc(2026, 5, 1, 10), 1.0, None, True, 60)])
    store.write([LedgerInterval("m", utc(2026, 5, 1, 10), 1.5, None, False, 60)])
    (hour,) = store.read("m", "hour", utc(2026, 5, 1), utc(2026, 5, 2))
    assert hour == (utc(2026, 5, 1, 10), 1.5, None, False)


def test_retention_per_resolution(store: LedgerStore):
    store.write(day_of_hours(utc(2025, 1, 1)))
    store.write(day_of_hours(utc(2026, 12, 1)))
    deleted = store.purge(utc(2026, 12, 6), Retention(quarter=400, hour=30))
    assert deleted == 96 + 24
    assert not store.read("m", "quarter", utc(2025, 1, 1), utc(2025, 1, 2))
    assert not store.read("m", "hour", utc(2025, 1, 1), utc(2025, 1, 2))
    assert store.read("m", "day", utc(2025, 1, 1), utc(2025, 1, 2))  # days: for ever
    assert len(store.read("m", "hour", utc(2026, 12, 1), utc(2026, 12, 2))) == 24


# -- the writer and its faults, on real files ------------------------------------------------


def _writer(path: Path) -> HistoryWriter:
    return HistoryWriter(path, OSLO, Retention())


def _stored_hours(path: Path) -> int:
    reader = open_reader(path, OSLO)
    assert reader is not None
    return len(reader.read("m", "hour", utc(2020, 1, 1), utc(2030, 1, 1)))


def test_the_writer_writes_batches_and_survives_a_restart(tmp_path: Path):
    path = tmp_path / "history.sqlite"
    writer = _writer(path)
    writer.open()
    writer.submit(day_of_hours(utc(2026, 11, 2)))
    writer.close()
    again = _writer(path)
    again.open()
    again.submit(day_of_hours(utc(2026, 11, 3)))
    again.close()
    assert _stored_hours(path) == 48


def test_another_process_holding_the_database_is_an_error_at_start(tmp_path: Path):
    path = tmp_path / "history.sqlite"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys, time
                from pathlib import Path
                from han2mqtt.history.db import lock_database
                lock = lock_database(Path({str(path)!r}))
                print("held", flush=True)
                sys.stdin.read()
            """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StateError, match="in use by another process"):
            _writer(path).open()
    finally:
        holder.communicate("")
    writer = _writer(path)
    writer.open()  # the other process is gone: free again
    writer.close()


def test_a_corrupt_file_is_moved_aside_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "history.sqlite"
    path.write_bytes(b"\x00garbage, not SQLite\xff" * 400)
    caplog.set_level(logging.WARNING)
    writer = _writer(path)
    writer.open()
    writer.submit(day_of_hours(utc(2026, 11, 2)))
    writer.close()
    assert _stored_hours(path) == 24
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("history.sqlite.bad-")]
    assert len(moved) == 1
    assert moved[0].read_bytes().startswith(b"\x00garbage")
    assert any("is damaged" in r.getMessage() for r in caplog.records)


def test_a_damaged_page_inside_a_valid_file_is_found_at_start(tmp_path: Path):
    path = tmp_path / "history.sqlite"
    writer = _writer(path)
    writer.open()
    writer.submit(day_of_hours(utc(2026, 11, 2)))
    writer.close()
    data = bytearray(path.read_bytes())
    data[4096 : 4096 + 600] = b"\xa5" * 600  # the second page's header and first cells
    path.write_bytes(bytes(data))
    writer = _writer(path)
    writer.open()
    writer.close()
    assert [p for p in tmp_path.iterdir() if p.name.startswith("history.sqlite.bad-")]


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody can write, not even root (``chattr +i``)."""
    directory = tmp_path / "state"
    directory.mkdir()
    subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_a_read_only_directory_is_an_outage_logged_once_then_written(
    immutable: Path, caplog: pytest.LogCaptureFixture
):
    path = immutable / "history.sqlite"
    caplog.set_level(logging.INFO)
    writer = _writer(path)
    writer.open()  # not fatal
    writer.submit(day_of_hours(utc(2026, 11, 2)))
    writer.flush()
    writer.submit(day_of_hours(utc(2026, 11, 3)))
    writer.flush()
    assert writer.failing
    assert writer.queued == 2 * (96 + 24)
    warnings = [r for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warnings) == 1
    subprocess.run(["chattr", "-i", str(immutable)], check=True)
    writer.flush()
    assert (writer.failing, writer.queued) == (False, 0)
    writer.close()
    assert _stored_hours(path) == 48
    assert any("written again" in r.getMessage() for r in caplog.records)


def test_a_full_disk_keeps_the_intervals_until_there_is_room(tmp_path: Path):
    path = tmp_path / "history.sqlite"
    writer = _writer(path)
    writer.open()
    assert writer.store is not None
    connection = writer.store.connection
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages + 1}")  # SQLite's own "disk full"
    writer.submit([i for d in range(1, 20) for i in day_of_hours(utc(2026, 11, d))])
    writer.flush()
    assert writer.failing
    connection.execute("PRAGMA max_page_count = 1073741823")
    writer.flush()
    assert (writer.failing, writer.queued) == (False, 0)
    writer.close()
    assert _stored_hours(path) == 19 * 24


async def test_another_part_writes_through_the_one_writer(tmp_path: Path):
    """Prices (another component) migrate and write on the writer's connection, in turn."""
    from han2mqtt.history import migrate  # noqa: PLC0415

    writer = _writer(tmp_path / "history.sqlite")
    writer.open()

    def prices(connection: sqlite3.Connection) -> int:
        migrate(connection, "prices", ["CREATE TABLE p (start INTEGER, spot REAL)"])
        connection.execute("INSERT INTO p VALUES (1, 0.5)")
        return int(connection.execute("SELECT count(*) FROM p").fetchone()[0])

    assert await writer.call(prices) == 1
    writer.submit(day_of_hours(utc(2026, 11, 2)))
    writer.close()
    assert _stored_hours(tmp_path / "history.sqlite") == 24
