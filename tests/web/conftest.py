"""A real status page on a free port, in the test's event loop, over a real bridge.

The bridge is fed real captured frames (the demo's samples) and publishes through the printing
publisher; the page listens on 127.0.0.1 and is asked over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from han2mqtt.bridge import Bridge, PrintPublisher
from han2mqtt.config import Settings
from han2mqtt.protocol.hdlc import HdlcFrameReader
from han2mqtt.simulator import load_samples
from han2mqtt.web import StatusPage
from tests.conftest import free_port

AIDON_ID = "7359992891237028"
CONTENTS = [frame.payload for frame in HdlcFrameReader().read(b"".join(load_samples()))]
AIDON = CONTENTS[:3]  # lists 2 (1672 W), 1 (512 W), 3 (1743 W)
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


class Page:
    """The page under test, its bridge, and an HTTP client for it."""

    def __init__(self, page: StatusPage, bridge: Bridge, session: aiohttp.ClientSession) -> None:
        self.page = page
        self.bridge = bridge
        self.session = session
        self.printed: list[str] = []
        self.url = f"http://127.0.0.1:{page.port}"

    def feed(self, contents: list[bytes], start: datetime = T0, step: float = 2.0) -> None:
        for index, content in enumerate(contents):
            self.bridge.handle_content(content, start + timedelta(seconds=index * step))

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        response = await self.session.get(self.url + path, **kwargs)
        await response.read()
        return response

    async def json(self, path: str) -> Any:
        response = await self.get(path)
        assert response.status == 200, await response.text()
        return await response.json()


def make_settings(**sections: Any) -> Settings:
    data: dict[str, Any] = {"web": {"port": free_port()}, **sections}
    return Settings.model_validate(data)


@pytest.fixture
async def page_factory() -> AsyncIterator[Any]:
    pages: list[Page] = []
    session = aiohttp.ClientSession()

    async def make(settings: Settings | None = None, **kwargs: Any) -> Page:
        settings = settings or make_settings()
        printed: list[str] = []
        bridge = Bridge(settings, PrintPublisher(settings.mqtt.base_topic, printed.append))
        status = StatusPage(settings.web, bridge, **{"min_interval": 0.0, **kwargs})
        await status.start()
        page = Page(status, bridge, session)
        page.printed = printed
        pages.append(page)
        return page

    yield make
    await session.close()
    for page in pages:
        await page.page.stop()


@pytest.fixture
async def page(page_factory: Any) -> Page:
    made: Page = await page_factory()
    return made
