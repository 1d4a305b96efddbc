"""Liveness for supervisors: systemd ``sd_notify`` and a heartbeat file for Docker's HEALTHCHECK.

``sd_notify`` is a datagram to ``$NOTIFY_SOCKET`` (sd_notify(3)); writing it directly avoids a
dependency on libsystemd.  ``WATCHDOG=1`` is sent only while the daemon is healthy (frames arrive),
so a wedged input makes systemd restart the service.  The heartbeat file holds the wall-clock time
of the last frame; ``han2mqtt healthcheck`` fails when it is missing or too old.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from collections.abc import Mapping
from pathlib import Path

from han2mqtt.errors import TransportError

__all__ = ["check_heartbeat", "notify", "watchdog_interval", "write_heartbeat"]


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. ``"READY=1"``) to systemd; False when not run by systemd."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        raise TransportError(f"sd_notify to {env['NOTIFY_SOCKET']} failed: {exc}") from exc
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WatchdogSec``), or None if not asked."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None


_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_heartbeat(path: Path, when: float | None = None) -> None:
    """Record the time of the last frame (atomically: a reader never sees a half-written file).

    The new content goes to a temporary file beside ``path`` with a random name, created
    exclusively (``O_EXCL``, ``O_NOFOLLOW``): whatever someone planted there (a symbolic link to
    another file, say) makes the write fail instead of being followed or truncated.  The rename
    then replaces ``path`` itself, never what a link at ``path`` points to.  (That ``path`` is
    missing or an earlier heartbeat is checked when the configuration is loaded.)

    Raises:
        OSError: the directory is not writable, or the temporary name is taken.
    """
    stamp = time.time() if when is None else when
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, _TEMPORARY_FLAGS, 0o644)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(f"{stamp:.3f}\n")
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def check_heartbeat(path: Path, max_age: float, now: float | None = None) -> str | None:
    """Return None when the heartbeat is fresh, else the reason it is not."""
    try:
        stamp = float(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        return f"no heartbeat file {path}: no frame received yet"
    except (OSError, ValueError) as exc:
        return f"unreadable heartbeat file {path}: {exc}"
    age = (time.time() if now is None else now) - stamp
    if age > max_age:
        return f"last frame {age:.0f} s ago (limit {max_age:.0f} s)"
    return None
