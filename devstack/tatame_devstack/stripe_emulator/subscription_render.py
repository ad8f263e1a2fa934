"""Subscriptions, their items and Plans as Stripe renders them at the pinned API version: an
item carries its current period (since 2025-03-31), its price, and the Plan that mirrors it."""

import time
from typing import Any

import stripe
from localstripe.resources import Plan, Subscription, SubscriptionItem

from tatame_devstack.stripe_emulator.catalog import Price
from tatame_devstack.stripe_emulator.discounts import live_discounts
from tatame_devstack.stripe_emulator.pauses import render_pause_collection
from tatame_devstack.stripe_emulator.pending_updates import render_pending_update
from tatame_devstack.stripe_emulator.render import expanded, expanded_under, render_list, shape
from tatame_devstack.stripe_emulator.tax import subscription_automatic_tax

SUBSCRIPTION = stripe.Subscription


def render_plan(plan: Plan) -> dict[str, Any]:
    """The Plan that mirrors a recurring price (Stripe still nests it in subscription items)."""
    return shape(
        stripe.Plan,
        {
            "id": plan.id,
            "object": "plan",
            "active": plan.active,
            "amount": plan.amount,
            "amount_decimal": str(plan.amount),
            "billing_scheme": "per_unit",
            "created": plan.created,
            "currency": plan.currency,
            "interval": plan.interval,
            "interval_count": plan.interval_count,
            "livemode": False,
            "metadata": plan.metadata or {},
            "nickname": plan.nickname,
            "product": plan.product,
            "usage_type": plan.usage_type,
        },
    )


def _export_item(item: SubscriptionItem, expand: Any = None) -> dict[str, Any]:
    expand = expand or []
    subscription = Subscription._api_retrieve(item._subscription)
    price = Price._api_retrieve(item.plan.id)._export(expand=expanded_under(expand, "price"))
    values = {
        "id": item.id,
        "object": "subscription_item",
        "created": item.created,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "discounts": [],
        "metadata": item.metadata or {},
        "plan": render_plan(item.plan),
        "price": price,
        "quantity": item.quantity,
        "subscription": item._subscription,
        "tax_rates": [],
    }
    return expanded(shape(stripe.SubscriptionItem, values, expand=expand), expand)


def _export_plan(plan: Plan, expand: Any = None) -> dict[str, Any]:
    return expanded(render_plan(plan), expand or [])


def extend_subscription_items() -> None:
    """Render localstripe's subscription items (ours are all of `PriceSubscription`s) and the
    Plans that mirror recurring prices as Stripe does at the pinned version."""
    SubscriptionItem._export = _export_item
    Plan._export = _export_plan


def render_subscription(subscription: Any, expand: list[str]) -> dict[str, Any]:
    """A `PriceSubscription` as Stripe renders it at the pinned version (flexible billing mode,
    the period on its items)."""
    items = [
        item._export(expand=expanded_under(expanded_under(expand, "items"), "data"))
        for item in subscription.items._list
    ]
    issuer = shape(SUBSCRIPTION.InvoiceSettings.Issuer, {"type": "self"})
    saves = "on_subscription" if subscription._saves_payment_method else "off"
    end_behavior = shape(
        SUBSCRIPTION.TrialSettings.EndBehavior,
        {"missing_payment_method": subscription._missing_payment_method},
    )
    values = {
        "id": subscription.id,
        "object": "subscription",
        "automatic_tax": subscription_automatic_tax(enabled=subscription._automatic_tax),
        "billing_cycle_anchor": subscription.billing_cycle_anchor or subscription.start_date,
        "billing_mode": shape(
            SUBSCRIPTION.BillingMode,
            {
                "type": "flexible",
                "flexible": shape(
                    SUBSCRIPTION.BillingMode.Flexible, {"proration_discounts": "included"}
                ),
                "updated_at": subscription.created,
            },
        ),
        "billing_schedules": [],
        "cancel_at": subscription.cancel_at,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": subscription.canceled_at,
        "cancellation_details": shape(
            SUBSCRIPTION.CancellationDetails,
            {"reason": "cancellation_requested" if subscription.canceled_at else None},
        ),
        "collection_method": "charge_automatically",
        "created": subscription.created,
        "currency": subscription.items._list[0].plan.currency,
        "customer": subscription.customer,
        "default_payment_method": subscription.default_payment_method,
        "default_tax_rates": [],
        "discounts": live_discounts(subscription._discount_ids, int(time.time())),
        "ended_at": subscription.ended_at,
        "invoice_settings": shape(SUBSCRIPTION.InvoiceSettings, {"issuer": issuer}),
        "items": render_list(subscription.items.url, items),
        "latest_invoice": subscription.latest_invoice,
        "livemode": False,
        "metadata": subscription.metadata,
        "pause_collection": render_pause_collection(subscription.pause_collection),
        "payment_settings": shape(
            SUBSCRIPTION.PaymentSettings,
            {
                "payment_method_types": subscription._payment_method_types,
                "save_default_payment_method": saves,
            },
        ),
        "pending_setup_intent": subscription.pending_setup_intent,
        "pending_update": render_pending_update(subscription),
        "schedule": subscription.schedule,
        "start_date": subscription.start_date,
        "status": subscription.status,
        "trial_end": subscription.trial_end,
        "trial_settings": shape(SUBSCRIPTION.TrialSettings, {"end_behavior": end_behavior}),
        "trial_start": subscription.trial_start,
    }
    return expanded(shape(stripe.Subscription, values, expand=expand), expand)
