"""han2mqtt: smart meter HAN/P1 port decoding (the successor of ``amshan``) and an MQTT bridge.

The decoding core is sans-IO and imports nothing beyond the standard library::

    from han2mqtt import AutoDecoder, HdlcFrameReader

    reader = HdlcFrameReader()
    decoder = AutoDecoder()
    for frame in reader.read(chunk):
        if frame.is_valid:
            print(decoder.decode_frame_content(frame.payload))

The asyncio transports (protocols, connection factories, ``ConnectionManager``) are importable
from here too; they are loaded on first use so that the core stays free of asyncio and serial.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from han2mqtt import errors, obis_map
from han2mqtt._version import __version__
from han2mqtt.autodecoder import AutoDecoder
from han2mqtt.errors import (
    ApduError,
    AxdrError,
    ChecksumError,
    ConfigError,
    DecodeError,
    DecryptionError,
    FramingError,
    Han2MqttError,
    LayoutError,
    MissingKeyError,
    SecurityError,
    TransportError,
)
from han2mqtt.meters import aidon, kaifa, kamstrup
from han2mqtt.model import MeterReading
from han2mqtt.protocol.hdlc import HdlcFrame, HdlcFrameReader, HdlcSegmentAssembler

if TYPE_CHECKING:
    from han2mqtt.io import (
        ConnectionManager,
        SmartMeterFrameContentProtocol,
        SmartMeterFrameProtocol,
        create_serial_frame_connection,
        create_serial_frame_content_connection,
        create_tcp_frame_connection,
        create_tcp_frame_content_connection,
    )

_LAZY_IO = frozenset(
    {
        "ConnectionManager",
        "SmartMeterFrameContentProtocol",
        "SmartMeterFrameProtocol",
        "create_serial_frame_connection",
        "create_serial_frame_content_connection",
        "create_tcp_frame_connection",
        "create_tcp_frame_content_connection",
    }
)

__all__ = [
    "ApduError",
    "AutoDecoder",
    "AxdrError",
    "ChecksumError",
    "ConfigError",
    "ConnectionManager",
    "DecodeError",
    "DecryptionError",
    "FramingError",
    "Han2MqttError",
    "HdlcFrame",
    "HdlcFrameReader",
    "HdlcSegmentAssembler",
    "LayoutError",
    "MeterReading",
    "MissingKeyError",
    "SecurityError",
    "SmartMeterFrameContentProtocol",
    "SmartMeterFrameProtocol",
    "TransportError",
    "__version__",
    "aidon",
    "create_serial_frame_connection",
    "create_serial_frame_content_connection",
    "create_tcp_frame_connection",
    "create_tcp_frame_content_connection",
    "errors",
    "kaifa",
    "kamstrup",
    "obis_map",
]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - module attribute hook
    """Load the asyncio transports on first use (PEP 562)."""
    if name in _LAZY_IO:
        return getattr(importlib.import_module("han2mqtt.io"), name)
    raise AttributeError(f"module 'han2mqtt' has no attribute {name!r}")
