"""WatchBilling against the real billing server and Postgres: a committed write to a
principal's billing state (any statement: the triggers of migration 0012) is streamed to that
principal's watchers only, a rolled-back one never is, and only the gateway may watch."""

import asyncio
import secrets

import grpc
import psycopg
import pytest
from tatame.billing.v1 import billing_pb2

from tests.harness import BillingHandle
from tests.integration.billing_accounts import RELAY, Account, Stub

Watch = grpc.aio.UnaryStreamCall[billing_pb2.WatchBillingRequest, billing_pb2.WatchBillingResponse]


def watch(account: Account, since: int | None = None) -> Watch:
    call: Watch = account.stub.WatchBilling(
        billing_pb2.WatchBillingRequest(since_version=since), metadata=account.metadata, timeout=30
    )
    return call


async def next_answer(call: Watch) -> billing_pb2.WatchBillingResponse:
    reply = await asyncio.wait_for(call.read(), timeout=10)
    assert isinstance(reply, billing_pb2.WatchBillingResponse)
    return reply


async def write_customer(database_url: str, account: Account, *, commit: bool = True) -> None:
    """One statement on the account's customer row (inserted the first time), as billing's
    mirror writes it; rolled back unless `commit`."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(
            "INSERT INTO billing.customers (principal, stripe_customer_id, email, name)"
            " VALUES (%s, %s, %s, 'Ana')"
            " ON CONFLICT (principal) DO UPDATE SET name = EXCLUDED.name || '.'",
            (account.principal.key, "cus_live_" + secrets.token_hex(6), account.email),
        )
        if not commit:
            await conn.rollback()


@pytest.fixture
def accounts(billing: BillingHandle, stub: Stub) -> tuple[Account, Account]:
    return Account(billing, stub), Account(billing, stub)


async def test_a_committed_change_reaches_its_principals_watchers_only(
    accounts: tuple[Account, Account], billing_database_url: str
) -> None:
    ana, bea = accounts
    await write_customer(billing_database_url, ana)
    ana_watch, bea_watch = watch(ana), watch(bea)
    first = await next_answer(ana_watch)
    assert first.version == 1  # the insert of her customer
    assert first.HasField("overview")
    assert (await next_answer(bea_watch)).version == 0  # nothing of hers yet

    await write_customer(billing_database_url, ana, commit=False)  # never published
    await write_customer(billing_database_url, ana)
    changed = await next_answer(ana_watch)
    assert changed.version == 2  # the rolled-back write bumped nothing and woke no one
    assert changed.HasField("overview")

    # Bea's first change is the next thing her stream says: none of Ana's reached it.
    await write_customer(billing_database_url, bea)
    assert (await next_answer(bea_watch)).version == 1
    ana_watch.cancel()
    bea_watch.cancel()


async def test_a_watch_from_the_version_it_already_has_starts_without_the_overview(
    accounts: tuple[Account, Account], billing_database_url: str
) -> None:
    ana, _ = accounts
    await write_customer(billing_database_url, ana)
    current = watch(ana, since=1)
    unchanged = await next_answer(current)
    assert unchanged.version == 1
    assert not unchanged.HasField("overview")
    current.cancel()
    older = watch(ana, since=0)
    assert (await next_answer(older)).HasField("overview")
    older.cancel()


async def test_only_the_gateway_may_watch(accounts: tuple[Account, Account]) -> None:
    ana, _ = accounts
    relay = ana.stub.WatchBilling(
        billing_pb2.WatchBillingRequest(), metadata=RELAY.metadata(ana.principal), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await relay.read()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    anonymous = ana.stub.WatchBilling(billing_pb2.WatchBillingRequest(), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
        await anonymous.read()
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
