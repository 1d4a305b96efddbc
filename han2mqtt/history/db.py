"""Opening the history database and migrating its parts' schemas.

A part of the store registers its migrations as an ordered list of SQL scripts under a
component name (``"ledger"``, ``"prices"``); :func:`migrate` runs the ones a file has not seen,
each in one transaction together with the new version number, so a crash mid-migration leaves the
previous version intact.  Versions live in the table ``schema_versions`` (component, version).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from han2mqtt.errors import StateError

__all__ = ["HISTORY_FILE", "Migration", "migrate", "open_database", "schema_version"]

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
