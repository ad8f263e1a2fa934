"""The relay's claim costs O(batch), whatever Postgres's statistics say and whatever the backlog's
shape: large, analysed or not, or mostly blocked behind heads in backoff (a billing outage).

The inbox's normal state is nothing pending, and that is what autovacuum's ANALYZE sees; a burst
(month-start renewals, Stripe redelivering after an outage) then leaves a large backlog that the
statistics do not know about until 10 % of the table has changed. The pending events are stored
through the receiver's own insert (inbox.insert_events), which keeps the head-of-line table.
"""

import json
from collections.abc import AsyncIterator

import psycopg
import pytest

from services.webhooks import inbox
from services.webhooks.stripe_events import InboundEvent
from tests.harness import migrated_database

BATCH = 64
CUSTOMERS = 5_000
EVENTS_PER_CUSTOMER = 4  # a 20,000-event backlog
DELIVERED = 2_000
BASE = 1_796_083_200  # 2026-12-01 00:00:00 UTC


@pytest.fixture
def database_url(postgres_admin_url: str) -> str:
    return migrated_database(postgres_admin_url, "webhooks")


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """A connection to an inbox whose statistics only the test's own ANALYZE changes (no
    autovacuum run in the middle of a test: each case sees the statistics it names)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for table in ("webhooks.events", "webhooks.heads"):
            await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        yield conn


async def insert_delivered(conn: psycopg.AsyncConnection, count: int) -> None:
    """The inbox's history: delivered events, one per customer, nothing pending."""
    await conn.execute(
        """
        INSERT INTO webhooks.events
            (id, type, created, livemode, customer_id, ordering_key, payload, source, state)
        SELECT 'old' || c, 'invoice.paid', to_timestamp(%(base)s + c), false,
               'cus_old' || c, 'cus_old' || c, jsonb_build_object('id', 'old' || c), 'webhook',
               'delivered'
        FROM generate_series(1, %(count)s) c
        """,
        {"base": BASE, "count": count},
    )


async def insert_pending(
    conn: psycopg.AsyncConnection, *, customers: int, per_customer: int
) -> None:
    """`per_customer` events for each customer, a customer's consecutive in `created`, stored as
    the receiver stores them (batches of 500)."""
    events = [
        InboundEvent(
            id=f"new{c}_{k}",
            type="invoice.paid",
            created=BASE + c * per_customer + k,
            api_version=None,
            livemode=False,
            object_id=f"in_{c}_{k}",
            customer_id=f"cus_new{c}",
            payload=json.dumps({"id": f"new{c}_{k}"}),
        )
        for c in range(1, customers + 1)
        for k in range(1, per_customer + 1)
    ]
    for start in range(0, len(events), 500):
        await inbox.insert_events(conn, events[start : start + 500], source="webhook")


async def explained_claim(conn: psycopg.AsyncConnection) -> dict:
    async with conn.transaction(force_rollback=True):
        await conn.execute(inbox.CLAIM_PLAN_SETTINGS)
        cursor = await conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + inbox.CLAIM_SQL, (BATCH,)
        )
        [[[explained]]] = await cursor.fetchall()
    return explained


def buffers_of(explained: dict) -> int:
    plan = explained["Plan"]
    return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]


@pytest.mark.parametrize("analysed", ["before the backlog", "with the backlog"])
async def test_a_claim_from_a_20000_event_backlog_costs_o_batch_whatever_analyze_saw(
    conn: psycopg.AsyncConnection, analysed: str
) -> None:
    await insert_delivered(conn, DELIVERED)
    await conn.execute("ANALYZE webhooks.events, webhooks.heads")  # the normal state
    await insert_pending(conn, customers=CUSTOMERS, per_customer=EVENTS_PER_CUSTOMER)
    if analysed == "with the backlog":
        await conn.execute("ANALYZE webhooks.events, webhooks.heads")

    explained = await explained_claim(conn)
    assert explained["Plan"]["Actual Rows"] == BATCH
    assert buffers_of(explained) <= 50 * BATCH, json.dumps(explained, indent=1)
    assert explained["Execution Time"] < 1000

    async with conn.transaction(force_rollback=True):
        claimed = await inbox.claim_due(conn, limit=BATCH)
    # One per customer, each its customer's oldest.
    assert len(claimed) == BATCH
    assert all(e.id.endswith("_1") for e in claimed)
    assert len({e.id.split("_")[0] for e in claimed}) == BATCH


@pytest.mark.parametrize(
    "analysed",
    [
        "before the outage",
        "during the outage",
        # Autovacuum reaches the small heads table long before the events: the heads are known to
        # be many and due later while the statistics still say that nothing is pending.
        "heads only, during the outage",
    ],
)
async def test_a_claim_costs_o_batch_when_most_of_a_20000_event_backlog_waits_behind_heads_in_backoff(
    conn: psycopg.AsyncConnection, analysed: str
) -> None:
    """Billing is down: every customer's head failed and waits its backoff, and everything else
    waits behind a head. A claim must not read the blocked events, or an empty claim per batch
    and per poll keeps Postgres busy for the whole outage."""
    await insert_delivered(conn, DELIVERED)
    await conn.execute("ANALYZE webhooks.events, webhooks.heads")
    await insert_pending(conn, customers=CUSTOMERS, per_customer=EVENTS_PER_CUSTOMER)
    # Every head failed (a call that failed as a whole), recorded as the relay records it.
    heads = [f"new{c}_1" for c in range(1, CUSTOMERS + 1)]
    async with conn.transaction():
        await conn.execute(inbox.CLAIM_PLAN_SETTINGS)  # set by the claim in the relay's batches
        await inbox.record(
            conn,
            [
                inbox.Delivery(
                    h, "pending", error="UNAVAILABLE: down", retry_in=60, call_failed=True
                )
                for h in heads
            ],
        )
    if analysed == "during the outage":
        await conn.execute("ANALYZE webhooks.events, webhooks.heads")
    elif analysed == "heads only, during the outage":
        await conn.execute("ANALYZE webhooks.heads")

    # The first claim after the outage's record steps over the heads' old row versions (and
    # marks them dead in the index); every later one reads a few pages.
    explained = await explained_claim(conn)
    assert explained["Plan"]["Actual Rows"] == 0
    assert buffers_of(explained) <= 4 * BATCH, json.dumps(explained, indent=1)
    explained = await explained_claim(conn)
    assert explained["Plan"]["Actual Rows"] == 0
    assert buffers_of(explained) <= 50, json.dumps(explained, indent=1)

    # Another customer's event arrives: due, and found at once past the 20,000 blocked.
    await insert_pending(conn, customers=1, per_customer=1)  # new1_1 exists: a duplicate
    fresh = InboundEvent(
        id="fresh",
        type="invoice.paid",
        created=BASE,
        api_version=None,
        livemode=False,
        object_id="in_fresh",
        customer_id="cus_fresh",
        payload="{}",
    )
    await inbox.insert_events(conn, [fresh], source="webhook")
    explained = await explained_claim(conn)
    assert explained["Plan"]["Actual Rows"] == 1
    assert buffers_of(explained) <= 50, json.dumps(explained, indent=1)

    # Billing answers again: every held head is due at once, each its customer's oldest.
    assert await inbox.release_held(conn) == CUSTOMERS
    async with conn.transaction(force_rollback=True):
        claimed = await inbox.claim_due(conn, limit=BATCH)
    assert len(claimed) == BATCH
    assert {e.id for e in claimed} <= {*heads, "fresh"}
    explained = await explained_claim(conn)
    assert buffers_of(explained) <= 50 * BATCH, json.dumps(explained, indent=1)


async def test_a_claim_skips_the_events_another_claim_holds(
    conn: psycopg.AsyncConnection, database_url: str
) -> None:
    """Two relays claiming at once: the second takes the next heads' events, never one the first
    holds until it records its deliveries."""
    await insert_pending(conn, customers=3 * BATCH, per_customer=2)
    async with (
        await psycopg.AsyncConnection.connect(database_url, autocommit=True) as other,
        conn.transaction(force_rollback=True),
    ):
        first = await inbox.claim_due(conn, limit=BATCH)
        async with other.transaction(force_rollback=True):
            second = await inbox.claim_due(other, limit=BATCH)
    assert len(first) == len(second) == BATCH
    assert not {e.id for e in first} & {e.id for e in second}
    assert all(e.id.endswith("_1") for e in [*first, *second])
