"""Writers of many mirror rows (the catalog sync, a resync page, a subscription change written
through with its schedule) hold them in the one order a batch of events does
(`mirror.lock_objects`), so that they wait for each other and never deadlock; a transaction
Postgres still aborts as deadlocked is run again (`db.retried_on_conflict`). On real Postgres,
with the Stripe emulator, billing over real gRPC."""

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from tatame.billing.v1 import billing_pb2

from services.billing.catalog import PRICES, sync_catalog
from services.billing.mirror import Mirror, answered_at, locked_versions
from services.billing.models import prices
from services.billing.resync.sources import SOURCES, Page, apply_page
from services.billing.subscriptions import SCHEDULES, SUBSCRIPTIONS
from services.common.db import retried_on_conflict
from tests.harness import BillingHandle
from tests.integration.billing_accounts import Account, price_id
from tests.integration.stripe_emulator_helpers import unique

PRORATE = billing_pb2.PRORATION_BEHAVIOR_CREATE_PRORATIONS
Writer = Callable[[BillingHandle, list[str]], Coroutine[None, None, None]]


async def two_prices(billing: BillingHandle) -> tuple[str, str]:
    """Two new prices of a new product, mirrored: the older, then the newer, whose id sorts after
    the older's (Stripe lists the newer first, so a writer in list order takes the higher id
    first, against the key order)."""
    stripe = billing.stripe
    product = await stripe.v1.products.create_async(params={"name": unique("Locking")})

    async def price() -> str:
        created = await stripe.v1.prices.create_async(
            params={"product": product.id, "currency": "usd", "unit_amount": 700}
        )
        return created.id

    older = await price()
    for _ in range(40):
        newer = await price()
        if newer > older:
            await sync_catalog(engine=billing.engine, stripe_client=stripe)
            return older, newer
        older = newer
    raise AssertionError("the emulator never gave a newer price a higher id")


async def sync(billing: BillingHandle, _listed: list[str]) -> None:
    await sync_catalog(engine=billing.engine, stripe_client=billing.stripe)


async def resync_page(billing: BillingHandle, listed: list[str]) -> None:
    """A resync's page of prices, in Stripe's list order."""
    source = next(s for s in SOURCES if s.mirror is PRICES)
    found = [await billing.stripe.v1.prices.retrieve_async(price) for price in listed]
    page = Page([p.to_dict() for p in found], answered_at(found[-1]), None)
    async with billing.engine.begin() as conn:
        await apply_page(conn, billing.stripe, source, page)


@asynccontextmanager
async def holding(
    billing: BillingHandle, mirror: Mirror, object_id: str
) -> AsyncIterator[AsyncConnection]:
    """A transaction holding the object as a batch of events does (`locked_versions`), until
    the block ends."""
    async with billing.engine.begin() as conn:
        await locked_versions(conn, mirror, [object_id])
        yield conn


async def blocking_another(billing: BillingHandle, holder: AsyncConnection) -> None:
    """Until another session of the database waits for a lock that `holder` holds."""
    pid = await holder.scalar(text("SELECT pg_backend_pid()"))
    async with asyncio.timeout(20):
        while True:
            async with billing.engine.connect() as conn:
                waiting = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE CAST(:pid AS integer) = ANY(pg_blocking_pids(pid))"
                    ),
                    {"pid": pid},
                )
            if waiting:
                return
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("writer", [sync, resync_page], ids=["sync-catalog", "resync-page"])
async def test_a_writer_of_many_rows_waits_for_a_batch_in_key_order_and_never_deadlocks(
    billing: BillingHandle, writer: Writer
) -> None:
    older, newer = await two_prices(billing)
    async with holding(billing, PRICES, older) as batch:
        written = asyncio.create_task(writer(billing, [newer, older]))
        await blocking_another(billing, batch)
        # The batch goes on to its next key. Had the writer taken `newer` first (list order),
        # each would wait for the other, and Postgres would abort one of them as deadlocked.
        async with asyncio.timeout(10):
            await locked_versions(batch, PRICES, [newer])
        assert not written.done()
    async with asyncio.timeout(30):
        await written
    async with billing.engine.connect() as conn:
        refetched = await conn.execute(
            select(prices.c.id, prices.c.refetched).where(prices.c.id.in_([older, newer]))
        )
    assert dict(refetched.all()) == {older: True, newer: True}


async def test_a_change_written_through_with_its_schedule_waits_for_a_batch_and_never_deadlocks(
    billing: BillingHandle, paying: Account
) -> None:
    created = await paying.subscribe("pro_monthly")
    subscription_id = created.subscription.id
    await paying.call(
        "UpdateSubscription", id=subscription_id, price="basic_monthly", proration_behavior=PRORATE
    )
    schedule = (await billing.stripe.v1.subscriptions.retrieve_async(subscription_id)).schedule
    assert isinstance(schedule, str)
    # A batch holds the schedule (its table comes before subscriptions') while the user takes
    # the downgrade back, which releases the schedule and writes both through.
    async with holding(billing, SCHEDULES, schedule) as batch:
        kept = asyncio.create_task(
            paying.call(
                "UpdateSubscription",
                id=subscription_id,
                price="pro_monthly",
                proration_behavior=PRORATE,
            )
        )
        await blocking_another(billing, batch)
        # The batch goes on to the subscription. Had the change taken the subscription first,
        # each would wait for the other, and Postgres would abort one of them as deadlocked.
        async with asyncio.timeout(10):
            await locked_versions(batch, SUBSCRIPTIONS, [subscription_id])
        assert not kept.done()
    async with asyncio.timeout(30):
        reply = await kept
    assert reply.subscription.price_id == await price_id(billing, "pro_monthly")
    assert not reply.subscription.scheduled_price_id


async def test_a_transaction_aborted_to_break_a_deadlock_is_run_again_and_commits(
    billing: BillingHandle,
) -> None:
    first, second = (f"deadlock-test:{unique('key')}" for _ in range(2))
    lock = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
    runs = 0
    holding_first = asyncio.Event()

    async def crossing() -> str:
        """Takes `first`, then `second`: against `other`, only on its first run."""
        nonlocal runs
        runs += 1
        async with billing.engine.begin() as conn:
            await conn.execute(lock, {"key": first})
            holding_first.set()
            await conn.execute(lock, {"key": second})
        return "committed"

    async with billing.engine.begin() as other:
        await other.execute(lock, {"key": second})
        crossed = asyncio.create_task(retried_on_conflict(crossing))
        await holding_first.wait()
        await blocking_another(billing, other)  # `crossing` waits for `second`
        # Half of Postgres's deadlock_timeout later, this waits for `first`: `crossing`, which
        # waited first, runs its deadlock check first (however loaded the machine), finds the
        # cycle, and is aborted.
        timeout_ms = await other.scalar(
            text("SELECT setting::int FROM pg_settings WHERE name = 'deadlock_timeout'")
        )
        await asyncio.sleep(timeout_ms / 2000)
        await other.execute(lock, {"key": first})
    async with asyncio.timeout(30):
        assert await crossed == "committed"
    assert runs == 2
