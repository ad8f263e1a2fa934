"""Payment methods: mirrored from Stripe's payment method objects (attached or detached); the
principal's cards as Stripe has them; saving one (SetupIntent), the mobile SDK's ephemeral key."""

import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Any

import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from stripe.params import SetupIntentCreateParams

from services.auth.principal import Principal
from services.billing.customers import find_customer, require_customer
from services.billing.errors import InvalidArgument
from services.billing.idempotency import RequestKey, stripe_options
from services.billing.mirror import (
    Mirror,
    Row,
    integer,
    mapping,
    optional,
    reference,
    string,
    unix_time,
    upsert,
)
from services.billing.models import payment_methods
from services.billing.ownership import owned
from services.billing.settings import BillingRules
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscriptions import stripe_subscriptions
from services.common.subscription_statuses import LIVE_STATUSES


def payment_method_row(payment_method: dict[str, Any]) -> Row:
    """The `billing.payment_methods` row for a Stripe payment method object."""
    customer = optional(reference, payment_method.get("customer"))
    card = optional(mapping, payment_method.get("card")) or {}
    return {
        "id": string(payment_method["id"]),
        "stripe_customer_id": customer,
        "type": string(payment_method["type"]),
        "card_brand": optional(string, card.get("brand")),
        "card_last4": optional(string, card.get("last4")),
        "card_exp_month": optional(integer, card.get("exp_month")),
        "card_exp_year": optional(integer, card.get("exp_year")),
        "attached": customer is not None,
    }


PAYMENT_METHODS = Mirror(
    object_type="payment_method",
    table=payment_methods,
    key=payment_methods.c.id,
    row=payment_method_row,
    service=attrgetter("v1.payment_methods"),
    write=partial(upsert, table=payment_methods, touched="updated_at"),
)


# A Stripe API version as the mobile SDKs send it, e.g. "2020-08-27" or "2025-03-31.basil".
_STRIPE_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?")


@dataclass(frozen=True, slots=True)
class PaymentMethodRecord:
    id: str
    type: str
    card_brand: str | None
    card_last4: str | None
    card_exp_month: int | None
    card_exp_year: int | None
    is_default: bool


@dataclass(frozen=True, slots=True)
class EphemeralKeyRecord:
    secret: str
    stripe_customer_id: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class SetupIntentRecord:
    id: str
    client_secret: str
    stripe_customer_id: str


def _record(payment_method: dict[str, Any], default_id: str | None) -> PaymentMethodRecord:
    row = payment_method_row(payment_method)
    return PaymentMethodRecord(
        id=row["id"],
        type=row["type"],
        card_brand=row["card_brand"],
        card_last4=row["card_last4"],
        card_exp_month=row["card_exp_month"],
        card_exp_year=row["card_exp_year"],
        is_default=row["id"] == default_id,
    )


def checked_stripe_version(stripe_version: str) -> str:
    """The Stripe-Version a mobile SDK sent, checked for shape (Stripe checks the rest)."""
    if not _STRIPE_VERSION.fullmatch(stripe_version):
        raise InvalidArgument(
            "stripe_version must be a Stripe API version such as 2025-03-31.basil"
        )
    return stripe_version


async def ephemeral_key(
    *,
    stripe_client: stripe.StripeClient,
    stripe_customer_id: str,
    stripe_version: str,
    idempotency: RequestKey | None = None,
) -> EphemeralKeyRecord:
    """A short-lived key for the mobile SDK on the customer, made with the SDK's Stripe-Version."""
    async with translated_stripe_errors("create an ephemeral key"):
        key = await stripe_client.v1.ephemeral_keys.create_async(
            params={"customer": stripe_customer_id},
            options={
                "stripe_version": checked_stripe_version(stripe_version),
                **stripe_options(idempotency, "ephemeral-key"),
            },
        )
    return EphemeralKeyRecord(
        secret=key.secret or "",
        stripe_customer_id=stripe_customer_id,
        expires=unix_time(key.expires),
    )


async def create_ephemeral_key(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    stripe_version: str,
    idempotency: RequestKey | None = None,
) -> EphemeralKeyRecord:
    """An ephemeral key on the principal's customer for the mobile SDK (PaymentSheet)."""
    checked_stripe_version(stripe_version)
    customer = await require_customer(engine=engine, principal=principal)
    return await ephemeral_key(
        stripe_client=stripe_client,
        stripe_customer_id=customer.stripe_customer_id,
        stripe_version=stripe_version,
        idempotency=idempotency,
    )


async def create_setup_intent(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    principal: Principal,
    idempotency: RequestKey | None = None,
) -> SetupIntentRecord:
    """A SetupIntent to save a payment method on the principal's customer, for later charges:
    of those the dashboard enables that can be saved (or of `rules.payment_method_types`)."""
    customer = await require_customer(engine=engine, principal=principal)
    params: SetupIntentCreateParams = {
        "customer": customer.stripe_customer_id,
        "usage": "off_session",
        "automatic_payment_methods": {"enabled": True},
        "metadata": {"tatame_principal": principal.key},
    }
    if rules.payment_method_types:
        params["allowed_payment_method_types"] = list(rules.payment_method_types)
    async with translated_stripe_errors("create a setup intent"):
        intent = await stripe_client.v1.setup_intents.create_async(
            params=params, options=stripe_options(idempotency, "setup-intent")
        )
    return SetupIntentRecord(
        id=intent.id,
        client_secret=intent.client_secret or "",
        stripe_customer_id=customer.stripe_customer_id,
    )


async def _default_payment_method(
    stripe_client: stripe.StripeClient, stripe_customer_id: str
) -> str | None:
    async with translated_stripe_errors("retrieve the customer"):
        customer = await stripe_client.v1.customers.retrieve_async(stripe_customer_id)
    settings = customer.to_dict().get("invoice_settings") or {}
    return optional(reference, settings.get("default_payment_method"))


async def list_payment_methods(
    *, engine: AsyncEngine, stripe_client: stripe.StripeClient, principal: Principal
) -> list[PaymentMethodRecord]:
    """The payment methods of the principal's customer, from Stripe, its default marked."""
    customer = await find_customer(engine=engine, principal=principal)
    if customer is None:
        return []
    async with translated_stripe_errors("list the payment methods"):
        listed = await stripe_client.v1.customers.payment_methods.list_async(
            customer.stripe_customer_id, params={"limit": 100}
        )
        payment_methods = [pm.to_dict() async for pm in listed.auto_paging_iter()]
    default_id = await _default_payment_method(stripe_client, customer.stripe_customer_id)
    return [_record(pm, default_id) for pm in payment_methods]


async def set_default_payment_method(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    payment_method_id: str,
) -> PaymentMethodRecord:
    """Make one of the customer's payment methods the default of it and its live subscriptions.

    A subscription's own default (set by Checkout or PaymentSheet) comes before the customer's,
    so it is changed too.
    """
    found = await owned(
        stripe_client.v1.payment_methods.retrieve_async,
        payment_method_id,
        engine=engine,
        principal=principal,
        kind="payment method",
    )
    customer, payment_method = found.customer, found.data
    live = [
        subscription["id"]
        for subscription in await stripe_subscriptions(stripe_client, customer.stripe_customer_id)
        if subscription["status"] in LIVE_STATUSES
    ]
    async with translated_stripe_errors("set the default payment method"):
        await stripe_client.v1.customers.update_async(
            customer.stripe_customer_id,
            params={"invoice_settings": {"default_payment_method": payment_method_id}},
        )
        for subscription_id in live:
            await stripe_client.v1.subscriptions.update_async(
                subscription_id, params={"default_payment_method": payment_method_id}
            )
    return _record(payment_method, payment_method_id)


async def detach_payment_method(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    payment_method_id: str,
) -> None:
    """Detach one of the customer's payment methods (Stripe then unsets it as any default)."""
    await owned(
        stripe_client.v1.payment_methods.retrieve_async,
        payment_method_id,
        engine=engine,
        principal=principal,
        kind="payment method",
    )
    async with translated_stripe_errors("detach the payment method"):
        await stripe_client.v1.payment_methods.detach_async(payment_method_id)


# The card that pays a principal's subscription: its own default, else its customer's.
_DEFAULT_CARD = text("""
SELECT pm.id, pm.type, pm.card_brand, pm.card_last4, pm.card_exp_month, pm.card_exp_year
FROM billing.customers c
JOIN billing.payment_methods pm ON pm.id = COALESCE(
    (SELECT s.default_payment_method FROM billing.subscriptions s
     WHERE s.id = :subscription AND s.stripe_customer_id = c.stripe_customer_id),
    c.default_payment_method)
WHERE c.principal = :principal AND pm.attached AND pm.stripe_customer_id = c.stripe_customer_id
""")


async def default_card(
    conn: AsyncConnection, principal: Principal, subscription_id: str | None
) -> PaymentMethodRecord | None:
    """From the mirror: the payment method that pays the principal's subscription (its default,
    else the customer's), if it is mirrored and still attached."""
    row = (
        await conn.execute(
            _DEFAULT_CARD, {"principal": principal.key, "subscription": subscription_id}
        )
    ).first()
    return None if row is None else PaymentMethodRecord(**row._mapping, is_default=True)
