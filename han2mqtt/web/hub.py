"""Server-Sent Events fan-out that never makes frame handling wait.

The reading listener only marks a meter as changed (:meth:`EventHub.touch`: a set insert and, at
most once per flush, a ``call_later``).  A flush, at most every ``min_interval`` seconds, renders
each changed meter once and offers the bytes to every client's bounded queue.  A client whose queue
is full has stopped reading: it is dropped (its connection aborted), never waited for.  So a meter
that sends every 2 s gets every reading pushed, and a replay at thousands of frames a second costs
the clients a few events a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

__all__ = ["MAX_CLIENTS", "QUEUE_SIZE", "Client", "EventHub", "sse"]

MAX_CLIENTS: Final = 16
"""Concurrent event streams; more are refused with 503 (the browser retries later)."""
QUEUE_SIZE: Final = 64
"""Events waiting for one client; a full queue means the client stopped reading."""


def sse(event: str, data: str) -> bytes:
    """One Server-Sent Event (``data`` is one line of JSON: no newline inside)."""
    return f"event: {event}\ndata: {data}\n\n".encode()


class Client:
    """One event stream: its queue (None ends it) and its transport, to abort if it stalls."""

    __slots__ = ("queue", "transport")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_SIZE)
        self.transport: asyncio.Transport | None = None

    def end(self, *, abort: bool) -> None:
        """Make the stream's handler return; ``abort`` also cuts a connection that is stuck."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)
        if abort and self.transport is not None:
            self.transport.abort()


class EventHub:
    """The event clients, and the meters that changed since the last flush.

    Args:
        render: the event for one changed meter (``sse("reading", ...)``).
        min_interval: seconds between flushes (each flush sends every changed meter once).
        max_clients: concurrent clients.
    """

    def __init__(
        self,
        render: Callable[[str], bytes],
        *,
        min_interval: float = 0.25,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._render = render
        self._min_interval = min_interval
        self.max_clients = max_clients
        self.clients: set[Client] = set()
        self._dirty: set[str] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._last_flush = -min_interval
        self.sent = 0
        self.dropped = 0
        """Clients dropped because they stopped reading."""
        self.refused = 0
        """Clients refused because :attr:`max_clients` streams were open."""

    def join(self) -> Client | None:
        """A new client, or None when there are too many."""
        if len(self.clients) >= self.max_clients:
            self.refused += 1
            return None
        client = Client()
        self.clients.add(client)
        return client

    def leave(self, client: Client) -> None:
        """The client's stream ended (it left, was dropped, or the server stops)."""
        self.clients.discard(client)

    def touch(self, meter_id: str) -> None:
        """A meter has a new reading (called per frame: keep it cheap)."""
        if not self.clients:
            return
        self._dirty.add(meter_id)
        if self._handle is None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, self._last_flush + self._min_interval - loop.time())
            self._handle = loop.call_later(delay, self._flush)

    def broadcast(self, event: bytes) -> None:
        """Offer one event to every client; drop those that cannot take it."""
        for client in list(self.clients):
            try:
                client.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1
                self.clients.discard(client)
                client.end(abort=True)
            else:
                self.sent += 1

    def _flush(self) -> None:
        self._handle = None
        self._last_flush = asyncio.get_running_loop().time()
        dirty, self._dirty = self._dirty, set()
        for meter_id in sorted(dirty):
            if not self.clients:
                return
            self.broadcast(self._render(meter_id))

    def close(self) -> None:
        """End every stream (the server stops)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for client in list(self.clients):
            with contextlib.suppress(asyncio.QueueFull):
                client.end(abort=False)
        self.clients.clear()
