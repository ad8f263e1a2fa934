"""One-time purchases: a PaymentIntent for a one-time price of the catalog, whose amount always
comes from the catalog (price times quantity), never from the client."""

from dataclasses import dataclass

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from stripe.params import PaymentIntentCreateParams

from services.auth.principal import Principal
from services.billing.catalog import find_price
from services.billing.currencies import payable_price
from services.billing.customers import require_customer
from services.billing.errors import InvalidArgument
from services.billing.idempotency import RequestKey, stripe_options
from services.billing.settings import BillingRules
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscribe import checked_fixed_amount, checked_quantity
from services.billing.tax import taxed_amount


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    payment_intent_id: str
    client_secret: str
    amount: int  # what is charged, tax included
    currency: str
    stripe_customer_id: str
    tax: int = 0


async def create_payment(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    principal: Principal,
    price: str,
    quantity: int,
    currency: str = "",
    idempotency: RequestKey | None = None,
) -> PaymentRecord:
    """A PaymentIntent for the principal's customer: `quantity` of a one-time catalog price, in
    `currency` (see currencies.payable_price), payable by the methods the dashboard enables (or
    those of `rules.payment_method_types`), and with Stripe Tax on its tax (a Tax Calculation
    the intent names: services/billing/tax.py; `customer_tax_location_invalid` while the
    customer has no usable billing address)."""
    quantity = checked_quantity(quantity, default=1)
    record = await find_price(engine=engine, price=price)
    if record.type != "one_time":
        raise InvalidArgument(f"price {price!r} is not a one-time price")
    checked_fixed_amount(record)
    customer = await require_customer(engine=engine, principal=principal)
    record = payable_price(record, requested=currency, customer=customer)
    taxed = await taxed_amount(
        stripe_client=stripe_client,
        rules=rules,
        stripe_customer_id=customer.stripe_customer_id,
        currency=record.currency,
        amount=record.unit_amount * quantity,
        quantity=quantity,
        reference=record.id,
        idempotency=idempotency,
    )
    params: PaymentIntentCreateParams = {
        "amount": taxed.amount,
        "currency": record.currency,
        "customer": customer.stripe_customer_id,
        "automatic_payment_methods": {"enabled": True},
        "metadata": {
            "tatame_principal": principal.key,
            "tatame_price": record.id,
            "tatame_quantity": str(quantity),
        },
    }
    if taxed.calculation_id is not None:
        params["hooks"] = {"inputs": {"tax": {"calculation": taxed.calculation_id}}}
    if rules.payment_method_types:
        params["allowed_payment_method_types"] = list(rules.payment_method_types)
    async with translated_stripe_errors("create the payment"):
        intent = await stripe_client.v1.payment_intents.create_async(
            params=params, options=stripe_options(idempotency, "payment-intent")
        )
    return PaymentRecord(
        payment_intent_id=intent.id,
        client_secret=intent.client_secret or "",
        amount=taxed.amount,
        currency=record.currency,
        stripe_customer_id=customer.stripe_customer_id,
        tax=taxed.tax,
    )
