"""Invoices, payment methods, one-time payments, setup intents and ephemeral keys over real gRPC."""

from datetime import UTC, datetime

import grpc

from services.common.rpc import reason_of
from tests.harness import APP_ORIGIN
from tests.integration.billing_accounts import (
    MOBILE_STRIPE_VERSION,
    add_card,
    price_id,
)


async def test_invoices_are_listed_from_the_mirror_with_amounts_and_links(paying) -> None:
    created = await paying.subscribe("pro_monthly")

    [invoice] = (await paying.call("ListInvoices")).invoices

    assert invoice.subscription_id == created.subscription.id
    assert (invoice.status, invoice.currency) == ("paid", "usd")
    assert (invoice.amount_due, invoice.amount_paid, invoice.amount_remaining) == (3900, 3900, 0)
    assert invoice.hosted_invoice_url.startswith("https://")
    assert invoice.invoice_pdf.startswith("https://")
    assert invoice.number


async def test_payment_methods_list_marks_the_default_which_can_be_changed(
    billing, account
) -> None:
    customer_id = await account.customer_id()
    first, second = await add_card(billing, customer_id), await add_card(billing, customer_id)
    await account.call("SetDefaultPaymentMethod", id=first)

    reply = await account.call("SetDefaultPaymentMethod", id=second)

    assert (reply.payment_method.id, reply.payment_method.is_default) == (second, True)
    listed = {
        pm.id: pm.is_default for pm in (await account.call("ListPaymentMethods")).payment_methods
    }
    assert listed == {first: False, second: True}
    customer = await billing.stripe.v1.customers.retrieve_async(customer_id)
    assert customer.invoice_settings.default_payment_method == second


async def test_the_default_card_also_pays_the_live_subscription(billing, paying) -> None:
    created = await paying.subscribe("basic_monthly")
    card = await add_card(billing, created.stripe_customer_id)

    await paying.call("SetDefaultPaymentMethod", id=card)

    subscription = await billing.stripe.v1.subscriptions.retrieve_async(created.subscription.id)
    assert subscription.default_payment_method == card


async def test_a_detached_card_is_no_longer_listed(billing, account) -> None:
    customer_id = await account.customer_id()
    card = await add_card(billing, customer_id)

    await account.call("DetachPaymentMethod", id=card)

    assert list((await account.call("ListPaymentMethods")).payment_methods) == []


async def test_a_one_time_payment_amount_comes_from_the_catalog(billing, account) -> None:
    await account.customer_id()

    reply = await account.call("CreatePayment", price="gi_patch", quantity=3)

    assert (reply.amount, reply.currency) == (3 * 1500, "usd")
    intent = await billing.stripe.v1.payment_intents.retrieve_async(reply.payment_intent_id)
    assert (intent.amount, intent.customer) == (4500, reply.stripe_customer_id)
    assert intent.metadata["tatame_principal"] == account.principal.key
    assert intent.metadata["tatame_price"] == await price_id(billing, "gi_patch")
    assert reply.client_secret == intent.client_secret
    recurring = await account.refused("CreatePayment", price="basic_monthly")
    assert recurring.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_payment_tools_need_the_customer_first(account) -> None:
    for method, fields in (
        ("CreatePortalSession", {"return_url": f"{APP_ORIGIN}/billing"}),
        ("CreatePayment", {"price": "gi_patch"}),
        ("CreateSetupIntent", {}),
        ("CreateEphemeralKey", {"stripe_version": MOBILE_STRIPE_VERSION}),
    ):
        refused = await account.refused(method, **fields)
        assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION, method
        assert reason_of(refused) == "customer_required", method


async def test_setup_intents_and_ephemeral_keys_are_for_the_principals_customer(
    billing, account
) -> None:
    customer_id = await account.customer_id()

    intent = await account.call("CreateSetupIntent")
    key = await account.call("CreateEphemeralKey", stripe_version=MOBILE_STRIPE_VERSION)

    setup_intent = await billing.stripe.v1.setup_intents.retrieve_async(intent.setup_intent_id)
    assert (setup_intent.customer, intent.stripe_customer_id) == (customer_id, customer_id)
    assert intent.client_secret == setup_intent.client_secret
    assert key.secret.startswith("ek_")
    assert key.stripe_customer_id == customer_id
    assert key.expire_time.seconds > datetime.now(UTC).timestamp()
    made_for = await billing.stripe_target.ephemeral_key_version(key.secret)
    assert made_for == MOBILE_STRIPE_VERSION  # the mobile SDK's, not billing's
    bad = await account.refused("CreateEphemeralKey", stripe_version="latest")
    assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT
