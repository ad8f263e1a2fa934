"""A one-time purchase over real gRPC, its events delivered as the relay delivers them: a product
bought once with `duration_days` grants its feature until then, named by the purchase."""

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from services.billing.catalog import sync_catalog
from tests.harness import BillingHandle
from tests.integration.billing_accounts import Account, apply_events
from tests.integration.stripe_emulator_helpers import unique


@pytest.fixture
async def month_pass(billing: BillingHandle) -> AsyncIterator[tuple[str, str]]:
    """A one-time price whose product grants a feature for 30 days; (price, feature)."""
    feature = "open_mat_" + secrets.token_hex(4)
    product = await billing.stripe.v1.products.create_async(
        params={"name": unique("Pass"), "metadata": {"features": feature, "duration_days": "30"}}
    )
    price = await billing.stripe.v1.prices.create_async(
        params={"product": product.id, "currency": "eur", "unit_amount": 4000}
    )
    await sync_catalog(engine=billing.engine, stripe_client=billing.stripe)
    try:
        yield price.id, feature
    finally:
        await billing.stripe.v1.products.update_async(product.id, params={"active": False})
        await sync_catalog(engine=billing.engine, stripe_client=billing.stripe)


async def test_a_purchase_with_a_duration_grants_its_feature_until_then(
    billing: BillingHandle, account: Account, month_pass: tuple[str, str]
) -> None:
    price, feature = month_pass
    await account.customer_id()
    payment = await account.call("CreatePayment", price=price, quantity=2)
    intent = await billing.stripe.v1.payment_intents.confirm_async(
        payment.payment_intent_id, params={"payment_method": "pm_card_visa"}
    )
    assert isinstance(intent.latest_charge, str)

    await apply_events(billing, account.stub, intent.id, intent.latest_charge)

    [purchase] = (await account.call("ListPurchases")).purchases
    assert (purchase.payment_intent_id, purchase.status, purchase.quantity) == (
        intent.id,
        "succeeded",
        2,
    )
    assert (purchase.amount, purchase.currency, purchase.amount_refunded) == (8000, "eur", 0)
    checked = await account.call("CheckEntitlement", feature=feature)
    assert checked.entitled
    granted = checked.entitlement
    assert (granted.payment_intent_id, granted.subscription_id) == (intent.id, "")
    paid = purchase.paid_time.ToDatetime()
    assert granted.expire_time.ToDatetime() - paid == timedelta(days=30)


async def test_a_payment_that_is_not_a_purchase_is_not_listed(
    billing: BillingHandle, account: Account
) -> None:
    customer = await account.customer_id()
    intent = await billing.stripe.v1.payment_intents.create_async(
        params={"amount": 700, "currency": "usd", "customer": customer}
    )
    await billing.stripe.v1.payment_intents.confirm_async(
        intent.id, params={"payment_method": "pm_card_visa"}
    )

    await apply_events(billing, account.stub, intent.id)

    assert list((await account.call("ListPurchases")).purchases) == []
