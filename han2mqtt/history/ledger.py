"""The ledger's tables in the history database: quarters, hours, days and months per meter.

One table, ``ledger_intervals``, keyed by (meter, resolution, start): ``start`` is the interval's
start in Unix seconds (UTC), ``resolution`` one of :data:`RESOLUTIONS`, energies in kWh unrounded
(NULL where not known), ``estimated`` 0 or 1.  Quarters and hours are written as the ledger
closes them (:class:`~han2mqtt.energy.ledger.LedgerInterval`); each write recomputes the days
and months it touches from their hours, so a day is the sum of its hours by construction.  A day
or month is ``estimated`` while any hour in it is, or hours of it are missing (the current one
until it ends).  Component ``"ledger"`` in :func:`~han2mqtt.history.db.migrate`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final, NamedTuple

from han2mqtt.energy.clock import day_start, month_end, next_day_start
from han2mqtt.energy.ledger import LedgerInterval
from han2mqtt.history.db import Migration, migrate

__all__ = [
    "COMPONENT",
    "MIGRATIONS",
    "RESOLUTIONS",
    "UNITS",
    "LedgerRow",
    "LedgerStore",
    "Retention",
    "month_start",
]

COMPONENT: Final = "ledger"
RESOLUTIONS: Final = ("quarter", "hour", "day", "month")
_BY_MINUTES: Final = {15: "quarter", 60: "hour"}

MIGRATIONS: Final[Sequence[Migration]] = (
    """
    CREATE TABLE ledger_intervals (
        meter TEXT NOT NULL,
        resolution TEXT NOT NULL,
        start INTEGER NOT NULL,
        import_kwh REAL,
        export_kwh REAL,
        estimated INTEGER NOT NULL,
        PRIMARY KEY (meter, resolution, start)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE ledger_meters (
        meter TEXT PRIMARY KEY NOT NULL,
        kind TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
)
"""Version 1: the intervals table; 2: what each meter measures (gas and water in m³)."""
UNITS: Final = {"electricity": "kWh", "gas": "m³", "water": "m³"}
"""The unit of each kind of meter's intervals (``import_kwh`` holds a gas meter's m³)."""

_UPSERT: Final = (
    "INSERT INTO ledger_intervals (meter, resolution, start, import_kwh, export_kwh, estimated) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (meter, resolution, start) DO UPDATE SET "
    "import_kwh = excluded.import_kwh, export_kwh = excluded.export_kwh, "
    "estimated = excluded.estimated"
)
_ROLL_UP: Final = (
    "SELECT sum(import_kwh), sum(export_kwh), max(estimated), count(*), count(import_kwh) "
    "FROM ledger_intervals WHERE meter = ? AND resolution = ? AND start >= ? AND start < ?"
)


@dataclass(frozen=True, slots=True)
class Retention:
    """Days each resolution is kept (None: for ever); ``history.retention``."""

    quarter: int | None = 400
    hour: int | None = 5 * 365 + 1
    day: int | None = None
    month: int | None = None


class LedgerRow(NamedTuple):
    """One stored interval."""

    start: datetime
    import_kwh: float | None
    export_kwh: float | None
    estimated: bool


def month_start(moment: datetime, zone: tzinfo) -> datetime:
    """Local midnight on the first of ``moment``'s month, in UTC."""
    local = moment.astimezone(zone)
    first = datetime(local.year, local.month, 1, tzinfo=zone)
    return first.astimezone(UTC)


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class LedgerStore:
    """The ledger's reads and writes on one connection (:func:`open_database`'s).

    Args:
        connection: the history database, migrated by :meth:`migrate` first.
        zone: the local time zone (days and months are local).
    """

    def __init__(self, connection: sqlite3.Connection, zone: tzinfo) -> None:
        self.connection = connection
        self.zone = zone
        self._kinds: dict[str, str] = {}
        """Kinds written already (by this writer)."""

    def migrate(self) -> int:
        """Bring the ledger's tables to this version (raises StateError)."""
        return migrate(self.connection, COMPONENT, MIGRATIONS)

    def write(self, intervals: Iterable[LedgerInterval]) -> int:
        """Store closed intervals and re-roll the days and months they touch; one transaction.

        Returns the number of intervals written.

        Raises:
            sqlite3.Error: the write failed (nothing of it is kept).
        """
        intervals = list(intervals)
        rows = [
            (
                i.meter,
                _BY_MINUTES[i.minutes],
                _seconds(i.start),
                i.import_kwh,
                i.export_kwh,
                int(i.estimated),
            )
            for i in intervals
        ]
        if not rows:
            return 0
        days = {(i.meter, day_start(i.start, self.zone)) for i in intervals if i.minutes == 60}
        kinds = {i.meter: i.kind for i in intervals if self._kinds.get(i.meter) != i.kind}
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(_UPSERT, rows)
            connection.executemany(
                "INSERT OR REPLACE INTO ledger_meters (meter, kind) VALUES (?, ?)", kinds.items()
            )
            months = set()
            for meter, day in sorted(days):
                self._roll(meter, "day", "hour", day, next_day_start(day, self.zone))
                months.add((meter, month_start(day, self.zone)))
            for meter, month in sorted(months):
                self._roll(meter, "month", "day", month, month_end(month, self.zone))
            connection.execute("COMMIT")
            self._kinds.update(kinds)
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return len(rows)

    def _roll(
        self, meter: str, resolution: str, parts: str, start: datetime, end: datetime
    ) -> None:
        """Recompute one day (from its hours) or month (from its days)."""
        row = self.connection.execute(
            _ROLL_UP, (meter, parts, _seconds(start), _seconds(end))
        ).fetchone()
        imported, exported, estimated, count, known = row
        if not count:
            return
        expected = _count(parts, start, end, self.zone)
        incomplete = bool(estimated) or count < expected or known < count
        self.connection.execute(
            _UPSERT, (meter, resolution, _seconds(start), imported, exported, int(incomplete))
        )

    def read(self, meter: str, resolution: str, start: datetime, end: datetime) -> list[LedgerRow]:
        """The stored intervals of ``meter`` starting in [start, end), in order."""
        rows = self.connection.execute(
            "SELECT start, import_kwh, export_kwh, estimated FROM ledger_intervals "
            "WHERE meter = ? AND resolution = ? AND start >= ? AND start < ? ORDER BY start",
            (meter, resolution, _seconds(start), _seconds(end)),
        ).fetchall()
        return [LedgerRow(_moment(s), i, e, bool(x)) for s, i, e, x in rows]

    def meters(self) -> list[str]:
        """The meters with stored intervals."""
        rows = self.connection.execute(
            "SELECT DISTINCT meter FROM ledger_intervals ORDER BY meter"
        ).fetchall()
        return [str(row[0]) for row in rows]

    def kind(self, meter: str) -> str:
        """What ``meter`` measures: ``electricity``, ``gas`` or ``water``."""
        try:
            row = self.connection.execute(
                "SELECT kind FROM ledger_meters WHERE meter = ?", (meter,)
            ).fetchone()
        except sqlite3.OperationalError:  # a database of version 1, read without migrating
            return "electricity"
        return "electricity" if row is None else str(row[0])

    def kinds(self) -> dict[str, str]:
        """What each meter with stored intervals measures (``electricity`` unless told)."""
        try:
            known = dict(self.connection.execute("SELECT meter, kind FROM ledger_meters"))
        except sqlite3.OperationalError:  # a database of version 1, read without migrating
            known = {}
        return {meter: str(known.get(meter, "electricity")) for meter in self.meters()}

    def purge(self, now: datetime, retention: Retention) -> int:
        """Delete intervals older than their resolution's retention; returns how many."""
        deleted = 0
        for resolution in RESOLUTIONS:
            days = getattr(retention, resolution)
            if days is None:
                continue
            cutoff = _seconds(now - timedelta(days=days))
            cursor = self.connection.execute(
                "DELETE FROM ledger_intervals WHERE resolution = ? AND start < ?",
                (resolution, cutoff),
            )
            deleted += cursor.rowcount
        return deleted


def _count(parts: str, start: datetime, end: datetime, zone: tzinfo) -> int:
    """How many hours (or local days) lie in [start, end)."""
    if parts == "hour":
        return int((end - start) / timedelta(hours=1))
    days, moment = 0, start
    while moment < end:
        moment = next_day_start(moment, zone)
        days += 1
    return days
