"""The gateway's rendered-customer cache: one billing call per principal per miss, however many
requests are waiting for it."""

import asyncio

import pytest

from gateway.caches import RenderedCustomers


async def test_concurrent_misses_for_one_principal_share_one_fetch() -> None:
    cache = RenderedCustomers(ttl=60)
    calls = 0

    async def fetch() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return b'{"id": "cus_1"}'

    bodies = await asyncio.gather(*(cache.get("user:a", fetch) for _ in range(64)))
    assert bodies == [b'{"id": "cus_1"}'] * 64
    assert calls == 1
    assert await cache.get("user:a", fetch) == b'{"id": "cus_1"}'
    assert calls == 1
    await cache.get("user:b", fetch)
    assert calls == 2  # another principal, its own fetch


async def test_a_failed_fetch_fails_its_waiters_and_is_not_cached() -> None:
    cache = RenderedCustomers(ttl=60)
    answers: list[bytes | Exception] = [LookupError("no customer yet"), b'{"id": "cus_2"}']

    async def fetch() -> bytes:
        await asyncio.sleep(0.01)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    results = await asyncio.gather(
        *(cache.get("user:c", fetch) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results)
    assert await cache.get("user:c", fetch) == b'{"id": "cus_2"}'


async def test_a_waiter_that_goes_away_does_not_cancel_the_others() -> None:
    cache = RenderedCustomers(ttl=60)

    async def fetch() -> bytes:
        await asyncio.sleep(0.05)
        return b"{}"

    first = asyncio.ensure_future(cache.get("user:d", fetch))
    second = asyncio.ensure_future(cache.get("user:d", fetch))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == b"{}"
    with pytest.raises(asyncio.CancelledError):
        await first
