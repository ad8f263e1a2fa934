"""The official Stripe SDK, configured one way for every service: one pinned API version, and
every HTTP request to Stripe counted (Prometheus) by endpoint and outcome."""

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


class CountedHTTPXClient(stripe.HTTPXClient):
    """stripe's httpx client, counting each request it sends (retries included)."""

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        endpoint, started, outcome = stripe_endpoint(url), time.perf_counter(), "network_error"
        try:
            content, status, response_headers = await super().request_async(
                method, url, headers, post_data
            )
            outcome = _outcome(status)
            return content, status, response_headers
        finally:
            STRIPE_REQUESTS.labels(method.upper(), endpoint, outcome).inc()
            STRIPE_DURATION.labels(method.upper(), endpoint).observe(time.perf_counter() - started)


def create_stripe_client(
    *, secret_key: str, api_base: str | None, max_network_retries: int
) -> stripe.StripeClient:
    """A client for async calls; `api_base` redirects it to the local emulator in dev and tests."""
    return stripe.StripeClient(
        secret_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=max_network_retries,
        http_client=CountedHTTPXClient(timeout=20),
    )


def stripe_client_from(settings: StripeSettings) -> stripe.StripeClient:
    """The client `settings` describe."""
    return create_stripe_client(
        secret_key=settings.stripe_secret_key.get_secret_value(),
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
    )
