"""The official Stripe SDK, configured one way for every service: one pinned API version, every
HTTP request to Stripe counted (Prometheus) by endpoint and outcome, and a backoff when Stripe's
rate limiter answers 429.

The SDK retries a 429 only when Stripe says `Stripe-Should-Retry: true` (a lock timeout on one
object); its rate limiter's 429 (`code: rate_limit`) is raised at once, and nothing stops the
next call from hitting Stripe again. `StripeBackoff` does: after such a 429, this process sends
Stripe nothing for a window (`STRIPE_RATE_LIMIT_BACKOFF_SECONDS`, doubling while 429s continue,
up to `STRIPE_RATE_LIMIT_BACKOFF_MAX_SECONDS`, or Stripe's `Retry-After` when longer) and every
call in it fails fast with `StripeBackingOff`, which says when to try again.
"""

import json
import re
import time
from collections.abc import Mapping
from typing import Any

import stripe
from prometheus_client import Counter, Histogram

from services.common.settings import StripeSettings

# Every request names this version, so Stripe's answers keep one shape whatever the account default.
STRIPE_API_VERSION = "2026-10-28.endive"

STRIPE_REQUESTS = Counter(
    "stripe_requests_total",
    "HTTP requests to Stripe (each retry counts), by endpoint and outcome",
    ["method", "endpoint", "outcome"],
)
STRIPE_DURATION = Histogram(
    "stripe_request_duration_seconds",
    "Latency of HTTP requests to Stripe",
    ["method", "endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
# A path segment that is an object id (`cus_NffrFeUfNV2Hib`, `sub_sched_1Mr…`): a prefix, an
# underscore, and a tail with a capital or a digit, which Stripe's ids have and its nouns
# (`payment_methods`, `create_preview`) lack.
_ID_SEGMENT = re.compile(r"/[a-z]+_[A-Za-z0-9_]*[A-Z0-9][A-Za-z0-9_]*(?=/|$)")


def stripe_endpoint(url: str) -> str:
    """The path template of a Stripe API URL: `/v1/customers/{id}/payment_methods`."""
    path = url.split("://", 1)[-1].split("?", 1)[0]
    path = path[path.find("/") :] if "/" in path else "/"
    return _ID_SEGMENT.sub("/{id}", path)


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status == 429:
        return "rate_limited"
    return "client_error" if status < 500 else "server_error"


RATE_LIMITED = Counter("stripe_rate_limited_total", "Stripe's 429 answers, by error code", ["code"])
HELD_BACK = Counter(
    "stripe_requests_held_back_total", "Requests not sent to Stripe while backing off its 429"
)


class StripeBackingOff(stripe.RateLimitError):
    """Stripe's rate limiter refused us: no request goes to Stripe for `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("Stripe's rate limit: backing off", http_status=429, code="rate_limit")
        self.retry_after = retry_after


class StripeBackoff:
    """The backoff window of one process's Stripe client."""

    def __init__(self, *, base_seconds: float, max_seconds: float) -> None:
        self._base = base_seconds
        self._max = max_seconds
        self._window = 0.0  # the last window's length; 0 after a success
        self._until = 0.0  # monotonic

    def check(self) -> None:
        """Raise StripeBackingOff inside the window."""
        left = self._until - time.monotonic()
        if left > 0:
            HELD_BACK.inc()
            raise StripeBackingOff(left)

    def refused(self, retry_after_header: str | None) -> StripeBackingOff:
        """Open a window after a 429 (twice the last one, within bounds); its error."""
        self._window = min(self._max, self._window * 2 if self._window else self._base)
        stated = (
            float(retry_after_header)
            if retry_after_header and retry_after_header.isdigit()
            else 0.0
        )
        window = max(self._window, min(stated, self._max))
        self._until = time.monotonic() + window
        return StripeBackingOff(window)

    def succeeded(self) -> None:
        self._window = 0.0


def _error_code(content: bytes) -> str | None:
    try:
        error = json.loads(content)["error"]
        return str(error["code"])
    except (ValueError, KeyError, TypeError):
        return None


class StripeHTTPXClient(stripe.HTTPXClient):
    """The SDK's HTTPX client, counting each request it sends (retries included), behind a
    StripeBackoff."""

    def __init__(self, *, backoff: StripeBackoff, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backoff = backoff

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        self.backoff.check()
        endpoint, started, outcome = stripe_endpoint(url), time.perf_counter(), "network_error"
        try:
            content, status, response_headers = await super().request_async(
                method, url, headers, post_data
            )
            outcome = _outcome(status)
        finally:
            STRIPE_REQUESTS.labels(method.upper(), endpoint, outcome).inc()
            STRIPE_DURATION.labels(method.upper(), endpoint).observe(time.perf_counter() - started)
        if status == 429:
            code = _error_code(content) or "unknown"
            RATE_LIMITED.labels(code).inc()
            # A lock timeout is one object's contention, not our rate: the SDK retries it.
            if code != "lock_timeout":
                raise self.backoff.refused(response_headers.get("retry-after"))
        elif status < 500:
            self.backoff.succeeded()
        return content, status, response_headers


def create_stripe_client(
    *,
    secret_key: str,
    api_base: str | None,
    max_network_retries: int,
    backoff_seconds: float = 1.0,
    backoff_max_seconds: float = 30.0,
) -> stripe.StripeClient:
    """A client for async calls; `api_base` redirects it to the local emulator in dev and tests."""
    return stripe.StripeClient(
        secret_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=max_network_retries,
        http_client=StripeHTTPXClient(
            backoff=StripeBackoff(base_seconds=backoff_seconds, max_seconds=backoff_max_seconds),
            timeout=20,
        ),
    )


def stripe_client_from(settings: StripeSettings) -> stripe.StripeClient:
    """The client `settings` describe."""
    return create_stripe_client(
        secret_key=settings.stripe_secret_key.get_secret_value(),
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
        backoff_seconds=settings.stripe_rate_limit_backoff_seconds,
        backoff_max_seconds=settings.stripe_rate_limit_backoff_max_seconds,
    )
