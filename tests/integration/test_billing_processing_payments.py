"""A payment still processing grants nothing: a subscription whose first payment is a bank debit
that takes days (which Stripe may make `active` meanwhile) grants its features only once the
money arrives. The emulator runs no such method, so the mirror is given the state Stripe would
report (the subscription active, its open invoice's payment processing); billing's own query
decides, on real Postgres over real gRPC."""

from sqlalchemy import text

from tests.harness import BillingHandle
from tests.integration.billing_accounts import Account, apply_events


async def test_a_subscription_whose_first_payment_is_processing_grants_nothing_until_paid(
    billing: BillingHandle, paying: Account
) -> None:
    created = await paying.call(
        "CreateSubscription", price="basic_monthly", email=paying.email, name="Ana"
    )
    subscription_id = created.subscription.id
    await apply_events(billing, paying.stub, subscription_id)  # its first invoice, open
    state = {"id": subscription_id}
    async with billing.engine.begin() as conn:
        await conn.execute(
            text("UPDATE billing.subscriptions SET status = 'active' WHERE id = :id"), state
        )
        opened = await conn.execute(
            text(
                "UPDATE billing.invoices SET payment_status = 'processing'"
                " WHERE subscription_id = :id AND status = 'open'"
            ),
            state,
        )
    assert opened.rowcount == 1

    while_processing = await paying.call("CheckEntitlement", feature="class_booking")

    async with billing.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE billing.invoices SET status = 'paid', amount_paid = amount_due,"
                " amount_remaining = 0, payment_status = 'succeeded' WHERE subscription_id = :id"
            ),
            state,
        )
    once_paid = await paying.call("CheckEntitlement", feature="class_booking")

    assert while_processing.entitled is False
    assert once_paid.entitled is True
    assert once_paid.entitlement.subscription_id == subscription_id
