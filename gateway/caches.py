"""The gateway's caches of rendered billing answers, each process its own: the public plans, and
customers by principal. Both take the fetch to run on a miss, so they know nothing of billing."""

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import cachetools

Fetch = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class RenderedPlans:
    body: bytes
    etag: str
    expires_at: float


class PlansCache:
    """The rendered plans response, refreshed at most once per `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._current: RenderedPlans | None = None
        self._lock = asyncio.Lock()

    async def get(self, fetch: Fetch) -> RenderedPlans:
        current = self._current
        if current is not None and current.expires_at > time.monotonic():
            return current
        async with self._lock:  # one refresh at a time; the others reuse its result
            current = self._current
            if current is None or current.expires_at <= time.monotonic():
                body = await fetch()
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                current = RenderedPlans(body, etag, time.monotonic() + self.ttl)
                self._current = current
            return current


class RenderedCustomers:
    """Rendered customers by principal for `ttl` seconds. Concurrent misses for one principal
    share one fetch: when an entry expires under load, the requests in flight for it would
    otherwise all call billing at once."""

    def __init__(self, ttl: float) -> None:
        self._rendered: cachetools.TTLCache[str, bytes] = cachetools.TTLCache(
            maxsize=50_000, ttl=ttl
        )
        self._fetching: dict[str, asyncio.Future[bytes]] = {}

    async def get(self, key: str, fetch: Fetch) -> bytes:
        body = self._rendered.get(key)
        if body is not None:
            return body
        pending = self._fetching.get(key)
        if pending is None:
            pending = asyncio.ensure_future(fetch())
            self._fetching[key] = pending
            pending.add_done_callback(lambda _: self._fetching.pop(key, None))
        # Shielded: a caller that goes away does not cancel the others' answer.
        body = await asyncio.shield(pending)
        self._rendered[key] = body
        return body

    def put(self, key: str, body: bytes) -> None:
        self._rendered[key] = body

    def drop(self, key: str) -> None:
        """Forget the principal's customer (erased)."""
        self._rendered.pop(key, None)
