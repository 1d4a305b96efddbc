"""A local HTTP server that answers like the price sources, from the fixtures (a real server)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

FIXTURES = Path(__file__).parent / "fixtures"
ENTSOE_DAYS = {
    "2025-10-01": "entsoe_NO1_2025-10-01_PT15M_A03.xml",
    "2025-10-26": "entsoe_NO1_2025-10-26_PT15M_A03_dst.xml",
    "2026-03-29": "entsoe_NO1_2026-03-29_PT15M_A03_dst.xml",
    "2025-12-24": "entsoe_NO1_2025-12-24_PT15M_A03.xml",
}


@dataclass
class PriceServer:
    """Set ``status[path prefix]`` to answer with that status; ``huge``/``slow`` likewise."""

    port: int = 0
    status: dict[str, int] = field(default_factory=dict)
    huge: set[str] = field(default_factory=set)
    slow: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    entsoe_days: dict[str, str] = field(default_factory=lambda: dict(ENTSOE_DAYS))
    entsoe_status: dict[str, int] = field(default_factory=dict)
    """Delivery day (ISO) → the status ENTSO-E answers for that day alone."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append(request.path_qs)
        for prefix, status in self.status.items():
            if path.startswith(prefix):
                return web.Response(status=status, text="no")
        if any(path.startswith(p) for p in self.slow):
            await asyncio.sleep(5)
        if any(path.startswith(p) for p in self.huge):
            return await self._huge(request)
        if path.startswith("/entsoe"):
            return self._entsoe(request)
        if path.startswith("/hks/"):
            name = path.removeprefix("/hks/").replace("/", "-")  # 2025/10-01_NO1.json
            return self._file(f"hvakosterstrommen_{name[:10]}_{name[11:]}")
        if path.startswith("/eds"):
            return self._file("energidataservice_DayAheadPrices_2025-10-01_DK1.json")
        if path.startswith("/ecb"):
            return self._file("ecb_eurofxref-hist-90d.xml")
        return web.Response(status=404)

    def _entsoe(self, request: web.Request) -> web.Response:
        if request.query.get("securityToken") != "test-token":
            return web.Response(status=401, text="Unauthorized")
        start = datetime.strptime(request.query["periodStart"] + "+0000", "%Y%m%d%H%M%z")
        day = start.astimezone(ZoneInfo("Europe/Oslo")).date().isoformat()
        if day in self.entsoe_status:
            return web.Response(status=self.entsoe_status[day], text="busy")
        name = self.entsoe_days.get(day, "entsoe_acknowledgement_no_data.xml")
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        path = FIXTURES / name
        if not path.exists():
            return web.Response(status=404)
        return web.Response(body=path.read_bytes())

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"[" + b"0," * 32767
        for _ in range(200):  # 13 MB if nobody stops reading
            try:
                await response.write(chunk)
            except ConnectionError:
                break
        return response


@asynccontextmanager
async def price_server(server: PriceServer | None = None) -> AsyncIterator[PriceServer]:
    server = server or PriceServer()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", server.port)
    await site.start()
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server
    finally:
        await runner.cleanup()


class PriceServerThread:
    """The same server on a loop of its own, for tests that run the daemon as a process."""

    def __init__(self, server: PriceServer | None = None) -> None:
        self.server = server or PriceServer()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PriceServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the price server did not start")
        return self.server

    def __exit__(self, *_exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with price_server(self.server):
            self._ready.set()
            await self._stop.wait()
