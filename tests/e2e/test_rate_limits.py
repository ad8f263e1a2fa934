"""Rate limits across replicas: two real gateway processes (`python -m gateway`) sharing one
real Redis, in front of the session's billing, as two pods behind the Ingress are."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import cycle

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from tatame_devstack.ports import free_port

from tests.e2e.gateway_client import AUTHORIZED_PARTY, ISSUER, TokenIssuer
from tests.harness import BillingHandle

IP_LIMIT, READ_LIMIT, WRITE_LIMIT = 12, 8, 3


@contextmanager
def gateway_processes(env: dict[str, str], count: int) -> Iterator[list[str]]:
    """`count` gateways (`python -m gateway`) on free loopback ports, stopped with SIGTERM; their URLs."""
    ports = [free_port() for _ in range(count)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env={**os.environ, **env, "GATEWAY_PORT": str(p), "METRICS_PORT": "0"},
        )
        for p in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        # Generous: a loaded CI machine has taken 20 s to import and start one.
        deadline = time.monotonic() + 90
        for process, url in zip(processes, urls, strict=True):
            while True:
                assert process.poll() is None, "a gateway exited while starting"
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "a gateway did not start"
                    time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def replicas(billing: BillingHandle, issuer: TokenIssuer, redis_url: str) -> Iterator[list[str]]:
    """Two gateways sharing `redis_url`'s budgets, trusting 127.0.0.1 (the tests) as the proxy
    whose X-Forwarded-For names the client."""
    public_pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    env = {
        "TATAME_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "GATEWAY_HOST": "127.0.0.1",
        "BILLING_TARGET": billing.target,
        "GATEWAY_SERVICE_SECRET": billing.gateway_secret,
        "CLERK_ISSUER": ISSUER,
        "CLERK_JWT_KEY": public_pem.decode(),
        "CLERK_AUTHORIZED_PARTIES": AUTHORIZED_PARTY,
        "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_STORAGE_URL": redis_url,
        "RATE_LIMIT_IP": f"{IP_LIMIT}/minute",
        "RATE_LIMIT_READ": f"{READ_LIMIT}/minute",
        "RATE_LIMIT_WRITE": f"{WRITE_LIMIT}/minute",
    }
    with gateway_processes(env, 2) as urls:
        yield urls


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["request_id"] == response.headers["X-Request-ID"]


def client_at(ip: str) -> dict[str, str]:
    """What the Ingress adds: the client's address at the right of X-Forwarded-For."""
    return {"X-Forwarded-For": ip}


async def test_a_burst_from_one_user_meets_429_on_every_replica_while_another_user_is_unaffected(
    replicas: list[str], issuer: TokenIssuer
) -> None:
    burster = {**issuer.headers("user_rl_burst"), **client_at("203.0.113.1")}
    bystander = {**issuer.headers("user_rl_calm"), **client_at("203.0.113.2")}
    async with httpx.AsyncClient(timeout=10) as http:
        # Half the burst through each replica: only a budget they share refuses the next one.
        urls = cycle(replicas)
        for _ in range(READ_LIMIT):
            response = await http.get(f"{next(urls)}/v1/entitlements", headers=burster)
            assert response.status_code == 200, response.text
        for url in replicas:
            assert_rate_limited(await http.get(f"{url}/v1/entitlements", headers=burster))
            calm = await http.get(f"{url}/v1/entitlements", headers=bystander)
            assert calm.status_code == 200, calm.text


async def test_routes_that_call_stripe_have_the_stricter_budget(
    replicas: list[str], issuer: TokenIssuer
) -> None:
    user = {**issuer.headers("user_rl_writer"), **client_at("203.0.113.3")}
    body = {"email": "writer@example.com", "name": "Ana"}
    async with httpx.AsyncClient(timeout=10) as http:
        urls = cycle(replicas)
        statuses = [
            (await http.post(f"{next(urls)}/v1/customer", json=body, headers=user)).status_code
            for _ in range(WRITE_LIMIT)
        ]
        assert statuses == [201] + [200] * (WRITE_LIMIT - 1)
        assert_rate_limited(await http.post(f"{next(urls)}/v1/customer", json=body, headers=user))
        # A read that calls Stripe spends the same budget; one that does not, its own.
        assert_rate_limited(await http.get(f"{next(urls)}/v1/payment-methods", headers=user))
        read = await http.get(f"{next(urls)}/v1/customer", headers=user)
        assert read.status_code == 200, read.text


async def test_each_client_address_has_a_budget_and_the_probes_are_exempt(
    replicas: list[str],
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        urls = cycle(replicas)
        for _ in range(IP_LIMIT):
            response = await http.get(f"{next(urls)}/v1/plans", headers=client_at("203.0.113.4"))
            assert response.status_code == 200, response.text
        assert_rate_limited(
            await http.get(f"{replicas[0]}/v1/plans", headers=client_at("203.0.113.4"))
        )
        # Only the address the trusted proxy appended counts: what the client wrote before it
        # in X-Forwarded-For does not buy a fresh budget.
        spoofed = client_at("198.51.100.7, 203.0.113.4")
        assert_rate_limited(await http.get(f"{replicas[1]}/v1/plans", headers=spoofed))
        other = await http.get(f"{replicas[1]}/v1/plans", headers=client_at("203.0.113.5"))
        assert other.status_code == 200, other.text
        for url in replicas:
            for probe in ("/healthz", "/readyz"):
                answer = await http.get(f"{url}{probe}", headers=client_at("203.0.113.4"))
                assert answer.status_code == 200, answer.text
