"""The history database's one writer: ledger intervals queued by the bridge, written in batches.

The bridge hands over the intervals a frame closed (:meth:`HistoryWriter.submit`, no I/O); the
writer task wakes, waits :data:`BATCH_DELAY` for the other meters' intervals of the same boundary,
and writes them in one transaction in a worker thread, so the event loop never waits for the disk.

Faults, and what the daemon does about them:

* another process holds the database (another han2mqtt on the same ``state.dir``): a
  :class:`~han2mqtt.errors.StateError` at start, which stops the daemon with a clear message;
* a corrupt file: moved aside (``history.sqlite.bad-<time>``) with a warning, a new one begun;
* a full or read-only disk (at start or later): the daemon keeps publishing live values; the
  outage is logged once, the intervals wait in memory (up to :data:`MAX_QUEUED`) and are written
  when the database can be written again.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Final, TypeVar

from han2mqtt.energy.ledger import LedgerInterval
from han2mqtt.errors import StateError
from han2mqtt.history.db import (
    DatabaseLock,
    check_database,
    is_corrupt,
    lock_database,
    move_aside_database,
    open_database,
)
from han2mqtt.history.ledger import LedgerStore, Retention

__all__ = ["BATCH_DELAY", "MAX_QUEUED", "HistoryWriter", "open_reader"]

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

BATCH_DELAY: Final = 1.0
"""Seconds the writer waits after the first closed interval for the rest of the batch."""
MAX_QUEUED: Final = 200_000
"""Intervals kept in memory while the database cannot be written (a day of 1,000 meters);
beyond, the oldest are dropped and counted."""
PURGE_EVERY: Final = timedelta(days=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class HistoryWriter:
    """The writer of the ledger's intervals.

    Args:
        path: the database (``<state.dir>/history.sqlite``).
        zone: the local time zone (days and months).
        retention: ``history.retention``.
        now: the wall clock, for retention (injectable for tests).
    """

    def __init__(
        self,
        path: Path,
        zone: tzinfo,
        retention: Retention,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = path
        self.zone = zone
        self.retention = retention
        self._now = now
        self.store: LedgerStore | None = None
        self._lock: DatabaseLock | None = None
        self._queue: list[LedgerInterval] = []
        self._wake: asyncio.Event | None = None
        self._next_purge: datetime | None = None
        self._writing = threading.Lock()
        """One write at a time: the task's worker thread, or the last flush at stop."""
        self.failing = False
        self.written = 0
        self.dropped = 0

    # -- start and stop -------------------------------------------------------------------------

    def open(self) -> None:
        """Take the lock and open the database.

        Raises:
            StateError: another process holds the database, or a newer han2mqtt wrote it.
        """
        self._connect()

    def _connect(self) -> bool:
        if self._lock is None:
            try:
                self._lock = lock_database(self.path)
            except OSError as exc:
                self._outage(exc)
                return False
        try:
            self.store = self._store()
        except (StateError, sqlite3.Error) as exc:
            if isinstance(exc, StateError) and exc.__cause__ is None:
                raise  # a newer schema: not ours to touch
            if not is_corrupt(exc):
                self._outage(exc)
                return False
            moved = move_aside_database(self.path)
            _LOGGER.warning(
                "history database %s is damaged (%s): %s; starting a new one",
                self.path,
                exc,
                f"moved to {moved}" if moved else "could not move it",
            )
            try:
                self.store = self._store()
            except (StateError, sqlite3.Error) as again:
                self._outage(again)
                return False
        return True

    def _store(self) -> LedgerStore:
        connection = open_database(self.path)
        try:
            check_database(connection)
            store = LedgerStore(connection, self.zone)
            store.migrate()
        except BaseException:
            connection.close()
            raise
        return store

    def close(self) -> None:
        """Write what is queued, close the database and let the lock go (at stop)."""
        self.flush()
        if self.store is not None:
            self.store.connection.close()
            self.store = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- writing --------------------------------------------------------------------------------

    def submit(self, intervals: Iterable[LedgerInterval]) -> None:
        """Queue closed intervals (from the bridge; no I/O)."""
        self._queue.extend(intervals)
        excess = len(self._queue) - MAX_QUEUED
        if excess > 0:
            del self._queue[:excess]
            self.dropped += excess
        if self._wake is not None:
            self._wake.set()

    async def call(self, job: Callable[[sqlite3.Connection], T]) -> T | None:
        """Run ``job`` on the writer's connection in its worker thread, one write at a time.

        For the other parts of the history database (prices), so that one writer stays the
        only one.  None when the database cannot be opened now (an outage, logged once).

        Raises:
            sqlite3.Error: the job failed (its own transaction is the job's business).
        """
        return await asyncio.to_thread(self._call, job)

    def _call(self, job: Callable[[sqlite3.Connection], T]) -> T | None:
        with self._writing:
            if self.store is None and not self._connect():
                return None
            assert self.store is not None
            return job(self.store.connection)

    def stats(self) -> dict[str, int | bool]:
        """For ``bridge/info``: intervals written, waiting, dropped, and whether it fails now.

        Dropped: intervals beyond :data:`MAX_QUEUED` during a long outage.
        """
        return {
            "written": self.written,
            "queued": self.queued,
            "dropped": self.dropped,
            "failing": self.failing,
        }

    @property
    def queued(self) -> int:
        """Intervals not written yet."""
        return len(self._queue)

    async def run(self) -> None:
        """The writer task: a batch after each wake-up, until cancelled."""
        self._wake = asyncio.Event()
        if self._queue:
            self._wake.set()
        while True:
            await self._wake.wait()
            await asyncio.sleep(BATCH_DELAY)
            self._wake.clear()
            batch, self._queue = self._queue, []
            left = await asyncio.to_thread(self._write, batch)
            self._queue[:0] = left

    def flush(self) -> None:
        """Write the queue now, in this thread."""
        batch, self._queue = self._queue, []
        self._queue[:0] = self._write(batch)

    def _write(self, batch: list[LedgerInterval]) -> list[LedgerInterval]:
        """Write a batch; returns what could not be written (kept for the next try)."""
        if not batch:
            return []
        with self._writing:
            return self._write_locked(batch)

    def _write_locked(self, batch: list[LedgerInterval]) -> list[LedgerInterval]:
        if self.store is None and not self._connect():
            return batch
        assert self.store is not None
        try:
            self.written += self.store.write(batch)
            self._purge_when_due()
        except sqlite3.Error as exc:
            self._outage(exc)
            return batch
        if self.failing:
            self.failing = False
            _LOGGER.info("history database %s written again", self.path)
        return []

    def _purge_when_due(self) -> None:
        assert self.store is not None
        now = self._now()
        if self._next_purge is not None and now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY
        deleted = self.store.purge(now, self.retention)
        if deleted:
            _LOGGER.info("history: %d intervals past their retention deleted", deleted)

    def _outage(self, exc: BaseException) -> None:
        if not self.failing:
            _LOGGER.warning(
                "history database %s cannot be written (%s): live values go on; intervals wait "
                "in memory (up to %d) until it can",
                self.path,
                exc,
                MAX_QUEUED,
            )
        self.failing = True


def open_reader(path: Path, zone: tzinfo) -> LedgerStore | None:
    """A read-only view of the ledger (the status page, ``han2mqtt export``); None: no database.

    Raises:
        StateError: the file cannot be read (damaged, or not a database).
    """
    if not path.exists():
        return None
    try:
        connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        connection.execute("PRAGMA busy_timeout = 5000")
        found = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'ledger_intervals'"
        ).fetchone()
    except sqlite3.Error as exc:
        raise StateError(f"cannot read the history database {path}: {exc}") from exc
    if found is None:
        connection.close()
        return None
    return LedgerStore(connection, zone)
