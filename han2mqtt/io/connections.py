"""Connection factories for the meter port: a serial device or a TCP serial server.

The names and argument order are those of the ``amshan`` library.  For compatibility with code
written for amshan 1.x, a ``None`` passed as the third positional argument (amshan's frame filter)
is accepted and ignored.  Foreign errors (``serial.SerialException``, ``OSError``) are translated
here, once, into :class:`~han2mqtt.errors.TransportError`.
"""

from __future__ import annotations

import asyncio
import errno
import grp
import socket
import termios
from pathlib import Path
from typing import Any, Final

import serial
import serial_asyncio_fast

from han2mqtt.errors import TransportError
from han2mqtt.io.stream import (
    FrameReader,
    SmartMeterFrameContentProtocol,
    SmartMeterFrameProtocol,
    StreamProtocol,
)

__all__ = [
    "create_serial_frame_connection",
    "create_serial_frame_content_connection",
    "create_tcp_frame_connection",
    "create_tcp_frame_content_connection",
    "serial_open_error",
]

KEEPALIVE_IDLE: Final = 30
"""Seconds of silence before the first keepalive probe: finds half-open TCP bridges quickly."""
KEEPALIVE_INTERVAL: Final = 10
KEEPALIVE_COUNT: Final = 3


def _loop(loop: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop:
    return loop if loop is not None else asyncio.get_running_loop()


def _strip_legacy_filter(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop amshan 1.x's third positional argument (a frame filter, always None in practice)."""
    return args[1:] if args and args[0] is None else args


def _enable_keepalive(sock: socket.socket | None) -> None:
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


async def _tcp(
    protocol_type: type[StreamProtocol],
    queue: asyncio.Queue[Any],
    loop: asyncio.AbstractEventLoop | None,
    address: tuple[Any, ...],
    reader: FrameReader | None,
) -> tuple[asyncio.Transport, StreamProtocol]:
    host, port = _strip_legacy_filter(address)
    try:
        transport, protocol = await _loop(loop).create_connection(
            lambda: protocol_type(queue, reader), host, int(port)
        )
    except OSError as exc:
        raise TransportError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
    _enable_keepalive(transport.get_extra_info("socket"))
    return transport, protocol


async def create_tcp_frame_connection(
    queue: asyncio.Queue[Any],
    loop: asyncio.AbstractEventLoop | None,
    *address: Any,  # noqa: ANN401 - (host, port), or amshan 1.x's (None, host, port)
    reader: FrameReader | None = None,
) -> tuple[asyncio.Transport, StreamProtocol]:
    """Connect to a TCP serial server; every frame (valid or not) goes to ``queue``."""
    return await _tcp(SmartMeterFrameProtocol, queue, loop, address, reader)


async def create_tcp_frame_content_connection(
    queue: asyncio.Queue[Any],
    loop: asyncio.AbstractEventLoop | None,
    *address: Any,  # noqa: ANN401 - (host, port), or amshan 1.x's (None, host, port)
    reader: FrameReader | None = None,
) -> tuple[asyncio.Transport, StreamProtocol]:
    """Connect to a TCP serial server; the content of every valid frame goes to ``queue``."""
    return await _tcp(SmartMeterFrameContentProtocol, queue, loop, address, reader)


async def _serial(  # noqa: PLR0913, PLR0917 - the serial line settings
    protocol_type: type[StreamProtocol],
    queue: asyncio.Queue[Any],
    loop: asyncio.AbstractEventLoop | None,
    args: tuple[Any, ...],
    url: str | None,
    reader: FrameReader | None,
    settings: dict[str, Any],
) -> tuple[asyncio.BaseTransport, StreamProtocol]:
    rest = _strip_legacy_filter(args)
    device = url if url is not None else (rest[0] if rest else None)
    if device is None:
        raise TransportError("no serial device given (url=...)")
    try:
        transport, protocol = await serial_asyncio_fast.create_serial_connection(
            _loop(loop), lambda: protocol_type(queue, reader), device, **settings
        )
    except (serial.SerialException, OSError, ValueError, termios.error) as exc:
        # termios.error: settings the device refuses (e.g. parity on a pseudo-terminal).
        raise serial_open_error(device, exc) from exc
    assert isinstance(protocol, StreamProtocol)
    return transport, protocol


def serial_open_error(device: str, exc: BaseException) -> TransportError:
    """The error for a serial port that does not open; "permission denied" says what to do.

    The hint is part of the message, so the connection manager logs it as it logs a reason:
    once per outage.
    """
    message = f"cannot open serial port {device}: {exc}"
    if getattr(exc, "errno", None) in {errno.EACCES, errno.EPERM}:
        message += f"; {_permission_hint(device)}"
    return TransportError(message)


def _permission_hint(device: str) -> str:
    try:
        gid = Path(device).stat().st_gid
    except OSError:
        return "this user may not open it: add it to the group that owns the device"
    try:
        group = f"{grp.getgrgid(gid).gr_name} (gid {gid})"
    except KeyError:
        group = f"gid {gid}"
    return (
        f"this user may not open it: the device belongs to group {group}; add the user to it "
        f"(e.g. sudo usermod -aG {group.split()[0]} $USER, then log in again), and in a container "
        f'run with --group-add "$(stat -c %g {device})"'
    )


async def create_serial_frame_connection(  # noqa: PLR0913 - the serial line settings
    queue: asyncio.Queue[Any],
    loop: asyncio.AbstractEventLoop | None,
    *args: Any,  # noqa: ANN401 - amshan 1.x passed None here
    url: str | None = None,
    baudrate: int = 2400,
    parity: str = serial.PARITY_NONE,
    bytesize: int = serial.EIGHTBITS,
    stopbits: float = serial.STOPBITS_ONE,
    reader: FrameReader | None = None,
    **kwargs: Any,  # noqa: ANN401 - passed on to serial.Serial
) -> tuple[asyncio.BaseTransport, StreamProtocol]:
    """Open a serial port (``url``: a device path or a pyserial URL); every frame goes to ``queue``.

    Typical HAN settings: Aidon 2400 8E1, Kaifa and Kamstrup 2400 8N1; P1 ports 115200 8N1.
    """
    settings = {"baudrate": baudrate, "parity": parity, "bytesize": bytesize, "stopbits": stopbits}
    return await _serial(
        SmartMeterFrameProtocol, queue, loop, args, url, reader, {**settings, **kwargs}
    )


async def create_serial_frame_content_connection(  # noqa: PLR0913 - the serial line settings
    queue: asyncio.Queue[Any],
    loop: asyncio.AbstractEventLoop | None,
    *args: Any,  # noqa: ANN401 - amshan 1.x passed None here
    url: str | None = None,
    baudrate: int = 2400,
    parity: str = serial.PARITY_NONE,
    bytesize: int = serial.EIGHTBITS,
    stopbits: float = serial.STOPBITS_ONE,
    reader: FrameReader | None = None,
    **kwargs: Any,  # noqa: ANN401 - passed on to serial.Serial
) -> tuple[asyncio.BaseTransport, StreamProtocol]:
    """Open a serial port; the content of every valid frame goes to ``queue``."""
    settings = {"baudrate": baudrate, "parity": parity, "bytesize": bytesize, "stopbits": stopbits}
    return await _serial(
        SmartMeterFrameContentProtocol, queue, loop, args, url, reader, {**settings, **kwargs}
    )
