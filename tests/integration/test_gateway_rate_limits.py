"""The gateway's rate limiter in process: which budget each route spends, whose address counts,
and what happens when Redis does not answer. (Across replicas sharing a real Redis:
tests/e2e/test_rate_limits.py.)"""

import logging
import secrets
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from tatame_devstack.ports import free_port

from gateway.app import create_app
from gateway.rate_limits import (
    STRIPE_READS,
    Budget,
    RateLimited,
    RateLimiter,
    client_key,
    parse_limits,
    route_budget,
)
from gateway.settings import GatewaySettings

PEM = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"


def settings(**overrides: object) -> GatewaySettings:
    values: dict[str, Any] = {
        "tatame_env": "test",
        "gateway_service_secret": secrets.token_urlsafe(32),
        "clerk_issuer": "https://clerk.tatame.test",
        "clerk_jwt_key": PEM,
        "rate_limit_ip": "2/minute",
    }
    return GatewaySettings(**{**values, **overrides})


def test_every_route_that_can_call_stripe_spends_the_write_budget() -> None:
    paths = create_app(settings()).openapi()["paths"]
    budgets = {
        (method.upper(), path): route_budget(method.upper(), path)
        for path, operations in paths.items()
        for method in operations
    }
    assert {path for _, path in budgets} >= STRIPE_READS, "a Stripe read was renamed"
    for (method, path), budget in budgets.items():
        reads_the_mirror = method == "GET" and path not in STRIPE_READS
        assert budget is (Budget.READ if reads_the_mirror else Budget.WRITE), (method, path)
    assert budgets["GET", "/v1/payment-methods"] is Budget.WRITE
    for path, operations in paths.items():
        for operation in operations.values():
            limited = path not in ("/healthz", "/readyz")
            assert ("429" in operation["responses"]) is limited, (path, "documents its 429")
    assert budgets["POST", "/v1/subscriptions/{subscription_id}/preview"] is Budget.WRITE


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("192.0.2.7") == "192.0.2.7"


async def burst(app: object, peer: str, forwarded_for: list[str]) -> list[int]:
    """Statuses of one request per X-Forwarded-For value, all from the TCP peer `peer`."""
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        return [
            (await http.get("/no-such-route", headers={"X-Forwarded-For": ip})).status_code
            for ip in forwarded_for
        ]


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    three_clients = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    # No trusted proxy: the header is the client's own claim; the peer's budget is spent.
    assert await burst(create_app(settings()), "198.51.100.9", three_clients) == [404, 404, 429]
    # Behind a trusted proxy: three clients, three budgets (and unknown routes spend them too).
    trusting = create_app(settings(gateway_trusted_proxies="198.51.100.0/24"))
    assert await burst(trusting, "198.51.100.9", three_clients) == [404, 404, 404]
    assert await burst(trusting, "198.51.100.9", ["203.0.113.1"]) == [404]
    assert await burst(trusting, "198.51.100.9", ["203.0.113.1"]) == [429]


async def test_an_unreachable_redis_fails_open_to_this_process_budgets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors_before = REGISTRY.get_sample_value("gateway_rate_limit_storage_errors_total") or 0
    limiter = RateLimiter(
        {Budget.WRITE: parse_limits("2/minute")},
        storage_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        storage_timeout=0.25,
    )
    with caplog.at_level(logging.WARNING, logger="gateway.rate_limits"):
        await limiter.check(Budget.WRITE, "user:user_a")
        await limiter.check(Budget.WRITE, "user:user_a")
        with pytest.raises(RateLimited) as refused:
            await limiter.check(Budget.WRITE, "user:user_a")
        await limiter.check(Budget.WRITE, "user:user_b")
    assert 1 <= refused.value.retry_after <= 60
    errors = REGISTRY.get_sample_value("gateway_rate_limit_storage_errors_total") or 0
    # The first check found Redis down; the next ones, within the retry interval, skip it.
    assert errors == errors_before + 1
    assert "rate limit storage unreachable" in caplog.text
