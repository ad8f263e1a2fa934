"""When Stripe's rate limiter answers 429, billing backs off: the request answers 503 with
Retry-After, and nothing more goes to Stripe until the window has passed (the emulator answers
429 as Stripe does while `/_testing/rate_limit` says so)."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.stripe_target import EMULATOR_KEY

pytestmark = pytest.mark.emulator


@pytest.fixture
async def stripe_429s(stripe_emulator: str) -> AsyncIterator[httpx.AsyncClient]:
    """The emulator's `/_testing/rate_limit`, set back to 0 after the test."""
    key = {"Authorization": f"Bearer {EMULATOR_KEY}"}
    async with httpx.AsyncClient(base_url=f"{stripe_emulator}/_testing", headers=key) as testing:
        yield testing
        (await testing.post("/rate_limit", data={"count": "0"})).raise_for_status()


async def still_to_refuse(testing: httpx.AsyncClient) -> int:
    remaining: int = (await testing.get("/rate_limit")).json()["remaining"]
    return remaining


def assert_unavailable_for_a_while(response: httpx.Response) -> int:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "unavailable"
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


async def test_stripe_429_is_503_with_retry_after_and_nothing_reaches_stripe_meanwhile(
    client: httpx.AsyncClient, new_user, stripe_429s: httpx.AsyncClient
) -> None:
    user = await new_user()
    held_back = REGISTRY.get_sample_value("stripe_requests_held_back_total") or 0
    (await stripe_429s.post("/rate_limit", data={"count": "5"})).raise_for_status()

    first = await client.post("/v1/setup-intents", headers=user.headers)
    window = assert_unavailable_for_a_while(first)
    again = await client.post("/v1/setup-intents", headers=user.headers)
    assert_unavailable_for_a_while(again)
    # Stripe saw the first request only; the second was answered without calling it.
    assert await still_to_refuse(stripe_429s) == 4
    assert REGISTRY.get_sample_value("stripe_requests_held_back_total") == held_back + 1

    (await stripe_429s.post("/rate_limit", data={"count": "0"})).raise_for_status()
    await asyncio.sleep(window)
    after = await client.post("/v1/setup-intents", headers=user.headers)
    assert after.status_code == 201, after.text


async def test_a_lock_timeout_is_retried_later_without_backing_off_from_stripe(
    client: httpx.AsyncClient, new_user, stripe_429s: httpx.AsyncClient
) -> None:
    user = await new_user()
    data = {"count": "1", "code": "lock_timeout"}
    (await stripe_429s.post("/rate_limit", data=data)).raise_for_status()
    busy = await client.post("/v1/setup-intents", headers=user.headers)
    assert assert_unavailable_for_a_while(busy) == 1
    # One object was busy; Stripe's rate is fine: the next call goes through at once.
    after = await client.post("/v1/setup-intents", headers=user.headers)
    assert after.status_code == 201, after.text
