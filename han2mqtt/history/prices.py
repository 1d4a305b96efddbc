"""The price cache in the history database (component ``"prices"``).

Whole delivery days as the source gave them (its currency, before any exchange), the ECB's
rates, and the cost accumulators' energy per interval, so that a restart or an outage of the
source costs nothing: a day once fetched is never fetched again, and a restarted daemon still
knows what today and this month cost.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

from han2mqtt.errors import StateError
from han2mqtt.history.db import Migration, migrate
from han2mqtt.prices.model import DayPrices, PricePoint

__all__ = ["COMPONENT", "MIGRATIONS", "PriceCache"]

COMPONENT: Final = "prices"
MIGRATIONS: Final[tuple[Migration, ...]] = (
    """
    CREATE TABLE price_days (
        area TEXT NOT NULL,
        day TEXT NOT NULL,
        currency TEXT NOT NULL,
        source TEXT NOT NULL,
        points TEXT NOT NULL,
        PRIMARY KEY (area, day)
    );
    CREATE TABLE exchange_rates (
        day TEXT NOT NULL,
        currency TEXT NOT NULL,
        rate REAL NOT NULL,
        PRIMARY KEY (day, currency)
    );
    CREATE TABLE cost_energy (
        meter TEXT NOT NULL,
        start TEXT NOT NULL,
        import_kwh REAL NOT NULL,
        export_kwh REAL NOT NULL,
        PRIMARY KEY (meter, start)
    );
    CREATE TABLE cost_meters (
        meter TEXT PRIMARY KEY NOT NULL,
        complete_since TEXT NOT NULL
    );
    """,
)


class PriceCache:
    """Days of prices, exchange rates and cost energy in one SQLite connection.

    Raises (every method):
        StateError: the database cannot be read or written.
    """

    def __init__(self, connection: sqlite3.Connection, *, writable: bool = True) -> None:
        self.connection = connection
        if writable:
            migrate(connection, COMPONENT, MIGRATIONS)

    @classmethod
    def reader(cls, connection: sqlite3.Connection) -> PriceCache | None:
        """The cache on a read-only connection (the status page, ``export``).

        ``None``: no prices were ever kept in this database.
        """
        try:
            found = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'price_days'"
            ).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the history database: {exc}") from exc
        return None if found is None else cls(connection, writable=False)

    def store_day(self, prices: DayPrices, source: str) -> None:
        """Keep (or replace) a whole day."""
        points = [[p.start.isoformat(), p.minutes, p.price] for p in prices.points]
        self._run(
            "INSERT OR REPLACE INTO price_days (area, day, currency, source, points) "
            "VALUES (?, ?, ?, ?, ?)",
            (prices.area, prices.day.isoformat(), prices.currency, source, json.dumps(points)),
        )

    def load_day(self, area: str, day: date) -> tuple[DayPrices, str] | None:
        """``(prices, source)`` of a day kept, or ``None``."""
        row = self._one(
            "SELECT currency, source, points FROM price_days WHERE area = ? AND day = ?",
            (area, day.isoformat()),
        )
        if row is None:
            return None
        try:
            points = tuple(
                PricePoint(datetime.fromisoformat(s), int(m), float(p))
                for s, m, p in json.loads(row[2])
            )
        except (ValueError, TypeError) as exc:
            raise StateError(f"the cached prices of {area} {day} are damaged: {exc}") from exc
        return DayPrices(area, day, str(row[0]), points), str(row[1])

    def store_rates(self, days: dict[date, dict[str, float]]) -> None:
        """Keep the ECB's rates (currency per EUR) of the days given."""
        rows = [(d.isoformat(), c, r) for d, rates in days.items() for c, r in rates.items()]
        self._many(
            "INSERT OR REPLACE INTO exchange_rates (day, currency, rate) VALUES (?, ?, ?)", rows
        )

    def rates(self, currency: str) -> dict[date, dict[str, float]]:
        """Every rate kept for ``currency``, by day."""
        found: dict[date, dict[str, float]] = {}
        for day, rate in self._all(
            "SELECT day, rate FROM exchange_rates WHERE currency = ?", (currency,)
        ):
            found[date.fromisoformat(day)] = {currency: float(rate)}
        return found

    def store_energy(
        self, meter: str, complete_since: datetime, energy: dict[datetime, tuple[float, float]]
    ) -> None:
        """Replace a meter's cost energy (its current month) and where it is complete from."""
        rows = [(meter, s.astimezone(UTC).isoformat(), i, e) for s, (i, e) in energy.items()]
        try:
            with self.connection:
                self.connection.execute("BEGIN")
                self.connection.execute("DELETE FROM cost_energy WHERE meter = ?", (meter,))
                self.connection.executemany(
                    "INSERT INTO cost_energy (meter, start, import_kwh, export_kwh) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
                self.connection.execute(
                    "INSERT OR REPLACE INTO cost_meters (meter, complete_since) VALUES (?, ?)",
                    (meter, complete_since.astimezone(UTC).isoformat()),
                )
        except sqlite3.Error as exc:
            raise StateError(f"cannot write the history database: {exc}") from exc

    def load_energy(
        self, meter: str
    ) -> tuple[datetime, dict[datetime, tuple[float, float]]] | None:
        """``(complete_since, energy per interval)`` kept for ``meter``, or ``None``."""
        row = self._one("SELECT complete_since FROM cost_meters WHERE meter = ?", (meter,))
        if row is None:
            return None
        energy = {
            datetime.fromisoformat(s): (float(i), float(e))
            for s, i, e in self._all(
                "SELECT start, import_kwh, export_kwh FROM cost_energy WHERE meter = ?", (meter,)
            )
        }
        return datetime.fromisoformat(row[0]), energy

    def _run(self, sql: str, parameters: tuple[object, ...]) -> None:
        try:
            self.connection.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise StateError(f"cannot write the history database: {exc}") from exc

    def _many(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        try:
            with self.connection:
                self.connection.execute("BEGIN")
                self.connection.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StateError(f"cannot write the history database: {exc}") from exc

    def _one(self, sql: str, parameters: tuple[object, ...]) -> tuple[Any, ...] | None:
        try:
            row: tuple[Any, ...] | None = self.connection.execute(sql, parameters).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the history database: {exc}") from exc
        return row

    def _all(self, sql: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return list(self.connection.execute(sql, parameters).fetchall())
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the history database: {exc}") from exc
