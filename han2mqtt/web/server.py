"""The aiohttp application: a fixed set of read-only routes, served in the daemon's event loop.

Routes: ``/`` (the page), ``/app.js``, ``/app.css``, ``/favicon.svg`` (from a fixed in-package
dict: no path ever reaches the file system), ``/api/state``, ``/api/history?minutes=N`` (the
live power) and ``/api/history?resolution=...&from=...&to=...&meter=...`` (the ledger),
``/api/events`` (Server-Sent Events) and ``/metrics``.  Only GET (and HEAD).  Every response,
errors included, carries a strict Content-Security-Policy and the usual hardening headers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import web

from han2mqtt.bridge import Bridge
from han2mqtt.config import WebSettings
from han2mqtt.errors import StateError
from han2mqtt.history.costing import HistoryCosts
from han2mqtt.history.ledger import UNITS, LedgerStore
from han2mqtt.history.query import document, parse_query, resolve_meter
from han2mqtt.history.settings import history_path
from han2mqtt.history.writer import open_reader
from han2mqtt.io import ConnectionManager
from han2mqtt.web.historypage import parse_view, render_history
from han2mqtt.web.hub import EventHub, sse
from han2mqtt.web.render import render_page
from han2mqtt.web.view import HISTORY_MINUTES, LiveView

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = ["ASSETS", "SECURITY_HEADERS", "StatusPage", "parse_minutes"]

_LOGGER = logging.getLogger("han2mqtt")

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
_TYPES: Final = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def _load_assets() -> dict[str, tuple[bytes, str, str]]:
    """``/name`` → (content, content type, ETag) of the package's own three files."""
    folder = resources.files("han2mqtt.web").joinpath("assets")
    found = {}
    for name, content_type in _TYPES.items():
        content = folder.joinpath(name).read_bytes()
        etag = '"' + hashlib.sha256(content).hexdigest()[:16] + '"'
        found[f"/{name}"] = (content, content_type, etag)
    return found


ASSETS: Final = _load_assets()
_DEFAULT_MINUTES = 10
_HEARTBEAT = 5.0
"""Seconds between ``status`` events (the bridge's counters; also finds dead connections)."""
_RETRY_MS = 5000
_STOP_TIMEOUT = 1.0


def parse_minutes(values: list[str]) -> int:
    """The ``minutes`` parameter(s) of ``/api/history``: once, 1 .. :data:`HISTORY_MINUTES`.

    Raises:
        ValueError: anything else (repeated, sign, fraction, exponent, huge, empty).
    """
    if not values:
        return _DEFAULT_MINUTES
    if len(values) > 1:
        raise ValueError("give minutes once")
    raw = values[0]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 3:
        raise ValueError(f"minutes must be a whole number from 1 to {HISTORY_MINUTES}")
    minutes = int(raw)
    if not 1 <= minutes <= HISTORY_MINUTES:
        raise ValueError(f"minutes must be a whole number from 1 to {HISTORY_MINUTES}")
    return minutes


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="han2mqtt", charset="UTF-8"'}


def _basic_auth(username: str, password: str) -> Any:  # noqa: ANN401 - aiohttp's middleware type
    """A middleware that asks every request for ``username`` and ``password`` (RFC 7617).

    Both are compared in constant time, as UTF-8 octets; a missing or wrong pair is a 401 with a
    challenge, and the handler never runs.
    """
    expected = f"{username}:{password}".encode()

    @web.middleware
    async def check(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not hmac.compare_digest(_credentials(request), expected):
            return web.Response(status=401, text="401: log in (web.username)", headers=_CHALLENGE)
        return await handler(request)

    return check


def _loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _credentials(request: web.Request) -> bytes:
    """The ``user:password`` octets of a Basic ``Authorization`` header; empty when none."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return b""
    try:
        return base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _page_meter(store: LedgerStore | None, meter: str | None) -> str | None:
    """The meter a history view shows: the one asked for, else the default one.

    None when there are several electricity meters: the page lists them.

    Raises:
        ValueError: a meter the database does not hold.
    """
    if meter is not None:
        return resolve_meter(store, meter)
    try:
        return resolve_meter(store, None)
    except ValueError:
        return None


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


class StatusPage:
    """The status page of one bridge; :meth:`start` listens, :meth:`stop` ends every stream.

    Args:
        settings: the ``web`` section.
        bridge: the bridge to show (a listener is added to it).
        source: the source's connection manager (for its counters and last error).
        description: the source in a few words (``tcp 192.0.2.7:8899``).
        min_interval: seconds between event flushes (tests lower it).
    """

    def __init__(
        self,
        settings: WebSettings,
        bridge: Bridge,
        source: ConnectionManager | None = None,
        *,
        description: str | None = None,
        min_interval: float = 0.25,
    ) -> None:
        self.settings = settings
        versions = {"aiohttp": aiohttp.__version__}
        self.view = LiveView(bridge, source, versions=versions, description=description)
        self.hub = EventHub(self._reading_event, min_interval=min_interval)
        self.view.on_change = self.hub.touch
        bridge.listeners.append(self.view.on_reading)
        self._registry: CollectorRegistry | None = None
        """Made at the first scrape: prometheus-client costs 1 MiB, and few users scrape."""
        settings_all = bridge.settings
        self._settings_all = settings_all
        self.zone = settings_all.meter.zone()
        self._ledger_path = (
            history_path(settings_all)
            if settings_all.history.enabled and settings_all.source.type != "demo"
            else None
        )
        self._ledger: LedgerStore | None = None
        self._runner: web.AppRunner | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self.port: int | None = None
        """The port listened on, once started."""

    def application(self) -> web.Application:
        """The aiohttp application (tests serve it with aiohttp's test server)."""
        middlewares = []
        if self.settings.username is not None and self.settings.password is not None:
            middlewares.append(
                _basic_auth(self.settings.username, self.settings.password.get_secret_value())
            )
        app = web.Application(client_max_size=1024, middlewares=middlewares)
        app.on_response_prepare.append(_secure)
        app.router.add_get("/", self._page)
        for path in ASSETS:
            app.router.add_get(path, self._asset)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/history", self._history)
        app.router.add_get("/history", self._history_page)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/metrics", self._metrics)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def start(self) -> None:
        """Listen on ``settings.host:settings.port``.

        Raises:
            OSError: the address is taken or not ours.
        """
        runner = web.AppRunner(self.application(), access_log=None, shutdown_timeout=_STOP_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server  # noqa: SLF001 - the only way to the bound sockets
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        _LOGGER.info("status page on http://%s:%s/", self.settings.host, self.port)
        if self.settings.password is None and not _loopback(self.settings.host):
            _LOGGER.warning(
                "the status page on %s is open to the network without a password: set "
                "web.username and web.password (it shows your consumption hour by hour)",
                self.settings.host,
            )

    async def stop(self) -> None:
        """End the event streams and close the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _on_startup(self, _app: web.Application) -> None:
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="web-heartbeat")

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.hub.close()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(_HEARTBEAT)
            if self.hub.clients:
                self.hub.broadcast(self._status_event())

    # -- events ----------------------------------------------------------------------------------

    def _reading_event(self, meter_id: str) -> bytes:
        data = {"bridge": self.view.bridge_json(), "meter": self.view.meter_json(meter_id)}
        return sse("reading", json.dumps(data, separators=(",", ":")))

    def _status_event(self) -> bytes:
        data = {"bridge": self.view.bridge_json()}
        return sse("status", json.dumps(data, separators=(",", ":")))

    # -- handlers --------------------------------------------------------------------------------

    async def _page(self, _request: web.Request) -> web.Response:
        history = self.view.history_json(_DEFAULT_MINUTES)
        return web.Response(
            text=render_page(self.view.state_json(), history),
            content_type="text/html",
            headers={"Cache-Control": "no-store"},
        )

    async def _asset(self, request: web.Request) -> web.Response:
        content, content_type, etag = ASSETS[request.path]
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Content-Type": content_type}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=content, headers=headers)

    async def _state(self, _request: web.Request) -> web.Response:
        return _json(self.view.state_json())

    async def _history(self, request: web.Request) -> web.Response:
        query = request.query
        if any(name in query for name in _LEDGER_PARAMETERS):
            return self._ledger_history(request)
        try:
            minutes = parse_minutes(query.getall("minutes", []))
        except ValueError as exc:
            return _json({"error": str(exc)}, status=400)
        return _json(self.view.history_json(minutes))

    async def _history_page(self, request: web.Request) -> web.Response:
        try:
            given = _once(request.query, _PAGE_PARAMETERS)
            today = datetime.now(UTC).astimezone(self.zone).date()
            view = parse_view(given.get("view"), given.get("date"), given.get("meter"), today)
            store = self.ledger()
            meters = [] if store is None else store.meters()
            meter = _page_meter(store, view.meter)
            costs = HistoryCosts.of(self._settings_all, store)
            page = render_history(replace(view, meter=meter), store, meters, self.zone, costs)
        except ValueError as exc:
            return web.Response(text=f"{exc}\n", status=400)
        except StateError as exc:
            return web.Response(text=f"{exc}\n", status=503)
        return web.Response(
            text=page, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    def ledger(self) -> LedgerStore | None:
        """The ledger, read-only (opened at the first request that finds the database)."""
        if self._ledger is None and self._ledger_path is not None:
            self._ledger = open_reader(self._ledger_path, self.zone)
        return self._ledger

    def _ledger_history(self, request: web.Request) -> web.Response:
        try:
            given = _once(request.query)
            query = parse_query(
                resolution=given.get("resolution"),
                start=given.get("from"),
                end=given.get("to"),
                meter=given.get("meter"),
                zone=self.zone,
                now=datetime.now(UTC),
            )
            store = self.ledger()
            meter = resolve_meter(store, query.meter)
            rows = (
                []
                if store is None or meter is None
                else store.read(meter, query.resolution, query.start, query.end)
            )
            kind = "electricity" if store is None or meter is None else store.kind(meter)
            costs = HistoryCosts.of(self._settings_all, store)
            money = (
                None
                if costs is None or store is None or meter is None
                else costs.money(store, meter, query.resolution, rows, kind)
            )
        except ValueError as exc:
            return _json({"error": str(exc)}, status=400)
        except StateError as exc:
            return _json({"error": str(exc)}, status=503)
        currency = None if costs is None else costs.currency
        answer = document(
            meter,
            query.resolution,
            rows,
            self.zone,
            money=money,
            currency=currency,
            unit=UNITS[kind],
        )
        return _json(answer)

    async def _metrics(self, _request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

        from han2mqtt.web.metrics import registry_for  # noqa: PLC0415 - see _registry

        if self._registry is None:
            self._registry = registry_for(self.view, self.hub)
        return web.Response(
            body=generate_latest(self._registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        client = self.hub.join()
        if client is None:
            raise web.HTTPServiceUnavailable(
                text="too many event streams; try again later", headers={"Retry-After": "10"}
            )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            client.transport = request.transport
            await response.write(f"retry: {_RETRY_MS}\n\n".encode() + self._status_event())
            for meter_id in list(self.view.meters):
                await response.write(self._reading_event(meter_id))
            while (event := await client.queue.get()) is not None:
                await response.write(event)
        except (ConnectionError, RuntimeError):
            pass  # the client left, or was dropped for not reading
        finally:
            self.hub.leave(client)
        return response


_LEDGER_PARAMETERS: Final = ("resolution", "from", "to", "meter")
_KNOWN_PARAMETERS: Final = frozenset((*_LEDGER_PARAMETERS, "minutes"))
_PAGE_PARAMETERS: Final = frozenset(("view", "date", "meter"))


def _once(query: Mapping[str, str], known: frozenset[str] = _KNOWN_PARAMETERS) -> dict[str, str]:
    """The query's parameters, each given at most once, none unknown.

    Raises:
        ValueError: a repeated or unknown parameter.
    """
    given: dict[str, str] = {}
    for name, value in query.items():
        if name not in known:
            raise ValueError(f"unknown parameter {name[:40]!r}")
        if name in given:
            raise ValueError(f"give {name} once")
        given[name] = value
    if "minutes" in given:
        raise ValueError("give minutes or resolution/from/to/meter, not both")
    return given


async def _secure(_request: web.Request, response: web.StreamResponse) -> None:
    """Every response, errors and event streams included, gets the security headers."""
    response.headers.update(SECURITY_HEADERS)
