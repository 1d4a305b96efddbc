"""Hostile requests: traversal, huge and malformed input, floods of event clients, a client that
never reads.  The page must answer with an error or drop the client, with bounded memory, and
frame handling must go on."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from han2mqtt.web.hub import MAX_CLIENTS, QUEUE_SIZE
from tests.web.conftest import AIDON

TRAVERSALS = [
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/app.js/../../../pyproject.toml",
    "/assets/../server.py",
    "/han2mqtt/web/server.py",
    "/web/assets/app.js",
    "//etc/passwd",
    "/app.js%00.html",
    "/APP.JS",
    "/app.js/",
    "/favicon.ico",
    "/static/app.js",
    "/.git/config",
    "/config.yaml",
    "/etc/han2mqtt/config.yaml",
    "/proc/self/environ",
]


async def _raw(port: int, request: bytes, limit: int = 1 << 16) -> bytes:
    """Send exactly ``request`` (no client-side normalization) and read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(limit), 5)
    finally:
        writer.close()


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_no_path_reaches_the_file_system(page, path):
    answer = await _raw(page.page.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status = int(answer.split(b" ", 2)[1])
    assert status in {301, 308, 400, 404}, answer[:200]
    for secret in (b"root:", b"[build-system]", b"import ", b"[core]", b"PATH="):
        assert secret not in answer


async def test_huge_request_line_and_headers_are_refused_and_the_page_lives_on(page):
    page.feed(AIDON)
    url = "/api/history?minutes=" + "9" * 100_000
    answer = await _raw(page.page.port, f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")) or answer == b""
    header = "X-Big: " + "a" * 100_000
    answer = await _raw(page.page.port, f"GET / HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n".encode())
    assert answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")) or answer == b""
    answer = await _raw(page.page.port, b"\x16\x03\x01\x02\x00" + bytes(300))  # TLS to http
    assert not answer.startswith(b"HTTP/1.1 2")
    assert (await page.get("/api/state")).status == 200


async def test_a_body_is_never_read(page):
    answer = await _raw(
        page.page.port,
        b"POST /api/state HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + bytes(1000),
    )
    assert answer.startswith(b"HTTP/1.1 405")


async def test_event_clients_are_capped(page):
    session = page.session
    streams = []
    try:
        for _ in range(MAX_CLIENTS):
            response = await session.get(page.url + "/api/events")
            assert response.status == 200
            streams.append(response)
        refused = await page.get("/api/events")
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "10"
        assert page.page.hub.refused == 1
        streams.pop().close()
        for _ in range(50):  # the server notices the closed stream
            if len(page.page.hub.clients) < MAX_CLIENTS:
                break
            page.feed(AIDON[:1])  # an event to write makes the closed stream fail at once
            await asyncio.sleep(0.02)
        again = await session.get(page.url + "/api/events")
        assert again.status == 200
        streams.append(again)
    finally:
        for stream in streams:
            stream.close()


async def test_a_client_that_never_reads_is_dropped_not_waited_for(page):
    page.feed(AIDON[:1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", page.page.port))
    await loop.sock_sendall(sock, b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
    hub = page.page.hub
    for _ in range(100):
        if hub.clients:
            break
        await asyncio.sleep(0.01)
    (client,) = hub.clients
    longest = 0
    try:
        # Each frame makes an event of about 1.5 kB; the client reads none of them.
        for round_ in range(20_000):
            page.bridge.handle_content(AIDON[round_ % 3])
            await asyncio.sleep(0)
            longest = max(longest, client.queue.qsize())
            if hub.dropped:
                break
        assert hub.dropped == 1
        assert hub.clients == set()
        assert longest <= QUEUE_SIZE
        metrics = await (await page.get("/metrics")).text()
        assert "han2mqtt_web_event_streams_dropped_total 1.0" in metrics
        # The connection was aborted, not left to drain: the kernel reports the reset or EOF.
        with pytest.raises((ConnectionResetError, EOFError)):
            await _read_until_closed(loop, sock)
    finally:
        sock.close()
    assert (await page.get("/api/state")).status == 200


async def _read_until_closed(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    while await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 2):
        pass
    raise EOFError


async def test_many_clients_coming_and_going_leave_nothing_behind(page):
    page.feed(AIDON)
    for _ in range(5):
        async with aiohttp.ClientSession() as session:
            responses = [await session.get(page.url + "/api/events") for _ in range(MAX_CLIENTS)]
            for response in responses:
                assert response.status == 200
            page.feed(AIDON[:1])
            await asyncio.sleep(0.05)
            for response in responses:
                response.close()
        page.feed(AIDON[:1])
        await asyncio.sleep(0.05)
    for _ in range(100):
        if not page.page.hub.clients:
            break
        page.feed(AIDON[:1])
        await asyncio.sleep(0.02)
    assert page.page.hub.clients == set()


async def test_stop_ends_open_streams_at_once(page_factory):
    page = await page_factory()
    session = aiohttp.ClientSession()
    try:
        streams = [await session.get(page.url + "/api/events") for _ in range(3)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        await page.page.stop()
        assert loop.time() - started < 1.5
        for stream in streams:
            rest = await asyncio.wait_for(stream.content.read(), 2)
            assert b"event: status" in rest or rest == b""
    finally:
        await session.close()
