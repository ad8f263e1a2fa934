"""Billing over real gRPC: a real server on a loopback port, real Postgres, the Stripe emulator."""

import asyncio
import secrets

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.billing.catalog import list_plans, sync_catalog
from tests.harness import BillingHandle


@pytest.fixture
async def channel(billing: BillingHandle):
    async with grpc.aio.insecure_channel(billing.target) as channel:
        yield channel


@pytest.fixture
def stub(channel) -> billing_pb2_grpc.BillingServiceStub:
    return billing_pb2_grpc.BillingServiceStub(channel)


@pytest.fixture
def gateway_credentials(billing: BillingHandle) -> ServiceCredentials:
    return ServiceCredentials("gateway", billing.gateway_secret, audience="billing")


def new_user() -> Principal:
    return Principal("user", "user_" + secrets.token_hex(6))


async def count_stripe_customers(billing: BillingHandle, email: str) -> int:
    listed = await billing.stripe.v1.customers.list_async(params={"email": email, "limit": 100})
    return len(listed.data)


async def test_call_without_credentials_is_unauthenticated(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListPlans(billing_pb2.ListPlansRequest())
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_forged_credential_is_unauthenticated(stub) -> None:
    forged = ServiceCredentials("gateway", secrets.token_urlsafe(32), audience="billing")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListPlans(billing_pb2.ListPlansRequest(), metadata=forged.metadata(None))
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_service_not_allowed_the_method_is_permission_denied(billing, stub) -> None:
    reporting = ServiceCredentials(
        "reporting", billing.service_secrets["reporting"], audience="billing"
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListPlans(billing_pb2.ListPlansRequest(), metadata=reporting.metadata(None))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_health_service_answers_without_credentials(channel) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_plans_come_from_the_mirror_with_monthly_and_yearly_prices(
    stub, gateway_credentials
) -> None:
    reply = await stub.ListPlans(
        billing_pb2.ListPlansRequest(), metadata=gateway_credentials.metadata(None)
    )
    by_name = {p.name: p for p in reply.plans}
    assert {"Tatame Basic", "Tatame Pro"} <= set(by_name)
    basic = {p.lookup_key: p for p in by_name["Tatame Basic"].prices}
    assert basic["basic_monthly"].unit_amount == 1900
    assert basic["basic_monthly"].currency == "usd"
    assert basic["basic_monthly"].interval == billing_pb2.INTERVAL_MONTH
    assert basic["basic_yearly"].interval == billing_pb2.INTERVAL_YEAR
    assert by_name["Tatame Pro"].features
    # One-time prices are not plans.
    assert all(p.lookup_key != "gi_patch" for plan in reply.plans for p in plan.prices)


async def test_one_time_prices_are_listed_when_asked_for_and_plans_go_cheapest_first(
    stub, gateway_credentials
) -> None:
    reply = await stub.ListPlans(
        billing_pb2.ListPlansRequest(include_one_time=True),
        metadata=gateway_credentials.metadata(None),
    )
    by_key = {p.lookup_key: p for plan in reply.plans for p in plan.prices}
    assert by_key["gi_patch"].interval == billing_pb2.INTERVAL_UNSPECIFIED
    assert by_key["basic_monthly"].interval_count == 1
    cheapest = [min(p.unit_amount for p in plan.prices) for plan in reply.plans]
    assert cheapest == sorted(cheapest)


async def test_sync_deactivates_what_stripe_deactivated(billing: BillingHandle) -> None:
    product = await billing.stripe.v1.products.create_async(
        params={"name": "Short-lived " + secrets.token_hex(3)}
    )
    price = await billing.stripe.v1.prices.create_async(
        params={
            "product": product.id,
            "unit_amount": 500,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    await sync_catalog(engine=billing.engine, stripe_client=billing.stripe)
    assert product.id in {p.product_id for p in await list_plans(engine=billing.engine)}

    await billing.stripe.v1.prices.update_async(price.id, params={"active": False})
    result = await sync_catalog(engine=billing.engine, stripe_client=billing.stripe)
    assert product.id not in {p.product_id for p in await list_plans(engine=billing.engine)}
    assert result.prices >= 1


async def test_get_customer_before_creation_is_not_found(stub, gateway_credentials) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetCustomer(
            billing_pb2.GetCustomerRequest(), metadata=gateway_credentials.metadata(new_user())
        )
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


async def test_customer_methods_require_a_principal_in_the_credential(
    stub, gateway_credentials
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetCustomer(
            billing_pb2.GetCustomerRequest(), metadata=gateway_credentials.metadata(None)
        )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_create_customer_then_get_returns_the_same_customer(
    billing, stub, gateway_credentials
) -> None:
    user = new_user()
    email = f"{user.id}@example.com"
    meta = gateway_credentials.metadata(user)
    created = await stub.CreateCustomer(
        billing_pb2.CreateCustomerRequest(email=email, name="Ana"), metadata=meta
    )
    again = await stub.CreateCustomer(
        billing_pb2.CreateCustomerRequest(email=email, name="Ana"), metadata=meta
    )
    fetched = await stub.GetCustomer(billing_pb2.GetCustomerRequest(), metadata=meta)

    assert created.created is True
    assert again.created is False
    assert created.customer.stripe_customer_id == again.customer.stripe_customer_id
    assert fetched.customer.stripe_customer_id == created.customer.stripe_customer_id
    assert fetched.customer.principal == user.key
    stripe_customer = await billing.stripe.v1.customers.retrieve_async(
        created.customer.stripe_customer_id
    )
    assert stripe_customer.metadata["tatame_principal"] == user.key
    assert stripe_customer.email == email


async def test_concurrent_creates_for_one_principal_make_one_stripe_customer(
    billing, stub, gateway_credentials
) -> None:
    user = new_user()
    email = f"{user.id}@example.com"
    meta = gateway_credentials.metadata(user)
    replies = await asyncio.gather(
        *(
            stub.CreateCustomer(
                billing_pb2.CreateCustomerRequest(email=email, name="Ana"), metadata=meta
            )
            for _ in range(20)
        )
    )
    assert sum(r.created for r in replies) == 1
    assert len({r.customer.stripe_customer_id for r in replies}) == 1
    assert await count_stripe_customers(billing, email) == 1


async def test_principals_do_not_see_each_others_customers(stub, gateway_credentials) -> None:
    first, second = new_user(), new_user()
    await stub.CreateCustomer(
        billing_pb2.CreateCustomerRequest(email=f"{first.id}@example.com"),
        metadata=gateway_credentials.metadata(first),
    )
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetCustomer(
            billing_pb2.GetCustomerRequest(), metadata=gateway_credentials.metadata(second)
        )
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", "x" * 250 + "@example.com"])
@pytest.mark.usefixtures("billing")
async def test_invalid_email_is_invalid_argument_and_creates_nothing(
    stub, gateway_credentials, email
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateCustomer(
            billing_pb2.CreateCustomerRequest(email=email),
            metadata=gateway_credentials.metadata(new_user()),
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.usefixtures("billing")
async def test_a_nul_character_is_invalid_argument_and_creates_nothing_at_stripe(
    billing, stub, gateway_credentials
) -> None:
    email = f"nul-{secrets.token_hex(4)}@example.com"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateCustomer(
            billing_pb2.CreateCustomerRequest(email=email, name="Ana\x00Lima"),
            metadata=gateway_credentials.metadata(new_user()),
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "name must not contain a NUL character"
    assert await count_stripe_customers(billing, email) == 0


@pytest.mark.usefixtures("billing")
async def test_a_nul_character_in_a_lookup_is_invalid_argument_not_internal(
    stub, gateway_credentials
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetSubscription(
            billing_pb2.GetSubscriptionRequest(id="sub_\x00"),
            metadata=gateway_credentials.metadata(new_user()),
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
