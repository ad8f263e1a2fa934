"""`/api/stripe/*`: the existing Expo app's calls, as a thin layer over billing with the shapes it
reads (`{data: …}`; see shared/EXPO-CLIENT.md), minus the old server's defects: identity comes
from the token only (a `userId` or `customerId` that is not the caller's is refused), amounts come
from the catalog, and cancelling takes effect at the end of the paid period."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.dependencies import (
    CurrentSession,
    ForCaller,
    ForManager,
    IdempotencyKey,
    PublicBilling,
    StripeVersionHeader,
)
from gateway.schemas import error_responses
from gateway.validation import StripeId, Text
from services.auth.clerk import Session
from services.common.http import ApiError
from services.common.stripe_sdk import STRIPE_API_VERSION
from services.common.subscription_statuses import LIVE_STATUSES

router = APIRouter(prefix="/api/stripe", tags=["compatibility: existing Expo app"])
# What billing may answer through these calls (402: a card refused; 403: an id not the caller's).
ERRORS = error_responses(400, 401, 402, 403, 404, 409, 503)


class LegacyIn(BaseModel):
    """The old client's bodies: ids it sends are only checked against the caller, never trusted."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    user_id: StrictInt | Annotated[Text, Field(max_length=255)] | None = Field(
        default=None, alias="userId"
    )
    customer_id: Text | None = Field(default=None, alias="customerId", max_length=255)


class LegacyCustomerIn(LegacyIn):
    email: Text = Field(min_length=3, max_length=254)
    name: Text = Field(default="", max_length=256)


class LegacySubscriptionIn(LegacyIn):
    price_id: Text = Field(alias="priceId", min_length=1, max_length=255)
    promotion_code: str | None = Field(
        default=None,
        alias="promotionCode",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9-]+$",
    )


class LegacyPaymentIn(LegacyIn):
    amount: StrictInt | None = Field(default=None, ge=1)
    currency: Text | None = Field(default=None, min_length=3, max_length=3)
    price_id: Text | None = Field(default=None, alias="priceId", min_length=1, max_length=255)


def envelope(data: Any, *, status_code: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse({"data": data, **extra}, status_code=status_code)


def check_user(given: int | str | None, session: Session) -> None:
    """The old app's numeric user ids mean nothing here and are ignored; a Clerk id must be ours."""
    if given is None or isinstance(given, int) or str(given).isdigit():
        return
    if given != session.user_id:
        raise ApiError(403, "forbidden", "userId is not the signed-in user")


async def own_customer_id(billing: ForCaller) -> str:
    reply = await billing.get_customer(billing_pb2.GetCustomerRequest())
    return reply.customer.stripe_customer_id


async def check_customer(given: str | None, billing: ForCaller) -> None:
    """A `customerId` in the request must be the caller's own Stripe customer."""
    if given is not None and given != await own_customer_id(billing):
        raise ApiError(403, "forbidden", "customerId is not the signed-in user's customer")


async def catalog(billing: ForCaller) -> billing_pb2.ListPlansResponse:
    return await billing.list_plans(billing_pb2.ListPlansRequest(include_one_time=True))


def legacy_subscription(
    sub: billing_pb2.Subscription, plans: billing_pb2.ListPlansResponse
) -> dict[str, Any]:
    """The Stripe-like subscription shape the old app reads (Unix times, a `plan`)."""
    price = next(
        ((plan, p) for plan in plans.plans for p in plan.prices if p.id == sub.price_id), None
    )

    def unix(field: str) -> int | None:
        return getattr(sub, field).seconds if sub.HasField(field) else None

    return {
        "id": sub.id,
        "status": sub.status,
        "currency": price[1].currency if price else None,
        "current_period_start": unix("current_period_start"),
        "current_period_end": unix("current_period_end"),
        "trial_start": unix("trial_start"),
        "trial_end": unix("trial_end"),
        "cancel_at_period_end": sub.cancel_at_period_end,
        "plan": None
        if price is None
        else {
            "id": price[1].id,
            "active": True,
            "amount": price[1].unit_amount,
            "currency": price[1].currency,
            "interval": rendering.INTERVAL_NAMES.get(price[1].interval),
            "interval_count": price[1].interval_count,
            "product": price[0].product_id,
        },
    }


@router.get(
    "/products",
    summary="Products with their default price (public)",
    responses=error_responses(400, 503),
)
async def products(
    billing: PublicBilling,
    active: bool = True,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> JSONResponse:
    reply = await billing.list_plans(billing_pb2.ListPlansRequest(include_one_time=True))
    data = []
    for plan in reply.plans[:limit] if active else []:
        default = next((p for p in plan.prices if p.id == plan.default_price_id), None)
        data.append(
            {
                "id": plan.product_id,
                "name": plan.name,
                "description": plan.description,
                "metadata": dict(plan.metadata),
                "active": True,
                "default_price": None
                if default is None
                else {
                    "id": default.id,
                    "unit_amount": default.unit_amount,
                    "currency": default.currency,
                },
            }
        )
    return JSONResponse({"data": data, "count": len(data)})


@router.post(
    "/customers",
    status_code=201,
    responses={**ERRORS, 200: {"description": "The caller's customer existed already"}},
)
async def create_customer(
    body: LegacyCustomerIn, session: CurrentSession, billing: ForManager, key: IdempotencyKey
) -> JSONResponse:
    check_user(body.user_id, session)
    reply = await billing.create_customer(
        billing_pb2.CreateCustomerRequest(email=body.email, name=body.name),
        idempotency_key=key,
    )
    customer = {
        "id": reply.customer.stripe_customer_id,
        "email": reply.customer.email,
        "name": reply.customer.name,
    }
    return envelope(customer, status_code=201 if reply.created else 200, created=reply.created)


@router.post("/subscriptions", status_code=201, responses=ERRORS)
async def create_subscription(
    body: LegacySubscriptionIn,
    session: CurrentSession,
    billing: ForManager,
    key: IdempotencyKey,
    stripe_version: StripeVersionHeader = None,
) -> JSONResponse:
    check_user(body.user_id, session)
    await check_customer(body.customer_id, billing)
    reply = await billing.create_subscription(
        billing_pb2.CreateSubscriptionRequest(
            price=body.price_id,
            quantity=1,
            mobile_stripe_version=stripe_version or "",
            promotion_code=body.promotion_code or "",
        ),
        idempotency_key=key,
    )
    data = legacy_subscription(reply.subscription, await catalog(billing))
    data.update(client_secret=reply.client_secret, intent_type=reply.intent_type)
    return envelope(data, status_code=201, created=True)


@router.get("/subscriptions/customer/{customer_id}", responses=ERRORS)
async def current_subscription(customer_id: StripeId, billing: ForCaller) -> JSONResponse:
    await check_customer(customer_id, billing)
    reply = await billing.list_subscriptions(billing_pb2.ListSubscriptionsRequest())
    live = next((s for s in reply.subscriptions if s.status in LIVE_STATUSES), None)
    return envelope({} if live is None else legacy_subscription(live, await catalog(billing)))


@router.get("/subscriptions/{subscription_id}", responses=ERRORS)
async def get_subscription(subscription_id: StripeId, billing: ForCaller) -> JSONResponse:
    reply = await billing.get_subscription(billing_pb2.GetSubscriptionRequest(id=subscription_id))
    return envelope(legacy_subscription(reply.subscription, await catalog(billing)))


@router.delete(
    "/subscriptions/{subscription_id}",
    summary="Cancel at the end of the paid period",
    responses=ERRORS,
)
async def cancel_subscription(subscription_id: StripeId, billing: ForManager) -> JSONResponse:
    reply = await billing.cancel_subscription(
        billing_pb2.CancelSubscriptionRequest(id=subscription_id)
    )
    return envelope(legacy_subscription(reply.subscription, await catalog(billing)), deleted=True)


@router.post("/setup-intents", status_code=201, responses=ERRORS)
async def create_setup_intent(
    body: LegacyIn, session: CurrentSession, billing: ForManager, key: IdempotencyKey
) -> JSONResponse:
    check_user(body.user_id, session)
    await check_customer(body.customer_id, billing)
    reply = await billing.create_setup_intent(
        billing_pb2.CreateSetupIntentRequest(), idempotency_key=key
    )
    return envelope(
        {"id": reply.setup_intent_id, "client_secret": reply.client_secret},
        status_code=201,
        created=True,
    )


@router.post("/ephemeral-keys", status_code=201, responses=ERRORS)
async def create_ephemeral_key(
    body: LegacyIn,
    session: CurrentSession,
    billing: ForManager,
    key: IdempotencyKey,
    stripe_version: StripeVersionHeader = None,
) -> JSONResponse:
    check_user(body.user_id, session)
    await check_customer(body.customer_id, billing)
    reply = await billing.create_ephemeral_key(
        billing_pb2.CreateEphemeralKeyRequest(stripe_version=stripe_version or STRIPE_API_VERSION),
        idempotency_key=key,
    )
    return envelope(
        {"secret": reply.secret, "customer": reply.stripe_customer_id},
        status_code=201,
        created=True,
    )


@router.post(
    "/payment-intents",
    status_code=201,
    summary="A one-time purchase of a catalog price",
    responses=ERRORS,
)
async def create_payment_intent(
    body: LegacyPaymentIn, session: CurrentSession, billing: ForManager, key: IdempotencyKey
) -> JSONResponse:
    check_user(body.user_id, session)
    await check_customer(body.customer_id, billing)
    price = body.price_id or await catalog_price_for(body.amount, body.currency, billing)
    reply = await billing.create_payment(
        billing_pb2.CreatePaymentRequest(price=price, quantity=1),
        idempotency_key=key,
    )
    return envelope(
        {
            "id": reply.payment_intent_id,
            "client_secret": reply.client_secret,
            "amount": reply.amount,
            "currency": reply.currency,
        },
        status_code=201,
        created=True,
    )


async def catalog_price_for(amount: int | None, currency: str | None, billing: ForCaller) -> str:
    """The one catalog one-time price with exactly this amount; a client's amount is never charged."""
    if amount is None or currency is None:
        raise ApiError(
            400, "invalid_request", "send priceId, or an amount and currency of a catalog price"
        )
    matches = [
        p.id
        for plan in (await catalog(billing)).plans
        for p in plan.prices
        if p.type == "one_time" and p.unit_amount == amount and p.currency == currency.lower()
    ]
    if len(matches) != 1:
        raise ApiError(
            400, "amount_not_in_catalog", "amounts come from the catalog: send a catalog priceId"
        )
    return matches[0]
