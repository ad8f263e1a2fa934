"""Entitlements and plans over real gRPC: answered from the mirror, with the past-due grace period,
to the configured internal services only."""

import grpc
import pytest
from tatame.billing.v1 import billing_pb2

from services.auth.service_credentials import ServiceCredentials
from services.common.rpc import reason_of
from tests.integration.billing_accounts import (
    BASIC_FEATURES,
    CLASSES,
    PRO_ONLY,
    RELAY,
    REPORTING,
    SECRETS,
    add_card,
    apply_events,
    end_period,
    events_about,
)


async def test_check_entitlement_answers_from_the_mirror(paying) -> None:
    created = await paying.subscribe("basic_monthly")

    entitled = await paying.call("CheckEntitlement", feature="class_booking")
    not_entitled = await paying.call("CheckEntitlement", feature="video_library")

    assert entitled.entitled is True
    assert entitled.entitlement.subscription_id == created.subscription.id
    assert entitled.entitlement.subscription_status == "active"
    assert not entitled.entitlement.HasField("grace_end_time")
    assert not_entitled.entitled is False
    assert not not_entitled.HasField("entitlement")
    malformed = await paying.refused("CheckEntitlement", feature="")
    assert malformed.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_past_due_keeps_the_features_for_the_grace_period_from_when_it_began(
    billing, no_trial, paying
) -> None:
    created = await paying.subscribe("basic_monthly")
    failing = await add_card(billing, created.stripe_customer_id, "pm_card_chargeCustomerFail")
    await paying.call("SetDefaultPaymentMethod", id=failing)
    known = await events_about(billing, {created.subscription.id})
    before_renewal = max(event["created"] for event in known)

    await end_period(billing, no_trial, created.subscription.id)  # the renewal is declined

    assert (await paying.subscription(created.subscription.id)).status == "past_due"
    events = await events_about(billing, {created.subscription.id})
    first = next(
        index
        for index, event in enumerate(events)
        if event["type"] == "customer.subscription.updated"
        and event["data"]["object"]["status"] == "past_due"
    )
    reply = await paying.call("CheckEntitlement", feature="class_booking")
    assert reply.entitled is True
    assert reply.entitlement.subscription_status == "past_due"
    # The grace starts at the version of the first write that showed past_due: the event saying
    # so, or an earlier event of the renewal whose same-second tie made billing fetch the
    # subscription from Stripe (already past_due) — never before the renewal began.
    began = reply.entitlement.grace_end_time.seconds - 7 * 86400
    assert before_renewal <= began <= events[first]["created"]


async def test_entitlements_are_open_to_the_configured_internal_services_only(
    billing, paying
) -> None:
    await paying.subscribe("basic_monthly")
    request = billing_pb2.CheckEntitlementRequest(feature="class_booking")
    classes = ServiceCredentials(CLASSES, SECRETS[CLASSES], audience="billing")
    reporting = ServiceCredentials(
        REPORTING, billing.service_secrets[REPORTING], audience="billing"
    )

    reply = await paying.stub.CheckEntitlement(request, metadata=classes.metadata(paying.principal))

    assert reply.entitled is True
    for caller in (reporting, RELAY):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await paying.stub.CheckEntitlement(request, metadata=caller.metadata(paying.principal))
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # entitlements only
        await paying.stub.ListInvoices(
            billing_pb2.ListInvoicesRequest(), metadata=classes.metadata(paying.principal)
        )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_plans_carry_entitlements_default_price_and_one_time_prices_when_asked(
    account,
) -> None:
    recurring = {p.name: p for p in (await account.call("ListPlans")).plans}
    everything = {p.name: p for p in (await account.call("ListPlans", include_one_time=True)).plans}

    pro = recurring["Tatame Pro"]
    assert set(pro.entitlements) == BASIC_FEATURES | PRO_ONLY
    assert pro.metadata["catalog_key"] == "tatame_pro"
    assert pro.default_price_id == next(p.id for p in pro.prices if p.lookup_key == "pro_monthly")
    assert {p.type for p in pro.prices} == {"recurring"}
    assert "Gi Patch" not in recurring
    [patch] = everything["Gi Patch"].prices
    assert (patch.type, patch.unit_amount, patch.interval) == (
        "one_time",
        1500,
        billing_pb2.INTERVAL_UNSPECIFIED,
    )


async def test_a_card_less_trial_grants_once_its_customer_has_a_default_card(
    billing, stub, account
) -> None:
    created = await account.call("CreateSubscription", price="pro_monthly", email=account.email)
    assert created.subscription.status == "trialing"
    assert await account.features() == set()
    card = await add_card(billing, created.stripe_customer_id)

    # Set in Stripe (the Dashboard, another app): Stripe would charge it when the trial ends.
    await billing.stripe.v1.customers.update_async(
        created.stripe_customer_id, params={"invoice_settings": {"default_payment_method": card}}
    )
    await apply_events(billing, stub, created.stripe_customer_id)

    assert await account.features() == BASIC_FEATURES | PRO_ONLY
    refused = await account.refused("CreateSubscription", price="basic_monthly")
    assert reason_of(refused) == "live_subscription_exists"
