"""The energy state file on disk: read it back, write it atomically, move a bad one aside.

:func:`move_aside` also serves the history database (:mod:`han2mqtt.history.db`).

The format is :mod:`han2mqtt.energy.state`'s; this module only does the file I/O, for the
daemon.  A write goes to a temporary file in the same directory, is flushed to the disk
(``fsync``) and renamed over the old file, so a crash or power cut leaves either the old or the
new state, never half a file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

__all__ = [
    "STATE_FILE",
    "check_writable",
    "move_aside",
    "read_state",
    "state_directory",
    "write_state",
]

STATE_FILE: Final = "energy.json"


def state_directory(configured: Path | None, environ: dict[str, str] | None = None) -> Path:
    """``state.dir``, else systemd's ``$STATE_DIRECTORY`` (its first entry), else ``./state``."""
    if configured is not None:
        return configured
    environ = dict(os.environ) if environ is None else environ
    systemd = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(systemd) if systemd else Path("state")


def check_writable(directory: Path) -> None:
    """Create ``directory`` if needed and prove a file can be written in it (then removed).

    Raises:
        OSError: the directory cannot be created, or a file in it cannot be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f".han2mqtt-probe-{os.getpid()}"
    descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, b"ok")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
        probe.unlink(missing_ok=True)


def read_state(path: Path) -> bytes | None:
    """The file's content; None when there is none yet.

    Raises:
        OSError: the file exists but cannot be read.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def move_aside(path: Path, companions: Sequence[str] = ()) -> Path | None:
    """Rename a bad file to ``<name>.bad-<UTC time>``; return the new name (None: failed).

    Each ``<name><suffix>`` of ``companions`` that exists (a database's ``-wal`` and ``-shm``)
    follows it to ``<new name><suffix>``; one that cannot be moved stays where it is.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.bad-{stamp}")
    try:
        path.rename(target)
    except OSError:
        return None
    for suffix in companions:
        with contextlib.suppress(OSError):
            path.with_name(path.name + suffix).rename(target.with_name(target.name + suffix))
    return target


def write_state(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temporary file, fsync, rename, fsync directory).

    Raises:
        OSError: the directory cannot be created or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    with contextlib.suppress(OSError):  # not every file system lets a directory be opened
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
