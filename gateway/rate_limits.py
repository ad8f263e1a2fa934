"""Rate limits at the gateway, with the `limits` library's async API.

Three budgets: every request but the health probes spends from its client IP's (`RATE_LIMIT_IP`,
checked before the token is verified, so a flood of bad tokens costs no RS256 checks); an
authenticated request also spends from its principal's, `RATE_LIMIT_WRITE` on routes where
billing calls Stripe (every POST, PATCH and DELETE, and the GETs in `STRIPE_READS`) and
`RATE_LIMIT_READ` on the rest. The strategy is the sliding window counter: one Redis round trip
and two counters per key, whatever the limit; a fixed window would let a client spend twice its
budget across a window boundary, and a moving window keeps one entry per request in Redis.

Storage is Redis when `RATE_LIMIT_STORAGE_URL` is set (one budget for all replicas), else this
process's memory. When Redis fails, the limiter fails open to per-process memory budgets for
`_STORAGE_RETRY_SECONDS`, with a warning and `gateway_rate_limit_storage_errors_total`: Redis
only guards the budget, and an outage of it must not take the API down (billing still backs off
on Stripe's own 429s), while per-process budgets still stop a single client's flood.
"""

import ipaddress
import logging
import math
import time
from collections.abc import Mapping, Sequence
from enum import StrEnum

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.errors import ErrorReason
from services.common.http import error_response

log = logging.getLogger(__name__)

REFUSED = Counter("gateway_rate_limited_total", "Requests refused 429 by a rate limit", ["budget"])
STORAGE_ERRORS = Counter(
    "gateway_rate_limit_storage_errors_total",
    "Rate limit checks that could not reach the shared storage (answered from process memory)",
)

# Probes are never limited: a kubelet's checks must not spend a budget or be refused.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
# Reads that billing answers from Stripe (route path templates): the write budget.
STRIPE_READS = frozenset({"/v1/payment-methods"})
REDIS_SCHEMES = frozenset({"redis", "rediss"})
_READ_METHODS = frozenset({"GET", "HEAD"})
# After a storage failure, answer from memory this long before trying the storage again.
_STORAGE_RETRY_SECONDS = 5.0


class Budget(StrEnum):
    IP = "ip"
    READ = "read"
    WRITE = "write"


class RateLimited(Exception):
    """A budget is spent: retry in `retry_after` seconds."""

    def __init__(self, budget: Budget, retry_after: int) -> None:
        super().__init__(f"{budget.value} rate limit exceeded")
        self.budget = budget
        self.retry_after = retry_after


def parse_limits(value: str) -> list[RateLimitItem]:
    """`"10/second;300/minute"` (the `limits` string syntax) as items; ValueError when invalid."""
    try:
        items = parse_many(value)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a rate limit such as '30/minute'") from e
    if not items:
        raise ValueError("a rate limit such as '30/minute' is required")
    return items


def route_budget(method: str, route_path: str) -> Budget:
    """The principal budget of a route: WRITE where billing calls Stripe, else READ."""
    if method in _READ_METHODS and route_path not in STRIPE_READS:
        return Budget.READ
    return Budget.WRITE


def client_key(host: str) -> str:
    """The IP budget's key: the address, or its /64 for IPv6 (one host often holds a whole /64)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if address.version == 6:
        return str(ipaddress.ip_network((address, 64), strict=False))
    return host


def _shared_storage(url: str, timeout: float) -> RedisStorage:
    scheme, _, rest = url.partition("://")
    if scheme not in REDIS_SCHEMES:
        raise ValueError("RATE_LIMIT_STORAGE_URL must be a redis:// or rediss:// URL")
    return RedisStorage(
        f"async+{scheme}://{rest}",
        implementation="redispy",
        key_prefix="tatame-gateway",
        wrap_exceptions=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )


class RateLimiter:
    """The gateway's budgets over shared storage (Redis) or this process's memory."""

    @classmethod
    def from_settings(
        cls,
        *,
        ip: str,
        read: str,
        write: str,
        storage_url: str | None,
        storage_timeout: float,
    ) -> "RateLimiter":
        budgets = {
            Budget.IP: parse_limits(ip),
            Budget.READ: parse_limits(read),
            Budget.WRITE: parse_limits(write),
        }
        return cls(budgets, storage_url=storage_url, storage_timeout=storage_timeout)

    def __init__(
        self,
        budgets: Mapping[Budget, Sequence[RateLimitItem]],
        *,
        storage_url: str | None,
        storage_timeout: float,
    ) -> None:
        self._budgets = budgets
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared = (
            SlidingWindowCounterRateLimiter(_shared_storage(storage_url, storage_timeout))
            if storage_url
            else None
        )
        self._shared_down_until = 0.0

    async def check(self, budget: Budget, key: str) -> None:
        """Spend one request of `key`'s `budget`; RateLimited when it is spent."""
        for item in self._budgets[budget]:
            try:
                frees_at = await self._spend(self._limiter(), item, budget, key)
            except StorageError:
                self._storage_failed()
                frees_at = await self._spend(self._local, item, budget, key)
            if frees_at is not None:
                REFUSED.labels(budget.value).inc()
                raise RateLimited(budget, max(1, math.ceil(frees_at - time.time())))

    @staticmethod
    async def _spend(
        limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem, budget: Budget, key: str
    ) -> float | None:
        """None when `item` allowed one more request, else when it will (a Unix time)."""
        if await limiter.hit(item, budget.value, key):
            return None
        return (await limiter.get_window_stats(item, budget.value, key)).reset_time

    def _limiter(self) -> SlidingWindowCounterRateLimiter:
        if self._shared is None or time.monotonic() < self._shared_down_until:
            return self._local
        return self._shared

    def _storage_failed(self) -> None:
        STORAGE_ERRORS.inc()
        self._shared_down_until = time.monotonic() + _STORAGE_RETRY_SECONDS
        log.warning(
            "rate limit storage unreachable; per-process limits until it answers",
            extra={"fields": {"retry_in_seconds": _STORAGE_RETRY_SECONDS}},
        )


def rate_limited_response(exc: RateLimited) -> JSONResponse:
    """429 `rate_limited` in the one error body, with `Retry-After`."""
    return error_response(
        429,
        ErrorReason.RATE_LIMITED,
        f"too many requests; retry in {exc.retry_after} s",
        {"Retry-After": str(exc.retry_after)},
    )


class ClientRateLimitMiddleware:
    """Spends the client IP's budget before routing, body reading or token checks; the health
    probes are exempt. The client is the ASGI peer (behind the Ingress, the address that
    GATEWAY_TRUSTED_PROXIES lets X-Forwarded-For give)."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in EXEMPT_PATHS:
            client = scope.get("client")
            try:
                await self.limiter.check(Budget.IP, client_key(client[0] if client else ""))
            except RateLimited as exc:
                await rate_limited_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)
