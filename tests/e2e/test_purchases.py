"""One-time purchases through the REST edge: bought with PaymentSheet, listed with their status,
granting their product's feature; refunded by an operator (the CLI, the admin RPC), which takes
the feature back once nothing is left; disputed by the bank, which suspends the feature until
the dispute is won. Stripe's events reach billing through the real webhook pipeline."""

import os
from typing import Any

import grpc
import httpx
import pytest
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.service_credentials import ServiceCredentials
from services.billing.grpc_policy import GATEWAY, OPS_CLI
from services.common.rpc import reason_of
from tests.e2e.gateway_client import User
from tests.e2e.webhook_pipeline import eventually
from tests.harness import BillingHandle, OneTimeProduct
from tests.integration.ops_cli import refund_cli

pytestmark = pytest.mark.usefixtures("webhook_pipeline")


async def buy(client: httpx.AsyncClient, billing: BillingHandle, user: User, price: str) -> str:
    """Buy `price` as the app does (POST /v1/payments, then PaymentSheet confirms with a card);
    the payment intent's id."""
    created = await client.post("/v1/payments", json={"price": price}, headers=user.headers)
    assert created.status_code == 201, created.text
    intent_id = created.json()["id"]
    await billing.stripe.v1.payment_intents.confirm_async(
        intent_id, params={"payment_method": "pm_card_visa"}
    )
    return intent_id


async def purchases(client: httpx.AsyncClient, user: User) -> list[dict[str, Any]]:
    listed = await client.get("/v1/purchases", headers=user.headers)
    assert listed.status_code == 200, listed.text
    return listed.json()["purchases"]


async def features(client: httpx.AsyncClient, user: User) -> dict[str, dict[str, Any]]:
    listed = await client.get("/v1/entitlements", headers=user.headers)
    assert listed.status_code == 200, listed.text
    return {e["feature"]: e for e in listed.json()["entitlements"]}


async def wait_for_status(client: httpx.AsyncClient, user: User, intent_id: str, status: str):
    async def shown() -> bool:
        return any(
            p["id"] == intent_id and p["status"] == status and p["receipt_url"]
            for p in await purchases(client, user)
        )

    await eventually(shown)


def admin_stub(channel: grpc.aio.Channel) -> billing_pb2_grpc.BillingAdminServiceStub:
    return billing_pb2_grpc.BillingAdminServiceStub(channel)


async def test_a_purchase_appears_grants_its_feature_and_an_operators_refund_takes_it_back(
    client: httpx.AsyncClient, new_user, billing: BillingHandle, one_time_product: OneTimeProduct
) -> None:
    user, stranger = await new_user(), await new_user()

    intent_id = await buy(client, billing, user, one_time_product.price)

    await wait_for_status(client, user, intent_id, "succeeded")
    [purchase] = await purchases(client, user)
    assert (purchase["amount"], purchase["currency"], purchase["amount_refunded"]) == (
        2500,
        "usd",
        0,
    )
    assert (purchase["price_id"], purchase["product_id"], purchase["quantity"]) == (
        one_time_product.price,
        one_time_product.product,
        1,
    )
    granted = (await features(client, user))[one_time_product.feature]
    assert (granted["payment_intent_id"], granted["expires_at"]) == (intent_id, None)
    # Another user sees neither the purchase nor what it grants.
    assert await purchases(client, stranger) == []
    assert one_time_product.feature not in await features(client, stranger)

    env = {
        **os.environ,
        "BILLING_TARGET": billing.target,
        "BILLING_ADMIN_CLIENT_SECRET": billing.service_secrets[OPS_CLI],
    }
    refunded = await refund_cli(env, intent_id, "--reason", "requested_by_customer")
    again = await refund_cli(env, intent_id, "--reason", "requested_by_customer")

    assert refunded.returncode == 0, refunded.stderr
    assert "succeeded: 2500 usd of " + intent_id in refunded.stdout
    # The same command again is the same refund (its idempotency key is derived from it).
    assert again.returncode == 0, again.stderr
    assert again.stdout == refunded.stdout
    # Billing mirrored the refunded charge before answering: the feature is gone at once.
    [purchase] = await purchases(client, user)
    assert (purchase["status"], purchase["amount_refunded"]) == ("refunded", 2500)
    assert one_time_product.feature not in await features(client, user)
    # Nothing is left to refund.
    nothing_left = await refund_cli(env, intent_id, "--idempotency-key", "another-refund")
    assert nothing_left.returncode == 1
    assert "FAILED_PRECONDITION" in nothing_left.stderr


async def test_a_partial_refund_keeps_the_grant_and_only_operators_may_refund(
    client: httpx.AsyncClient, new_user, billing: BillingHandle, one_time_product: OneTimeProduct
) -> None:
    user = await new_user()
    intent_id = await buy(client, billing, user, one_time_product.price)
    await wait_for_status(client, user, intent_id, "succeeded")
    operator = ServiceCredentials(OPS_CLI, billing.service_secrets[OPS_CLI], audience="billing")
    gateway = ServiceCredentials(GATEWAY, billing.gateway_secret, audience="billing")

    async with grpc.aio.insecure_channel(billing.target) as channel:
        admin = admin_stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as as_the_gateway:
            await admin.RefundPayment(
                billing_pb2.RefundPaymentRequest(payment_intent_id=intent_id),
                metadata=gateway.metadata(None),
            )
        part = await admin.RefundPayment(
            billing_pb2.RefundPaymentRequest(payment_intent_id=intent_id, amount=1000),
            metadata=operator.metadata(None),
        )
        with pytest.raises(grpc.aio.AioRpcError) as too_much:
            await admin.RefundPayment(
                billing_pb2.RefundPaymentRequest(payment_intent_id=intent_id, amount=1501),
                metadata=operator.metadata(None),
            )
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await admin.RefundPayment(
                billing_pb2.RefundPaymentRequest(payment_intent_id="pi_unknown"),
                metadata=operator.metadata(None),
            )

    assert as_the_gateway.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert (part.amount, part.amount_refunded, part.status) == (1000, 1000, "succeeded")
    assert too_much.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(too_much.value) == "refund_exceeds_payment"
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    [purchase] = await purchases(client, user)
    assert (purchase["status"], purchase["amount_refunded"]) == ("partially_refunded", 1000)
    assert one_time_product.feature in await features(client, user)
    # Stripe's charge.refunded and refund.created events, applied later, change nothing.
    await wait_for_status(client, user, intent_id, "partially_refunded")


async def test_a_dispute_suspends_what_a_purchase_granted_until_it_is_won(
    client: httpx.AsyncClient, new_user, billing: BillingHandle, one_time_product: OneTimeProduct
) -> None:
    user = await new_user()
    intent_id = await buy(client, billing, user, one_time_product.price)
    await wait_for_status(client, user, intent_id, "succeeded")
    intent = await billing.stripe.v1.payment_intents.retrieve_async(intent_id)
    assert isinstance(intent.latest_charge, str)

    dispute_id = await billing.stripe_target.dispute(intent.latest_charge)

    await wait_for_status(client, user, intent_id, "disputed")
    assert one_time_product.feature not in await features(client, user)

    await billing.stripe_target.resolve_dispute(dispute_id, "won")

    await wait_for_status(client, user, intent_id, "succeeded")
    assert one_time_product.feature in await features(client, user)


async def test_a_dispute_lost_takes_the_grant_for_good(
    client: httpx.AsyncClient, new_user, billing: BillingHandle, one_time_product: OneTimeProduct
) -> None:
    user = await new_user()
    intent_id = await buy(client, billing, user, one_time_product.price)
    await wait_for_status(client, user, intent_id, "succeeded")
    intent = await billing.stripe.v1.payment_intents.retrieve_async(intent_id)
    assert isinstance(intent.latest_charge, str)

    dispute_id = await billing.stripe_target.dispute(intent.latest_charge)
    await billing.stripe_target.resolve_dispute(dispute_id, "lost")

    await wait_for_status(client, user, intent_id, "lost")
    assert one_time_product.feature not in await features(client, user)
