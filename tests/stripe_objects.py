"""Stripe objects as Stripe sends them at the pinned API version, for tests that hand-make
payloads. Each builder fills what a test does not care about and goes through the emulator's
`shape` (derived from stripe-python's types), so that a payload with a field the version does
not have, or without one it always has, fails the test that builds it."""

import secrets
import time
from typing import Any

import stripe
from tatame_devstack.stripe_emulator.render import render_list, shape

from services.common.stripe_sdk import STRIPE_API_VERSION

T0 = 1_790_000_000
MONTH = 30 * 86_400
SUBSCRIPTION = stripe.Subscription
INVOICE = stripe.Invoice
SCHEDULE = stripe.SubscriptionSchedule


def event_envelope(
    event_type: str,
    obj: dict[str, Any],
    *,
    created: int | None = None,
    event_id: str | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    """A Stripe event carrying `obj`, as a webhook endpoint receives it: a new id unless
    `event_id` is given, stamped `created` (now when None)."""
    return shape(
        stripe.Event,
        {
            "id": event_id or "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": STRIPE_API_VERSION,
            "created": int(time.time()) if created is None else created,
            "data": shape(stripe.Event.Data, {"object": obj}),
            "livemode": livemode,
            "pending_webhooks": 1,
            "request": shape(stripe.Event.Request, {"id": None, "idempotency_key": None}),
            "type": event_type,
        },
    )


def price(id: str = "price_1", *, product: str = "prod_1", unit_amount: int = 1900) -> dict:
    recurring = {"interval": "month", "interval_count": 1, "usage_type": "licensed"}
    return shape(
        stripe.Price,
        {
            "id": id,
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": T0,
            "currency": "usd",
            "livemode": False,
            "metadata": {},
            "product": product,
            "recurring": shape(stripe.Price.Recurring, recurring),
            "type": "recurring",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        },
    )


def plan(of: dict[str, Any]) -> dict[str, Any]:
    """The Plan that Stripe still nests in a subscription item beside its price."""
    return shape(
        stripe.Plan,
        {
            "id": of["id"],
            "object": "plan",
            "active": of["active"],
            "amount": of["unit_amount"],
            "billing_scheme": "per_unit",
            "created": of["created"],
            "currency": of["currency"],
            "interval": of["recurring"]["interval"],
            "interval_count": of["recurring"]["interval_count"],
            "livemode": False,
            "product": of["product"],
            "usage_type": "licensed",
        },
    )


def subscription(
    id: str = "sub_1",
    *,
    customer: Any = "cus_1",
    status: str = "active",
    item_price: dict[str, Any] | None = None,
    quantity: int = 1,
    period: tuple[int, int] = (T0, T0 + MONTH),
    **values: Any,
) -> dict[str, Any]:
    """A subscription of one item of `item_price` (a recurring price by default)."""
    item_price = item_price or price()
    item = shape(
        stripe.SubscriptionItem,
        {
            "id": "si_" + id.removeprefix("sub_"),
            "object": "subscription_item",
            "created": T0,
            "current_period_start": period[0],
            "current_period_end": period[1],
            "discounts": [],
            "metadata": {},
            "plan": plan(item_price),
            "price": item_price,
            "quantity": quantity,
            "subscription": id,
        },
    )
    issuer = shape(SUBSCRIPTION.InvoiceSettings.Issuer, {"type": "self"})
    return shape(
        SUBSCRIPTION,
        {
            "id": id,
            "object": "subscription",
            "automatic_tax": shape(SUBSCRIPTION.AutomaticTax, {"enabled": False}),
            "billing_cycle_anchor": T0,
            "billing_mode": shape(SUBSCRIPTION.BillingMode, {"type": "flexible"}),
            "billing_schedules": [],
            "cancel_at_period_end": False,
            "collection_method": "charge_automatically",
            "created": T0,
            "currency": "usd",
            "customer": customer,
            "discounts": [],
            "invoice_settings": shape(SUBSCRIPTION.InvoiceSettings, {"issuer": issuer}),
            "items": render_list(f"/v1/subscription_items?subscription={id}", [item]),
            "livemode": False,
            "metadata": {},
            "start_date": T0,
            "status": status,
            **values,
        },
    )


def invoice(
    id: str = "in_1", *, subscription: str | None = None, total: int = 1900, **values: Any
) -> dict[str, Any]:
    """An open invoice of `total`, of `subscription` (named under `parent`) if given."""
    parent = None
    if subscription is not None:
        details = shape(INVOICE.Parent.SubscriptionDetails, {"subscription": subscription})
        parent = shape(
            INVOICE.Parent, {"type": "subscription_details", "subscription_details": details}
        )
    return shape(
        INVOICE,
        {
            "id": id,
            "object": "invoice",
            "amount_due": total,
            "amount_overpaid": 0,
            "amount_paid": 0,
            "amount_remaining": total,
            "amount_shipping": 0,
            "attempt_count": 0,
            "attempted": False,
            "automatic_tax": shape(INVOICE.AutomaticTax, {"enabled": False}),
            "collection_method": "charge_automatically",
            "created": T0,
            "currency": "usd",
            "customer": "cus_1",
            "default_tax_rates": [],
            "discounts": [],
            "issuer": shape(INVOICE.Issuer, {"type": "self"}),
            "lines": render_list(f"/v1/invoices/{id}/lines", []),
            "livemode": False,
            "parent": parent,
            "payment_settings": shape(INVOICE.PaymentSettings, {}),
            "period_end": T0,
            "period_start": T0,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "starting_balance": 0,
            "status": "open",
            "status_transitions": shape(INVOICE.StatusTransitions, {}),
            "subtotal": total,
            "total": total,
            **values,
        },
    )


def schedule_phase(start: int, end: int, *items: tuple[Any, int]) -> dict[str, Any]:
    """A phase from `start` to `end` of the (price, quantity) `items`."""
    return shape(
        SCHEDULE.Phase,
        {
            "add_invoice_items": [],
            "currency": "usd",
            "discounts": [],
            "end_date": end,
            "items": [
                shape(
                    SCHEDULE.Phase.Item,
                    {
                        "discounts": [],
                        "plan": item if isinstance(item, str) else item["id"],
                        "price": item,
                        "quantity": quantity,
                    },
                )
                for item, quantity in items
            ],
            "proration_behavior": "create_prorations",
            "start_date": start,
        },
    )


def schedule(
    id: str = "sub_sched_1", *, phases: list[dict[str, Any]], **values: Any
) -> dict[str, Any]:
    issuer = shape(SCHEDULE.DefaultSettings.InvoiceSettings.Issuer, {"type": "self"})
    settings = {
        "billing_cycle_anchor": "automatic",
        "invoice_settings": shape(SCHEDULE.DefaultSettings.InvoiceSettings, {"issuer": issuer}),
    }
    return shape(
        SCHEDULE,
        {
            "id": id,
            "object": "subscription_schedule",
            "billing_mode": shape(SCHEDULE.BillingMode, {"type": "flexible"}),
            "created": T0,
            "customer": "cus_1",
            "default_settings": shape(SCHEDULE.DefaultSettings, settings),
            "end_behavior": "release",
            "livemode": False,
            "pause_schedules": [],
            "phases": phases,
            "status": "active",
            "subscription": "sub_1",
            **values,
        },
    )
