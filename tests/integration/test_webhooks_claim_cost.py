"""The relay's claim costs O(batch), whatever Postgres's statistics say and however large the backlog.

The inbox's normal state is nothing pending, and that is what autovacuum's ANALYZE sees; a burst
(month-start renewals, Stripe redelivering after an outage) then leaves a large backlog that the
statistics do not know about until 10 % of the table has changed.
"""

import json
from collections.abc import AsyncIterator

import psycopg
import pytest

from services.webhooks import inbox
from tests.harness import migrated_database

BATCH = 64
CUSTOMERS = 5_000
EVENTS_PER_CUSTOMER = 4  # a 20,000-event backlog
DELIVERED = 2_000


@pytest.fixture
def database_url(postgres_admin_url: str) -> str:
    return migrated_database(postgres_admin_url, "webhooks")


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        yield conn


async def insert_events(
    conn: psycopg.AsyncConnection, *, prefix: str, customers: int, per_customer: int, state: str
) -> None:
    """One multi-row INSERT: `per_customer` events for each customer, a customer's consecutive."""
    await conn.execute(
        """
        INSERT INTO webhooks.events
            (id, type, created, livemode, customer_id, ordering_key, payload, source, state)
        SELECT %(prefix)s || c || '_' || k, 'invoice.paid',
               timestamptz '2026-12-01 00:00:00+00' + make_interval(secs => c * %(per)s + k),
               false, 'cus_' || %(prefix)s || c, 'cus_' || %(prefix)s || c,
               jsonb_build_object('id', %(prefix)s || c || '_' || k), 'webhook', %(state)s
        FROM generate_series(1, %(customers)s) c, generate_series(1, %(per)s) k
        """,
        {"prefix": prefix, "customers": customers, "per": per_customer, "state": state},
    )


@pytest.mark.parametrize("analysed", ["before the backlog", "with the backlog"])
async def test_a_claim_from_a_20000_event_backlog_costs_o_batch_whatever_analyze_saw(
    conn: psycopg.AsyncConnection, analysed: str
) -> None:
    await insert_events(conn, prefix="old", customers=DELIVERED, per_customer=1, state="delivered")
    await conn.execute("ANALYZE webhooks.events")  # the normal state: nothing pending
    await insert_events(
        conn, prefix="new", customers=CUSTOMERS, per_customer=EVENTS_PER_CUSTOMER, state="pending"
    )
    if analysed == "with the backlog":
        await conn.execute("ANALYZE webhooks.events")

    async with conn.transaction(force_rollback=True):
        await conn.execute(inbox.CLAIM_PLAN_SETTINGS)
        cursor = await conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + inbox.CLAIM_SQL,
            (BATCH,),
        )
        [[[explained]]] = await cursor.fetchall()
    plan = explained["Plan"]
    buffers = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    assert plan["Actual Rows"] == BATCH
    assert buffers <= 50 * BATCH, json.dumps(explained, indent=1)
    assert explained["Execution Time"] < 1000

    async with conn.transaction(force_rollback=True):
        claimed = await inbox.claim_due(conn, limit=BATCH)
    # One per customer, each its customer's oldest: the first customers' first events.
    assert sorted(e.id for e in claimed) == sorted(f"new{c}_1" for c in range(1, BATCH + 1))
