"""Transports: asyncio protocols, serial and TCP connection factories, the ConnectionManager."""

from han2mqtt.io.connections import (
    create_serial_frame_connection,
    create_serial_frame_content_connection,
    create_tcp_frame_connection,
    create_tcp_frame_content_connection,
)
from han2mqtt.io.reconnect import (
    BackOff,
    CircuitBreaker,
    Clock,
    ConnectionManager,
    ConnectionState,
    ConnectionStats,
    SystemClock,
)
from han2mqtt.io.stream import (
    FrameReader,
    SmartMeterFrameContentProtocol,
    SmartMeterFrameProtocol,
    StreamProtocol,
)

__all__ = [
    "BackOff",
    "CircuitBreaker",
    "Clock",
    "ConnectionManager",
    "ConnectionState",
    "ConnectionStats",
    "FrameReader",
    "SmartMeterFrameContentProtocol",
    "SmartMeterFrameProtocol",
    "StreamProtocol",
    "SystemClock",
    "create_serial_frame_connection",
    "create_serial_frame_content_connection",
    "create_tcp_frame_connection",
    "create_tcp_frame_content_connection",
]
