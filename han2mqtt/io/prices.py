"""Fetching prices: one delivery day per request, fallbacks in order, cache, exchange rates.

The :class:`PriceFetcher` runs as a task of its own; the frame path only calls :meth:`want`
(a set insertion) and reads the :class:`~han2mqtt.prices.table.PriceTable`.  Each day is fetched
on its own (a failure of one day never takes another day's prices with it), tried source by
source (``prices.source``, then ``prices.fallback``), kept in the history database, and retried
with capped, jittered back-off until it comes.  Every HTTP answer is read with bounded timeouts
and at most :data:`MAX_BODY` bytes.  Faults are logged once per outage (and when it ends) and
counted for ``bridge/info``; the last good prices stay in the table.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import aiohttp

from han2mqtt.config import Settings
from han2mqtt.errors import PriceError, PriceFormatError, StateError
from han2mqtt.history.prices import PriceCache
from han2mqtt.io.reconnect import BackOff, Clock, SystemClock
from han2mqtt.prices.areas import Area
from han2mqtt.prices.ecb import RATE_MAX_AGE, parse_ecb_rates, rate_on
from han2mqtt.prices.entsoe import parse_entsoe
from han2mqtt.prices.jsonsources import (
    parse_elprisetjustnu,
    parse_energidataservice,
    parse_hvakosterstrommen,
    parse_mqtt_prices,
)
from han2mqtt.prices.model import DayPrices, PricePoint
from han2mqtt.prices.table import PriceTable, convert, day_bounds, fixed_day, whole_day

__all__ = ["MAX_BODY", "PUBLIC_URLS", "PriceFetcher", "request_for"]

_LOGGER = logging.getLogger(__name__)

PUBLIC_URLS: Final = {
    "entsoe": "https://web-api.tp.entsoe.eu/api",
    "energidataservice": "https://api.energidataservice.dk/dataset/DayAheadPrices",
    "hvakosterstrommen": "https://www.hvakosterstrommen.no/api/v1/prices",
    "elprisetjustnu": "https://www.elprisetjustnu.se/api/v1/prices",
    "ecb": "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist-90d.xml",
}
"""Each source's public base URL (``prices.url`` / ``prices.urls`` replace them)."""
MAX_BODY: Final = 4 * 1024 * 1024
"""Bytes read at most from one answer: a day of quarters is ~15 kB, the ECB's 90 days ~30 kB."""
TIMEOUT: Final = aiohttp.ClientTimeout(total=30, connect=10, sock_read=20)
RETRY_MIN: Final = 30.0
RETRY_MAX: Final = 3600.0
TOMORROW_RETRY: Final = 900.0
"""Seconds between looks for tomorrow's prices once they are due (day-ahead results come at
about 12:45 CET; the sources publish them within the next hour or so)."""
_FAULT_LIMIT: Final = 32
KEEP_DAYS: Final = timedelta(days=62)
"""Days kept in memory before the newest one added: this month and the last, for the costs."""


class _HttpError(PriceError):
    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status = status


@dataclass(slots=True)
class _Day:
    backoff: BackOff
    ahead: bool
    next_try: float = 0.0
    failing: bool = False


def request_for(
    source: str, base: str, where: Area, day: date, token: str | None
) -> tuple[str, dict[str, str]]:
    """The URL and query of ``source``'s answer for one delivery day."""
    start, end = day_bounds(where, day)
    if source == "entsoe":
        query = {
            "documentType": "A44",
            "in_Domain": where.eic,
            "out_Domain": where.eic,
            "periodStart": start.strftime("%Y%m%d%H%M"),
            "periodEnd": end.strftime("%Y%m%d%H%M"),
            "securityToken": token or "",
        }
        return base, query
    if source == "energidataservice":
        # A day either side, as dates: whole_day() keeps the day's own intervals, whichever
        # time zone the service reads the bounds in.
        query = {
            "start": (day - timedelta(days=1)).isoformat(),
            "end": (day + timedelta(days=2)).isoformat(),
            "filter": json.dumps({"PriceArea": [where.name]}, separators=(",", ":")),
            "sort": "TimeUTC ASC",
        }
        return base, query
    return f"{base.rstrip('/')}/{day.year}/{day:%m-%d}_{where.name}.json", {}


def _parse(source: str, body: bytes, where: Area) -> tuple[str, tuple[PricePoint, ...]]:
    if source == "entsoe":
        return "EUR", parse_entsoe(body)
    if source == "energidataservice":
        return parse_energidataservice(body, where.name)
    if source == "hvakosterstrommen":
        return "NOK", parse_hvakosterstrommen(body)
    if source == "elprisetjustnu":
        return "SEK", parse_elprisetjustnu(body)
    raise PriceError(f"{source} is no source of days")


class PriceFetcher:
    """Fetches, caches and converts days of prices into a :class:`PriceTable`.

    Args:
        settings: the configuration (``prices`` section).
        table: where converted days go (in ``table.currency``).
        cache: the history database's price cache, or None.
        clock: monotonic time and sleeping (injectable for tests).
        on_day: called after a day was added to the table (publish the area's prices).
        timeout: the HTTP timeouts.
    """

    def __init__(  # noqa: PLR0913 - the table, its cache, and three injectable parts
        self,
        settings: Settings,
        table: PriceTable,
        cache: PriceCache | None = None,
        *,
        clock: Clock | None = None,
        on_day: Callable[[date], None] = lambda _day: None,
        timeout: aiohttp.ClientTimeout = TIMEOUT,
    ) -> None:
        self.prices = settings.prices
        self.table = table
        self.area = table.area
        self.cache = cache
        self.clock = clock or SystemClock()
        self.on_day = on_day
        self.timeout = timeout
        self.faults: Counter[str] = Counter()
        self.fetched = 0
        self._days: dict[date, _Day] = {}
        self._wake = asyncio.Event()
        self._failing: set[str] = set()
        self._rates: dict[date, dict[str, float]] = {}

    # -- the frame path's side ------------------------------------------------------------

    def want(self, day: date, ahead: bool = False) -> None:
        """Ask for ``day``'s prices (cheap; never waits).

        ``ahead``: tomorrow's, which may not be published yet: looked for every
        :data:`TOMORROW_RETRY` seconds, and its absence is no fault.
        """
        if day in self._days or self.table.has(day) or not self._chain():
            return
        self._days[day] = _Day(BackOff(RETRY_MIN, RETRY_MAX), ahead)
        self._wake.set()

    def status(self) -> dict[str, object]:
        """For ``bridge/info``: the source, days fetched and faults by kind."""
        return {
            "source": self.prices.source,
            "area": self.area.name,
            "days_fetched": self.fetched,
            "days_pending": len(self._days),
            "faults": dict(self.faults),
        }

    # -- the task -------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch wanted days forever (cancel to stop)."""
        connector = aiohttp.TCPConnector(limit=2)
        async with aiohttp.ClientSession(timeout=self.timeout, connector=connector) as session:
            while True:
                await self._round(session)
                await self._sleep()

    async def _sleep(self) -> None:
        now = self.clock.monotonic()
        due = min((d.next_try for d in self._days.values()), default=now + RETRY_MAX)
        self._wake.clear()
        with _suppress_timeout():
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.05, due - now))

    async def _round(self, session: aiohttp.ClientSession) -> None:
        now = self.clock.monotonic()
        for day in sorted(self._days):
            entry = self._days[day]
            if entry.next_try > now:
                continue
            if await self._one_day(session, day, entry):
                del self._days[day]

    async def _one_day(self, session: aiohttp.ClientSession, day: date, entry: _Day) -> bool:
        try:
            cached = self._cached(day)
            if cached is not None:
                await self._add(session, cached)
                return True
            prices, source = await self._fetch_day(session, day, entry.ahead)
            self._store(prices, source)
            await self._add(session, prices)
        except PriceError as exc:
            delay = TOMORROW_RETRY if entry.ahead else entry.backoff.next_delay()
            entry.next_try = self.clock.monotonic() + delay
            if not entry.failing:
                entry.failing = True
                level = logging.INFO if entry.ahead else logging.WARNING
                _LOGGER.log(level, "prices for %s %s: %s; retrying", self.area.name, day, exc)
            return False
        if entry.failing:
            _LOGGER.info("prices for %s %s: fetched after all", self.area.name, day)
        self.fetched += 1
        return True

    async def _fetch_day(
        self, session: aiohttp.ClientSession, day: date, ahead: bool
    ) -> tuple[DayPrices, str]:
        """The day from the first source that has it whole; the last source's error else."""
        chain = self._chain()
        failure: PriceError = PriceError("no source")
        for source in chain:
            try:
                prices = await self._from_source(session, source, day)
            except PriceError as exc:
                if not (ahead and _is_absent(exc)):  # tomorrow not out yet is no fault
                    self._fault(source, exc)
                failure = exc
                continue
            self._recovered(source)
            return prices, source
        raise failure

    def _chain(self) -> list[str]:
        """The sources tried in order for a day (``mqtt`` brings its prices by itself)."""
        chain = [self.prices.source, *self.prices.fallback]
        return [s for i, s in enumerate(chain) if s not in ("mqtt", "none") and s not in chain[:i]]

    async def settled(self, day: date, patience: float) -> None:
        """Wait (at most ``patience`` seconds) until ``day`` is known or its first try failed.

        For replays only: a recording may wait for its prices; a live meter never does.
        """
        deadline = self.clock.monotonic() + patience
        while self.clock.monotonic() < deadline:
            entry = self._days.get(day)
            if entry is None or entry.failing:
                return
            await asyncio.sleep(0.05)

    async def _from_source(
        self, session: aiohttp.ClientSession, source: str, day: date
    ) -> DayPrices:
        if source == "fixed":
            return self._fixed_day(day)
        base = self._base(source)
        token = None if self.prices.token is None else self.prices.token.get_secret_value()
        url, query = request_for(source, base, self.area, day, token)
        body = await _get(session, url, query)
        currency, points = _parse(source, body, self.area)
        if not points:
            raise PriceError(f"{source} has no prices for {day}")
        return whole_day(self.area, day, currency, points)

    def _base(self, source: str) -> str:
        if source == self.prices.source and self.prices.url:
            return self.prices.url
        return (self.prices.urls or {}).get(source) or PUBLIC_URLS[source]

    def _fixed_day(self, day: date) -> DayPrices:
        return fixed_day(self.area, day, self.table.currency, self.prices.fixed or 0.0)

    # -- faults ---------------------------------------------------------------------------

    def _fault(self, source: str, exc: PriceError) -> None:
        kind = _kind(exc)
        if len(self.faults) < _FAULT_LIMIT or kind in self.faults:
            self.faults[kind] += 1
        if source in self._failing:
            return
        self._failing.add(source)
        if isinstance(exc, _HttpError) and exc.status in (401, 403):
            _LOGGER.error(
                "prices: %s refuses the request (HTTP %d): check prices.token", source, exc.status
            )
        else:
            _LOGGER.warning("prices: %s failed: %s (further failures are counted)", source, exc)

    def _recovered(self, source: str) -> None:
        if source in self._failing:
            self._failing.discard(source)
            _LOGGER.info("prices: %s answers again", source)

    # -- cache, currency ------------------------------------------------------------------

    def _cached(self, day: date) -> DayPrices | None:
        if self.cache is None:
            return None
        try:
            found = self.cache.load_day(self.area.name, day)
        except StateError as exc:
            _LOGGER.warning("%s", exc)
            return None
        return None if found is None else found[0]

    def _store(self, prices: DayPrices, source: str) -> None:
        if self.cache is None:
            return
        try:
            self.cache.store_day(prices, source)
        except StateError as exc:
            _LOGGER.warning("%s", exc)

    async def _add(self, session: aiohttp.ClientSession, prices: DayPrices) -> None:
        """Convert a day into the table's currency (fetching the ECB's rates if need be)."""
        target = self.table.currency
        if prices.currency != target:
            try:
                rate = self._rate(prices.currency, target, prices.day)
            except PriceError:
                await self.fetch_rates(session)
                rate = self._rate(prices.currency, target, prices.day)
            prices = convert(prices, target, rate)
        self.table.add(prices)
        self.table.forget_before(prices.day - KEEP_DAYS)  # the cache keeps them all
        self.on_day(prices.day)

    def _rate(self, source: str, target: str, day: date) -> float:
        """Units of ``target`` per unit of ``source`` on ``day``.

        Raises:
            PriceError: no rate known (the ECB's is fetched by :meth:`fetch_rates`).
        """
        if source == "EUR" and self.prices.exchange_rate is not None:
            return self.prices.exchange_rate
        per_eur = {c: rate_on(self._known_rates(c), c, day, RATE_MAX_AGE) for c in (source, target)}
        per_eur["EUR"] = 1.0
        low, high = per_eur[source], per_eur[target]
        if low is None or high is None:
            raise PriceError(f"no exchange rate {source}->{target} for {day} yet")
        return high / low

    def _known_rates(self, currency: str) -> dict[date, dict[str, float]]:
        if currency == "EUR":
            return {}
        if self.cache is not None and not any(currency in r for r in self._rates.values()):
            try:
                for day, rates in self.cache.rates(currency).items():
                    self._rates.setdefault(day, {}).update(rates)
            except StateError as exc:
                _LOGGER.warning("%s", exc)
        return self._rates

    async def fetch_rates(self, session: aiohttp.ClientSession) -> None:
        """The ECB's last 90 days of reference rates (into memory and the cache).

        Raises:
            PriceError: the ECB's answer is missing or malformed.
        """
        body = await _get(session, (self.prices.urls or {}).get("ecb") or PUBLIC_URLS["ecb"], {})
        days = parse_ecb_rates(body)
        for day, rates in days.items():
            self._rates.setdefault(day, {}).update(rates)
        if self.cache is not None:
            try:
                self.cache.store_rates(days)
            except StateError as exc:
                _LOGGER.warning("%s", exc)

    def on_mqtt(self, payload: bytes, now: datetime) -> None:
        """Prices pushed on ``prices.topic``: added day by day as they are (no whole-day check)."""
        try:
            points = parse_mqtt_prices(payload, now, self.table.resolution)
        except PriceFormatError as exc:
            self._fault("mqtt", exc)
            return
        by_day: dict[date, list[PricePoint]] = {}
        for point in points:
            by_day.setdefault(point.start.astimezone(self.area.zone).date(), []).append(point)
        for day, found in by_day.items():
            known = self.table.day(day)
            merged = {p.start: p for p in (known.points if known else ())}
            merged.update({p.start: p for p in found})
            ordered = tuple(merged[s] for s in sorted(merged))
            merged_day = DayPrices(self.area.name, day, self.table.currency, ordered)
            self.table.add(merged_day)
            self._store(merged_day, "mqtt")  # the history's costs read the cache
            self.on_day(day)
        self._recovered("mqtt")


async def _get(session: aiohttp.ClientSession, url: str, query: dict[str, str]) -> bytes:
    """The body of a 200 answer, at most :data:`MAX_BODY` bytes.

    Raises:
        PriceError: a connection failure, a timeout, a status other than 200, or a body too big.
    """
    try:
        async with session.get(url, params=query or None, allow_redirects=True) as response:
            if response.status != 200:
                raise _HttpError(response.status, _safe_url(url))
            body = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                body += chunk
                if len(body) > MAX_BODY:
                    raise PriceFormatError(f"{_safe_url(url)} answers over {MAX_BODY} bytes")
            return bytes(body)
    except TimeoutError as exc:
        raise PriceError(f"{_safe_url(url)} timed out") from exc
    except aiohttp.ClientError as exc:
        raise PriceError(f"{_safe_url(url)}: {exc.__class__.__name__}") from exc


def _is_absent(exc: PriceError) -> bool:
    """The source answered, but without the day (404, an empty list, ENTSO-E's "no data")."""
    if isinstance(exc, _HttpError):
        return exc.status == 404
    return not isinstance(exc, PriceFormatError) and "timed out" not in str(exc)


def _safe_url(url: str) -> str:
    """The URL without its query (the ENTSO-E token travels in it)."""
    return url.split("?", 1)[0]


def _kind(exc: PriceError) -> str:
    if isinstance(exc, _HttpError):
        status = exc.status
        return f"http_{status}" if status in (401, 403, 404, 429) else f"http_{status // 100}xx"
    if isinstance(exc, PriceFormatError):
        return "too_large" if "bytes" in str(exc) else "malformed"
    if "timed out" in str(exc):
        return "timeout"
    return "unavailable"


class _suppress_timeout:  # noqa: N801 - used like contextlib.suppress
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, traceback: object) -> bool:
        return isinstance(value, TimeoutError)
