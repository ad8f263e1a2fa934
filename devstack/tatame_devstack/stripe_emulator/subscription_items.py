"""Subscription items as Stripe renders them at the pinned API version: each carries its
current period (since 2025-03-31) and its price, and the Plan that mirrors that price."""

from typing import Any

import stripe
from localstripe.resources import Plan, Subscription, SubscriptionItem

from tatame_devstack.stripe_emulator.catalog import Price
from tatame_devstack.stripe_emulator.render import expanded, expanded_under, shape


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


def extend_subscription_items() -> None:
    """Render localstripe's subscription items (ours are all of `PriceSubscription`s) as Stripe
    does at the pinned version."""
    SubscriptionItem._export = _export_item
