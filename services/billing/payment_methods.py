"""Payment methods: mirrored from Stripe's payment method objects, attached or detached."""

from functools import partial
from operator import attrgetter
from typing import Any

from services.billing.mirror import (
    Mirror,
    Row,
    integer,
    mapping,
    optional,
    reference,
    string,
    upsert,
)
from services.billing.models import payment_methods


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
