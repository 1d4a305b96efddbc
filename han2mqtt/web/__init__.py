"""The status page: live power, today's hours, the tariff and diagnostics, read-only.

Served by aiohttp inside the daemon's event loop (``web.enabled``, ``web.host``, ``web.port``).
Importing this package imports aiohttp and prometheus-client; the daemon does so only when the
page is enabled.
"""

from han2mqtt.web.server import StatusPage
from han2mqtt.web.view import LiveView

__all__ = ["LiveView", "StatusPage"]
