"""Invoices (Stripe's fields on localstripe's classes), their lines, and previews."""

import time
from collections.abc import Callable
from typing import Any

from localstripe.resources import Invoice, InvoiceLineItem, PaymentIntent, Plan, random_id

from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import as_int, as_str, param_error, reject_unknown
from tatame_devstack.stripe_emulator.subscriptions import (
    PRORATION_BEHAVIORS,
    TIMES,
    PriceSubscription,
    add_interval,
    interval_changes,
    new_terms,
    proration_lines,
    subscription_named,
)

HOSTED_INVOICES = "https://invoice.stripe-emulator.invalid/i"


def extend_invoices() -> None:
    """Add Stripe's invoice fields that localstripe lacks, on its classes: its subscriptions and
    payment intents use them by those names. A draft has no number and no links yet; a line's
    `parent` (API 2025-03-31) says what it bills and whether it is a proration."""

    def finalized(field: Callable[[Any], Any]) -> property:
        return property(lambda invoice: None if invoice._draft else field(invoice))

    def confirmation_secret(invoice: Any) -> dict[str, str] | None:
        if invoice.payment_intent is None:
            return None
        intent = PaymentIntent._api_retrieve(invoice.payment_intent)
        return {"client_secret": intent.client_secret, "type": "payment_intent"}

    def line_parent(line: Any) -> dict[str, Any]:
        details = {
            "proration": line.proration,
            "proration_details": {"credited_items": None},
            "subscription": line.subscription,
            "invoice_item": getattr(line, "invoice_item", None),
        }
        if line.subscription is None:
            return {"type": "invoice_item_details", "invoice_item_details": details}
        details["subscription_item"] = getattr(line, "subscription_item", None)
        return {"type": "subscription_item_details", "subscription_item_details": details}

    paid = Invoice._on_payment_success

    def on_payment_success(invoice: Any) -> None:
        send_event("invoice.paid", invoice)
        paid(invoice)

    Invoice.amount_remaining = property(lambda invoice: invoice.amount_due - invoice.amount_paid)
    Invoice.number = finalized(lambda invoice: invoice.id.removeprefix("in_")[:8].upper() + "-0001")
    Invoice.hosted_invoice_url = finalized(lambda invoice: f"{HOSTED_INVOICES}/{invoice.id}")
    Invoice.invoice_pdf = finalized(lambda invoice: f"{HOSTED_INVOICES}/{invoice.id}/pdf")
    Invoice.confirmation_secret = finalized(confirmation_secret)
    Invoice._on_payment_success = on_payment_success
    InvoiceLineItem.parent = property(line_parent)


def _preview_line(
    subscription: PriceSubscription,
    *,
    amount: int,
    description: str,
    plan: Plan,
    quantity: int,
    proration: bool,
    period: tuple[int, int],
) -> dict[str, Any]:
    return {
        "id": "il_tmp_" + random_id(14),
        "object": "line_item",
        "amount": amount,
        "subtotal": amount,
        "currency": plan.currency,
        "description": description,
        "livemode": False,
        "metadata": {},
        "quantity": quantity,
        "period": {"start": period[0], "end": period[1]},
        "parent": {
            "type": "subscription_item_details",
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription.id,
                "subscription_item": subscription.items._list[0].id,
            },
        },
        "pricing": {
            "type": "price_details",
            "price_details": {"price": plan.id, "product": plan.product},
            "unit_amount_decimal": str(plan.amount),
        },
    }


def preview_invoice(
    customer: Any = None,
    subscription: Any = None,
    subscription_details: Any = None,
    **unknown: Any,
) -> dict[str, Any]:
    """`POST /v1/invoices/create_preview` for a change of a subscription's item: the invoice it
    leads to, stored nowhere. With `always_invoice`, the prorations billed now; otherwise the
    next invoice: prorations (unless `none`) and the next period at the new terms. An interval
    change bills the prorations and a new period now."""
    reject_unknown(unknown)
    found = subscription_named("subscription", subscription)
    if found.customer != as_str("customer", customer):
        raise param_error("customer", "The subscription belongs to another customer.")
    if subscription_details is not None and not isinstance(subscription_details, dict):
        raise param_error("subscription_details", "Invalid subscription_details: expected a hash")
    details = dict(subscription_details or {})
    item = found.items._list[0]
    plan, quantity = new_terms(found, details.pop("items", None)) or (item.plan, item.quantity)
    behavior = as_str(
        "subscription_details[proration_behavior]",
        details.pop("proration_behavior", "create_prorations"),
        choices=PRORATION_BEHAVIORS,
    )
    now = int(time.time())
    at = as_int(
        "subscription_details[proration_date]", details.pop("proration_date", now), minimum=1
    )
    reject_unknown(details, parent="subscription_details")

    changed = (plan.id, quantity) != (item.plan.id, item.quantity)
    charged = changed and found.status != "trialing"
    lines = []
    if charged and behavior != "none":
        lines += [
            _preview_line(
                found,
                amount=line["amount"],
                description=line["description"],
                plan=line["plan"],
                quantity=line["quantity"],
                proration=True,
                period=(at, found.current_period_end),
            )
            for line in proration_lines(found, plan, quantity, at)
        ]
    if charged and interval_changes(item.plan, plan):
        start: int | None = at
    elif behavior == "always_invoice" and charged:
        start = None
    else:
        start = found.current_period_end
    if start is not None:
        end = add_interval(start, plan.interval, plan.interval_count)
        lines.append(
            _preview_line(
                found,
                amount=plan.amount * quantity,
                description=f"{quantity} {TIMES} {plan.name}",
                plan=plan,
                quantity=quantity,
                proration=False,
                period=(start, end),
            )
        )
    total = sum(line["amount"] for line in lines)
    return {
        "id": "upcoming_in_" + random_id(14),
        "object": "invoice",
        "livemode": False,
        "created": now,
        "customer": found.customer,
        "currency": plan.currency,
        "status": "draft",
        "amount_due": max(0, total),
        "amount_paid": 0,
        "amount_remaining": max(0, total),
        "subtotal": total,
        "total": total,
        "period_start": min(line["period"]["start"] for line in lines),
        "period_end": max(line["period"]["end"] for line in lines),
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": found.id, "metadata": dict(found.metadata)},
        },
        "lines": {"object": "list", "data": lines, "has_more": False, "url": "/v1/invoices/lines"},
    }
