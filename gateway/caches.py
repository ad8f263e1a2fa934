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


def rendered_plans(body: bytes, expires_at: float) -> RenderedPlans:
    """`body` with its ETag (a digest of the body)."""
    return RenderedPlans(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', expires_at)


class PlansCache:
    """The rendered plans responses, one per currency asked for ("" for none), each refreshed
    at most once per `ttl` seconds. Only a currency the catalog sells in is ever stored (billing
    refuses the others), so the entries stay few."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._current: dict[str, RenderedPlans] = {}
        self._lock = asyncio.Lock()

    async def get(self, fetch: Fetch, currency: str = "") -> RenderedPlans:
        current = self._current.get(currency)
        if current is not None and current.expires_at > time.monotonic():
            return current
        async with self._lock:  # one refresh at a time; the others reuse its result
            current = self._current.get(currency)
            if current is None or current.expires_at <= time.monotonic():
                current = rendered_plans(await fetch(), time.monotonic() + self.ttl)
                self._current[currency] = current
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
