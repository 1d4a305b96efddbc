"""Opening the history database and migrating its parts' schemas.

A part of the store registers its migrations as an ordered list of SQL scripts under a
component name (``"ledger"``, ``"prices"``); :func:`migrate` runs the ones a file has not seen,
each in one transaction together with the new version number, so a crash mid-migration leaves the
previous version intact.  Versions live in the table ``schema_versions`` (component, version).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from han2mqtt.errors import StateError
from han2mqtt.statefile import move_aside

__all__ = [
    "HISTORY_FILE",
    "DatabaseLock",
    "Migration",
    "check_database",
    "is_corrupt",
    "lock_database",
    "migrate",
    "move_aside_database",
    "open_database",
    "schema_version",
]

HISTORY_FILE: Final = "history.sqlite"
"""The database's file name under ``state.dir``."""

BUSY_TIMEOUT_MS: Final = 5000
"""How long a statement waits for another connection's lock before it fails."""

Migration = str
"""One migration step: an SQL script (one or more statements)."""

_VERSIONS_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_versions ("
    " component TEXT PRIMARY KEY NOT NULL,"
    " version INTEGER NOT NULL)"
)


def open_database(path: Path | str) -> sqlite3.Connection:
    """A connection to the history database at ``path`` in WAL mode (``":memory:"`` for tests).

    The connection runs in autocommit mode: callers group writes with explicit transactions
    (``with connection:`` after ``BEGIN``), which :func:`migrate` does for its steps.

    Raises:
        StateError: the file cannot be opened or is not an SQLite database.
    """
    try:
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute(_VERSIONS_TABLE)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open the history database {path}: {exc}") from exc
    return connection


def schema_version(connection: sqlite3.Connection, component: str) -> int:
    """The schema version of ``component`` in this database (0: never migrated)."""
    row = connection.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def migrate(connection: sqlite3.Connection, component: str, steps: Sequence[Migration]) -> int:
    """Bring ``component``'s tables to version ``len(steps)``; returns that version.

    Step *i* (0-based) takes the schema from version *i* to *i* + 1.

    Raises:
        StateError: the file was written by a newer han2mqtt (a version above ``len(steps)``), or
            a step failed (the database then stays at the last version that completed).
    """
    current = schema_version(connection, component)
    if current > len(steps):
        raise StateError(
            f"the history database's {component} schema is version {current}, newer than this "
            f"han2mqtt knows ({len(steps)}): upgrade han2mqtt or move the file aside"
        )
    for version in range(current, len(steps)):
        try:
            connection.execute("BEGIN IMMEDIATE")
            for statement in _statements(steps[version]):
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, version + 1),
            )
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise StateError(
                f"migrating the history database's {component} schema to version {version + 1} "
                f"failed: {exc}"
            ) from exc
    return len(steps)


def _statements(script: str) -> list[str]:
    """The complete statements of an SQL script, in order."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


# -- faults: another process, a corrupt file -------------------------------------------------

_CORRUPT_WORDS: Final = ("not a database", "malformed", "corrupt")


class DatabaseLock:
    """An exclusive lock on ``<database>.lock``, held while this process writes the database.

    SQLite lets two processes write one file in turn; two daemons booking the same meter would
    interleave their intervals, so the second one is refused at start.
    """

    def __init__(self, descriptor: int, path: Path) -> None:
        self._descriptor: int | None = descriptor
        self.path = path

    def release(self) -> None:
        """Let the lock go (at stop)."""
        if self._descriptor is not None:
            with contextlib.suppress(OSError):
                os.close(self._descriptor)
            self._descriptor = None


def lock_database(path: Path) -> DatabaseLock:
    """Take the database's lock file (creating the directory as needed).

    Raises:
        StateError: another process holds it (another han2mqtt on the same ``state.dir``).
        OSError: the lock file cannot be created (a read-only directory: no history then).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f"{path.name}.lock")
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(descriptor)
        raise StateError(
            f"the history database {path} is in use by another process (another han2mqtt "
            "with the same state.dir?); stop it, or give this one its own state.dir"
        ) from exc
    return DatabaseLock(descriptor, lock_path)


def is_corrupt(error: BaseException) -> bool:
    """Whether an error (or its cause) says the file is damaged or not a database at all."""
    found: BaseException | None = error
    while found is not None:
        if isinstance(found, sqlite3.DatabaseError) and any(
            word in str(found).lower() for word in _CORRUPT_WORDS
        ):
            return True
        found = found.__cause__
    return False


def check_database(connection: sqlite3.Connection) -> None:
    """A quick structural check (``PRAGMA quick_check``).

    Raises:
        sqlite3.DatabaseError: the file is damaged.
    """
    row = connection.execute("PRAGMA quick_check(1)").fetchone()
    if row is None or row[0] != "ok":
        raise sqlite3.DatabaseError(f"database disk image is malformed: {row and row[0]}")


def move_aside_database(path: Path) -> Path | None:
    """Rename a damaged database (and its ``-wal``/``-shm``) to ``<name>.bad-<UTC time>``.

    Returns the new name, None when it could not be moved.
    """
    return move_aside(path, companions=("-wal", "-shm"))
