"""The ports ``han2mqtt probe`` reads: a serial device it can set, a TCP serial server it cannot.

Blocking and short-lived (a one-shot command, not the daemon): read for a few seconds, set the
next line setting, read again.  Foreign errors become :class:`~han2mqtt.errors.TransportError`.
"""

from __future__ import annotations

import socket
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import serial

from han2mqtt.errors import TransportError
from han2mqtt.io.connections import serial_open_error

__all__ = ["AS_SET", "LineSetting", "SerialLinePort", "TcpLinePort"]

_POLL: Final = 0.1
"""Seconds one read waits at most: the deadline is checked this often."""
_PARITY: Final = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


def _drain(read: Callable[[], bytes], seconds: float) -> bytes:
    chunks = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        chunks.append(read())
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class LineSetting:
    """Baud rate, parity and data bits (one stop bit)."""

    baudrate: int
    parity: str
    bytesize: int

    def __str__(self) -> str:
        if self.baudrate == 0:
            return f"the serial server's setting ({self.bytesize}{self.parity}1 as read)"
        return f"{self.baudrate} {self.bytesize}{self.parity}1"


AS_SET: Final = LineSetting(0, "N", 8)
"""A TCP serial server's line, which the probe cannot change: read as it is."""


class _ClosingPort:
    """A port that is closed when its ``with`` block ends; subclasses say how to close it."""

    def close(self) -> None:
        """Release the port."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SerialLinePort(_ClosingPort):
    """A serial device; each setting is applied to the open port, its input buffer emptied."""

    def __init__(self, device: str) -> None:
        try:
            self._serial = serial.Serial(device, timeout=_POLL)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise serial_open_error(device, exc) from exc

    def configure(self, setting: LineSetting) -> bool:
        """Apply ``setting``; False when the device refuses it (a pty refuses parity)."""
        try:
            self._serial.baudrate = setting.baudrate
            self._serial.parity = _PARITY[setting.parity]
            self._serial.bytesize = setting.bytesize
            self._serial.reset_input_buffer()
        except (serial.SerialException, ValueError, termios.error):
            return False
        return True

    def read(self, seconds: float) -> bytes:
        """What arrives within ``seconds``."""
        try:
            return _drain(lambda: self._serial.read(4096), seconds)
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"serial port lost while probing: {exc}") from exc

    def close(self) -> None:
        """Close the device."""
        self._serial.close()


class TcpLinePort(_ClosingPort):
    """A TCP serial server: its line is set on the server, so only :data:`AS_SET` is read."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        try:
            self._socket = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise TransportError(f"cannot connect to {host}:{port}: {exc}") from exc
        self._socket.settimeout(_POLL)

    def configure(self, setting: LineSetting) -> bool:
        """True only for :data:`AS_SET`: the server's setting is not ours to change."""
        return setting == AS_SET

    def read(self, seconds: float) -> bytes:
        """What arrives within ``seconds``."""
        return _drain(self._recv, seconds)

    def _recv(self) -> bytes:
        try:
            data = self._socket.recv(4096)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise TransportError(f"connection lost while probing: {exc}") from exc
        if not data:
            raise TransportError("the serial server closed the connection while probing")
        return data

    def close(self) -> None:
        """Close the connection."""
        self._socket.close()
