"""Previewing a plan change: what it would bill, from Stripe's invoice preview (for an upgrade,
the invoice its proration lands on; for a downgrade, the first invoice at the new terms)."""

from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.mirror import integer, string
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscription_changes import TakesEffect, requested_change
from services.billing.tax import invoice_tax


@dataclass(frozen=True, slots=True)
class PreviewLine:
    description: str
    amount: int
    proration: bool


@dataclass(frozen=True, slots=True)
class Preview:
    amount_due: int
    currency: str
    tax: int  # Stripe Tax's, in `amount_due` (the subscription's automatic_tax)
    lines: list[PreviewLine]
    takes_effect: TakesEffect


def _is_proration(line: dict[str, Any]) -> bool:
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    return bool(details.get("proration"))


async def preview_change(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
    price: str,
    quantity: int,
    proration_behavior: str | None,
) -> Preview:
    """What a change would bill, from Stripe's invoice preview.

    For an upgrade, the invoice its proration lands on; for a downgrade, the first invoice at the
    new terms.
    """
    change = await requested_change(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
        price=price,
        quantity=quantity,
    )
    if change.takes_effect == "period_end":
        proration_behavior = "none"  # nothing is prorated at the period boundary
    async with translated_stripe_errors("preview the change"):
        invoice = await stripe_client.v1.invoices.create_preview_async(
            params={
                "customer": change.owned.customer.stripe_customer_id,
                "subscription": change.owned.data["id"],
                "subscription_details": {
                    "items": [
                        {
                            "id": change.item_id,
                            "price": change.new.price_id,
                            "quantity": change.new.quantity,
                        }
                    ],
                    "proration_behavior": proration_behavior or "create_prorations",
                },
            }
        )
    preview = invoice.to_dict()
    return Preview(
        amount_due=integer(preview["amount_due"]),
        currency=string(preview["currency"]),
        tax=invoice_tax(preview),
        lines=[
            PreviewLine(
                description=line.get("description") or "",
                amount=integer(line["amount"]),
                proration=_is_proration(line),
            )
            for line in preview["lines"]["data"]
        ],
        takes_effect=change.takes_effect,
    )
