import sqlite3
from pathlib import Path

import pytest

from han2mqtt.errors import StateError
from han2mqtt.history import migrate, open_database, schema_version

STEPS = [
    "CREATE TABLE a (x INTEGER);\nCREATE TABLE b (y TEXT);",
    "ALTER TABLE a ADD COLUMN z REAL;",
]


def test_migrate_runs_each_step_once(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "h.sqlite")
    assert schema_version(connection, "ledger") == 0
    assert migrate(connection, "ledger", STEPS[:1]) == 1
    assert migrate(connection, "ledger", STEPS) == 2
    assert migrate(connection, "ledger", STEPS) == 2
    connection.execute("INSERT INTO a (x, z) VALUES (1, 2.5)")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_components_are_versioned_apart(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "h.sqlite")
    migrate(connection, "ledger", STEPS)
    assert schema_version(connection, "prices") == 0
    migrate(connection, "prices", ["CREATE TABLE p (start INTEGER)"])
    assert schema_version(connection, "prices") == 1
    assert schema_version(connection, "ledger") == 2


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "h.sqlite")
    migrate(connection, "ledger", STEPS)
    with pytest.raises(StateError, match="newer than this han2mqtt knows"):
        migrate(connection, "ledger", STEPS[:1])


def test_a_failed_step_keeps_the_last_good_version(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "h.sqlite")
    with pytest.raises(StateError, match="version 2 failed"):
        migrate(connection, "ledger", [STEPS[0], "CREATE TABLE a (x INTEGER); CREATE TABLE c (q)"])
    assert schema_version(connection, "ledger") == 1
    assert connection.execute("SELECT name FROM sqlite_master WHERE name = 'c'").fetchone() is None


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"this is no sqlite file at all" * 100)
    with pytest.raises(StateError, match="cannot open the history database"):
        open_database(path)
    assert isinstance(sqlite3.sqlite_version, str)
