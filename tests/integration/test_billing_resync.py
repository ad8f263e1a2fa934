"""Resync and reconcile against the real stripe SDK, the emulator and Postgres: a wiped mirror
refilled from Stripe's lists equals the one events built; an interrupted resync continues from
its last page; fetched state never overwrites a newer row; drift injected in the database is
found, repaired and counted, and exported as a gauge."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from tatame.billing.v1 import billing_pb2

from services.billing.catalog import sync_catalog
from services.billing.mirror import Outcome
from services.billing.resync.metrics import refresh_drift_gauges
from services.billing.resync.reconcile import reconcile
from services.billing.resync.resync import resync
from services.billing.resync.sources import Scope
from services.common.db import create_engine
from services.common.stripe_sdk import create_stripe_client
from tests.harness import BillingHandle, OneTimeProduct, migrated_database
from tests.integration.billing_accounts import RELAY, Account, stripe_json
from tests.stripe_target import EMULATOR_KEY

# The mirror's tables of one customer, and the columns that say when or how a row was written
# (not what Stripe holds).
CUSTOMER_TABLES = (
    "customers",
    "subscriptions",
    "subscription_schedules",
    "invoices",
    "purchases",
    "charges",
)
BOOKKEEPING = {
    "source_event_created",
    "refetched",
    "updated_at",
    "created_at",
    "synced_at",
    "past_due_since",
}


async def customer_rows(billing: BillingHandle, customer_id: str) -> dict[str, list[dict]]:
    """The customer's rows of each mirror table, less bookkeeping columns, in key order."""
    found = {}
    async with billing.engine.connect() as conn:
        for table in CUSTOMER_TABLES:
            rows = await conn.execute(
                text(f"SELECT * FROM billing.{table} WHERE stripe_customer_id = :c"),  # noqa: S608
                {"c": customer_id},
            )
            found[table] = sorted(
                ({k: v for k, v in row.items() if k not in BOOKKEEPING} for row in rows.mappings()),
                key=lambda row: str(row.get("id", row.get("principal"))),
            )
    return found


async def wipe(billing: BillingHandle, customer_id: str) -> None:
    async with billing.engine.begin() as conn:
        for table in CUSTOMER_TABLES:
            await conn.execute(
                text(f"DELETE FROM billing.{table} WHERE stripe_customer_id = :c"),  # noqa: S608
                {"c": customer_id},
            )


async def apply_customer_events(billing: BillingHandle, account: Account, customer_id: str) -> None:
    """Deliver, oldest first, every event Stripe recorded about the customer's objects (those
    that name it), as the relay delivers them."""
    events, params = [], {"limit": 100}
    while True:
        page = await stripe_json(billing, "get", "/v1/events", **params)
        events += [
            e
            for e in page["data"]
            if customer_id in (e["data"]["object"].get("customer"), e["data"]["object"].get("id"))
        ]
        if not page["has_more"]:
            break
        params["starting_after"] = page["data"][-1]["id"]
    for event in reversed(events):
        request = billing_pb2.ApplyStripeEventRequest(
            event_id=event["id"], type=event["type"], payload=json.dumps(event).encode()
        )
        await account.stub.ApplyStripeEvent(request, metadata=RELAY.metadata(None))


async def stripe_customer(account: Account) -> str:
    return await account.customer_id()


@pytest.fixture
async def busy(
    billing: BillingHandle, paying: Account, one_time_product: OneTimeProduct
) -> tuple[Account, str]:
    """A customer with a subscription whose downgrade waits in a schedule, its paid invoice and
    charge, and a purchase; every event about them applied: (account, Stripe customer)."""
    created = await paying.subscribe("pro_monthly")
    await paying.call(
        "UpdateSubscription",
        id=created.subscription.id,
        price="basic_monthly",
        proration_behavior=billing_pb2.PRORATION_BEHAVIOR_CREATE_PRORATIONS,
    )
    payment = await paying.call("CreatePayment", price=one_time_product.price, quantity=1)
    await billing.stripe.v1.payment_intents.confirm_async(
        payment.payment_intent_id, params={"payment_method": "pm_card_visa"}
    )
    customer_id = await paying.customer_id()
    await apply_customer_events(billing, paying, customer_id)
    return paying, customer_id


async def test_a_wiped_mirror_resynced_equals_the_mirror_built_by_events(
    billing: BillingHandle, busy: tuple[Account, str]
) -> None:
    account, customer_id = busy
    by_events = await customer_rows(billing, customer_id)
    assert all(by_events[table] for table in CUSTOMER_TABLES), by_events  # one of each at least

    await wipe(billing, customer_id)
    result = await resync(
        engine=billing.engine,
        stripe_client=billing.stripe,
        scope=Scope(customer=customer_id),
        page_size=1,
    )

    assert await customer_rows(billing, customer_id) == by_events
    assert result.outcomes["subscriptions"][Outcome.APPLIED] == 1
    assert await account.features()  # the rebuilt mirror grants what the events granted


async def test_a_wiped_catalog_resynced_equals_the_synced_catalog(
    billing: BillingHandle, postgres_admin_url: str
) -> None:
    """On a mirror of its own (the session's holds rows other tests made by hand): the catalog
    as `sync-catalog` writes it, wiped, then resynced."""
    query = "SELECT * FROM billing.{} ORDER BY id"
    url = await asyncio.to_thread(migrated_database, postgres_admin_url, "billing")
    engine = create_engine(url, pool_size=2)

    async def catalog() -> dict[str, list[dict[str, Any]]]:
        async with engine.connect() as conn:
            return {
                table: [
                    {k: v for k, v in row.items() if k not in BOOKKEEPING}
                    for row in (await conn.execute(text(query.format(table)))).mappings()
                ]
                for table in ("products", "prices")
            }

    try:
        await sync_catalog(engine=engine, stripe_client=billing.stripe)
        synced = await catalog()
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM billing.prices"))
            await conn.execute(text("DELETE FROM billing.products"))

        today = datetime.now(UTC).date() - timedelta(days=1)  # the session seeded it today
        await resync(engine=engine, stripe_client=billing.stripe, scope=Scope(since=today))

        assert synced["prices"]
        assert await catalog() == synced
    finally:
        await engine.dispose()


async def cursors(billing: BillingHandle) -> list[tuple[str, str, str | None, bool]]:
    async with billing.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT run, resource, starting_after, completed_at IS NOT NULL"
                " FROM billing.resync_cursors ORDER BY updated_at, resource"
            )
        )
        return [tuple(row) for row in rows]


class Crash(Exception):
    pass


async def test_an_interrupted_resync_continues_from_its_last_page(
    billing: BillingHandle, busy: tuple[Account, str]
) -> None:
    _, customer_id = busy
    scope = Scope(customer=customer_id)
    pages: list[tuple[str, int]] = []

    def crash_after_charges(resource: str, objects: int, _last: bool) -> None:
        pages.append((resource, objects))
        if resource == "charges":
            raise Crash  # the page is committed: as if the process died right after it

    with pytest.raises(Crash):
        await resync(
            engine=billing.engine,
            stripe_client=billing.stripe,
            scope=scope,
            page_size=1,
            on_page=crash_after_charges,
        )
    [*done, (run, resource, after, completed)] = await cursors(billing)
    finished = {"customers", "subscriptions", "subscription_schedules", "invoices", "purchases"}
    assert {row[1] for row in done} == finished
    assert all(row[3] for row in done)  # finished resources are not listed again
    assert (run, resource, completed) == (f"customer={customer_id}", "charges", False)
    charges = await billing.stripe.v1.charges.list_async(params={"customer": customer_id})
    assert len(charges.data) == 2  # the subscription's first invoice's, and the purchase's
    assert after == charges.data[0].id  # newest first, one a page

    rest: list[str] = []
    rerun = await resync(
        engine=billing.engine,
        stripe_client=billing.stripe,
        scope=scope,
        page_size=1,
        on_page=lambda resource, objects, _last: rest.append(resource) if objects else None,
    )

    assert rest == ["charges"]  # its second page only
    assert sum(rerun.outcomes["charges"].values()) == 1
    assert await cursors(billing) == []  # finished: the next run starts over
    again = await resync(engine=billing.engine, stripe_client=billing.stripe, scope=scope)
    assert sum(again.outcomes["charges"].values()) == 2


async def test_a_resumed_resync_whose_cursor_object_is_gone_starts_that_resource_over(
    billing: BillingHandle, busy: tuple[Account, str]
) -> None:
    _, customer_id = busy
    scope = Scope(customer=customer_id)
    async with billing.engine.begin() as conn:  # a crashed run's cursor, at a charge since gone
        await conn.execute(
            text(
                "INSERT INTO billing.resync_cursors (run, resource, starting_after)"
                " VALUES (:run, 'charges', 'ch_GoneSinceTheCrash')"
            ),
            {"run": scope.key},
        )

    result = await resync(engine=billing.engine, stripe_client=billing.stripe, scope=scope)

    assert sum(result.outcomes["charges"].values()) == 2  # both, from the first page
    assert await cursors(billing) == []


async def test_resync_never_writes_over_newer_state(
    billing: BillingHandle, busy: tuple[Account, str]
) -> None:
    _, customer_id = busy
    later = datetime.now(UTC) + timedelta(hours=1)  # an event Stripe sent after the fetch
    async with billing.engine.begin() as conn:
        newer = await conn.execute(
            text(
                "UPDATE billing.subscriptions SET status = 'canceled', source_event_created = :t"
                " WHERE stripe_customer_id = :c RETURNING id"
            ),
            {"t": later, "c": customer_id},
        )
        [subscription_id] = newer.scalars().all()
        older = await conn.execute(
            text(
                "UPDATE billing.purchases SET status = 'processing',"
                " source_event_created = source_event_created - interval '1 hour'"
                " WHERE stripe_customer_id = :c RETURNING id"
            ),
            {"c": customer_id},
        )
        [purchase_id] = older.scalars().all()

    result = await resync(
        engine=billing.engine, stripe_client=billing.stripe, scope=Scope(customer=customer_id)
    )

    async with billing.engine.connect() as conn:
        status = await conn.scalar(
            text("SELECT status FROM billing.subscriptions WHERE id = :id"), {"id": subscription_id}
        )
        purchase = await conn.scalar(
            text("SELECT status FROM billing.purchases WHERE id = :id"), {"id": purchase_id}
        )
    assert (status, result.outcomes["subscriptions"][Outcome.STALE]) == ("canceled", 1)
    assert (purchase, result.outcomes["purchases"][Outcome.APPLIED]) == ("succeeded", 1)


def drift_gauge(resource: str, kind: str) -> float | None:
    return REGISTRY.get_sample_value(
        "billing_mirror_drift_objects", {"resource": resource, "kind": kind}
    )


async def test_reconcile_finds_repairs_and_counts_drift_injected_in_the_mirror(
    billing: BillingHandle, busy: tuple[Account, str]
) -> None:
    _, customer_id = busy
    before = await customer_rows(billing, customer_id)
    async with billing.engine.begin() as conn:
        for statement in (
            "UPDATE billing.subscriptions SET status = 'past_due' WHERE stripe_customer_id = :c",
            "DELETE FROM billing.invoices WHERE id = (SELECT min(id) FROM billing.invoices"
            " WHERE stripe_customer_id = :c)",
            "UPDATE billing.charges SET amount = amount + 1 WHERE stripe_customer_id = :c"
            " AND payment_intent_id IN (SELECT id FROM billing.purchases)",
            "INSERT INTO billing.purchases (id, stripe_customer_id, price_id, quantity, amount,"
            " currency, status, created, source_event_created) VALUES ('pi_NoSuchIntent0', :c,"
            " 'price_x', 1, 100, 'usd', 'succeeded', now(), now())",
        ):
            await conn.execute(text(statement), {"c": customer_id})

    found = await reconcile(
        engine=billing.engine, stripe_client=billing.stripe, customers=[customer_id]
    )

    drift = {name: dict(kinds) for name, kinds in found.drift.items() if any(kinds.values())}
    assert drift == {
        "subscriptions": {"changed": 1},
        "invoices": {"missing": 1},
        "charges": {"changed": 1},
        "purchases": {"orphaned": 1},
    }
    assert (found.total, found.repaired) == (4, 3)  # an orphan is left for someone to look at
    async with billing.engine.begin() as conn:
        await conn.execute(text("DELETE FROM billing.purchases WHERE id = 'pi_NoSuchIntent0'"))
    assert await customer_rows(billing, customer_id) == before
    await refresh_drift_gauges(billing.engine)
    assert drift_gauge("invoices", "missing") == 1
    assert drift_gauge("customers", "changed") == 0

    again = await reconcile(
        engine=billing.engine, stripe_client=billing.stripe, customers=[customer_id]
    )
    assert (again.total, again.repaired) == (0, 0)
    await refresh_drift_gauges(billing.engine)
    assert drift_gauge("invoices", "missing") == 0


@pytest.fixture
async def stripe_429s(stripe_emulator: str) -> AsyncIterator[httpx.AsyncClient]:
    """The emulator's `/_testing/rate_limit`, set back to 0 after the test."""
    key = {"Authorization": f"Bearer {EMULATOR_KEY}"}
    async with httpx.AsyncClient(base_url=f"{stripe_emulator}/_testing", headers=key) as testing:
        yield testing
        (await testing.post("/rate_limit", data={"count": "0"})).raise_for_status()


@pytest.mark.emulator
async def test_resync_waits_out_stripes_rate_limit(
    billing: BillingHandle,
    busy: tuple[Account, str],
    stripe_emulator: str,
    stripe_429s: httpx.AsyncClient,
) -> None:
    _, customer_id = busy
    by_events = await customer_rows(billing, customer_id)
    await wipe(billing, customer_id)
    client = create_stripe_client(
        secret_key=EMULATOR_KEY,
        api_base=stripe_emulator,
        max_network_retries=0,
        backoff_seconds=0.2,
        backoff_max_seconds=1,
    )
    (await stripe_429s.post("/rate_limit", data={"count": "3"})).raise_for_status()
    rate_limited = REGISTRY.get_sample_value("stripe_rate_limited_total", {"code": "rate_limit"})

    await resync(engine=billing.engine, stripe_client=client, scope=Scope(customer=customer_id))

    after = REGISTRY.get_sample_value("stripe_rate_limited_total", {"code": "rate_limit"})
    assert (after or 0) - (rate_limited or 0) == 3
    assert await customer_rows(billing, customer_id) == by_events


@pytest.mark.emulator
def test_the_commands_resync_with_a_progress_bar_and_reconcile(
    billing: BillingHandle, busy: tuple[Account, str], stripe_emulator: str
) -> None:
    _, customer_id = busy
    env = {
        **os.environ,
        "TATAME_ENV": "test",
        "DATABASE_URL": billing.engine.url.render_as_string(hide_password=False).replace(
            "+psycopg", ""
        ),
        "STRIPE_SECRET_KEY": EMULATOR_KEY,
        "STRIPE_API_BASE": stripe_emulator,
        "METRICS_PORT": "0",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "services.billing"]
    resynced = subprocess.run(
        [*command, "resync", "--customer", customer_id, "--page-size", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "subscriptions: applied 1" in resynced.stdout
    assert "invoices" in resynced.stderr  # the progress bar, one line per resource
    reconciled = subprocess.run(
        [*command, "reconcile", "--customer", customer_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "drift 0, repaired 0" in reconciled.stdout
    unknown = subprocess.run(
        [*command, "resync", "--customer", "cus_NoSuchCustomer0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert unknown.returncode == 1
    assert "error: Stripe refused to read customers" in unknown.stderr
