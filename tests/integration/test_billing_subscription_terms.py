"""Each subscription's terms over its life (billing.subscription_terms, migration 0019): what
the trigger on billing.subscriptions records as the mirror writes, and what the migration
backfills and takes back. The figures that read them: test_billing_revenue.py."""

import asyncio
import json
import secrets
from datetime import datetime
from typing import Any

import stripe
from alembic import command
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame_devstack.postgres import create_database, provision_service_role

from services.billing.events import apply_event
from services.billing.mirror import Outcome
from services.billing.models import subscriptions
from services.billing.revenue.tables import subscription_terms as terms
from services.common.db import create_engine
from services.common.migrations import alembic_config
from tests import stripe_objects
from tests.harness import migrated_database
from tests.integration import revenue_fixture as fixture
from tests.stripe_objects import event_envelope

T0 = stripe_objects.T0


async def _terms_of(engine: AsyncEngine, sub_id: str) -> list[tuple[datetime, str, int]]:
    async with engine.connect() as conn:
        found = await conn.execute(
            select(terms.c.since, terms.c.price_id, terms.c.quantity)
            .where(terms.c.subscription_id == sub_id)
            .order_by(terms.c.since)
        )
        return [(since, price, quantity) for since, price, quantity in found]


async def test_the_mirror_records_a_term_when_the_price_or_quantity_changes_and_only_then(
    postgres_admin_url: str,
) -> None:
    """Events applied as the relay delivers them: a term from the subscription's start, then
    one at the Stripe time of each event that changed its price or quantity, none for other
    changes; a subscription first mirrored after a change has its current terms from its
    start; a second write at the same Stripe time replaces that time's terms."""
    url = await asyncio.to_thread(migrated_database, postgres_admin_url, "billing")
    engine = create_engine(url, pool_size=1)
    never_called = stripe.StripeClient("sk_test_subscription_terms_never_call_stripe")
    basic = stripe_objects.price("price_basic", product="prod_basic")
    pro = stripe_objects.price("price_pro", product="prod_pro", unit_amount=4900)

    async def deliver(sub_id: str, after: int, price: dict[str, Any], **values: Any) -> None:
        obj = stripe_objects.subscription(sub_id, customer="cus_t", item_price=price, **values)
        event = event_envelope("customer.subscription.updated", obj, created=T0 + after)
        outcome = await apply_event(
            engine=engine,
            stripe_client=never_called,
            event_id=event["id"],
            event_type=event["type"],
            payload=json.dumps(event).encode(),
        )
        assert outcome is Outcome.APPLIED

    async def recorded(sub_id: str) -> list[tuple[int, str, int]]:
        return [
            (int(since.timestamp()) - T0, price, quantity)
            for since, price, quantity in await _terms_of(engine, sub_id)
        ]

    try:
        await deliver("sub_t", 100, basic)
        await deliver("sub_t", 200, basic, status="past_due", cancel_at_period_end=True)
        await deliver("sub_t", 300, pro)
        await deliver("sub_t", 400, pro, quantity=3)
        await deliver("sub_late", 600, pro, quantity=2)
        async with engine.begin() as conn:  # written again at the Stripe time of the last term
            await conn.execute(
                update(subscriptions).where(subscriptions.c.id == "sub_t").values(quantity=4)
            )
        assert await recorded("sub_t") == [
            (0, "price_basic", 1),
            (300, "price_pro", 1),
            (400, "price_pro", 4),
        ]
        assert await recorded("sub_late") == [(0, "price_pro", 2)]
    finally:
        await engine.dispose()


async def test_the_migration_backfills_current_terms_from_the_start_and_downgrades_cleanly(
    postgres_admin_url: str,
) -> None:
    """A subscription mirrored before migration 0019 gets its current price and quantity since
    its start; the downgrade drops the trigger, its function and the table."""
    admin_url = await asyncio.to_thread(
        create_database, postgres_admin_url, f"tatame_billing_{secrets.token_hex(4)}"
    )
    url = await asyncio.to_thread(provision_service_role, admin_url, "billing")
    config = alembic_config(package="services.billing", database_url=url)
    engine = create_engine(url, pool_size=1)
    older = fixture.sub("sub_old", "cus_old", "price_old", "active", fixture.at(1), quantity=3)
    try:
        await asyncio.to_thread(command.upgrade, config, "0018")
        async with engine.begin() as conn:
            await conn.execute(insert(subscriptions).values(**older))
        await asyncio.to_thread(command.upgrade, config, "0019")
        assert await _terms_of(engine, "sub_old") == [(fixture.at(1), "price_old", 3)]

        await asyncio.to_thread(command.downgrade, config, "0018")
        async with engine.begin() as conn:
            left = await conn.execute(
                text(
                    "SELECT to_regclass('billing.subscription_terms'),"
                    " to_regproc('billing.record_subscription_terms'),"
                    " (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'record_terms_%')"
                )
            )
            assert left.one() == (None, None, 0)
            # The mirror writes as before.
            await conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == "sub_old")
                .values(price_id="price_new")
            )
    finally:
        await engine.dispose()
