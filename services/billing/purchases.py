"""One-time purchases: mirrored from the payment intents CreatePayment makes, their charges
(what was refunded, the receipt) and the disputes banks open on those charges; listed per
principal with one status.

A purchase is a payment intent whose metadata names a catalog price (`tatame_price`); other
payment intents (those of subscription invoices) are not purchases and are not mirrored here.
Charges and disputes are mirrored whatever they paid for: a dispute on a payment that is not a
purchase (a subscription's invoice) is logged and counted when it first arrives.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Any

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.auth.principal import Principal
from services.billing.async_payments import voucher_of
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
from services.billing.models import charges, disputes, purchases
from services.common.db import fetch_all

log = logging.getLogger(__name__)

MAX_LISTED = 100
# Dispute statuses while the bank has not decided, and the one where the merchant lost: a
# purchase in either grants nothing. `won`, `warning_closed` (an inquiry that became nothing)
# and `prevented` give its grant back.
UNDECIDED_DISPUTE_STATUSES = (
    "warning_needs_response",
    "warning_under_review",
    "needs_response",
    "under_review",
)
SUSPENDING_DISPUTE_STATUSES = (*UNDECIDED_DISPUTE_STATUSES, "lost")

SUBSCRIPTION_DISPUTES = Counter(
    "billing_subscription_disputes_total",
    "Disputes opened on payments that are not one-time purchases (subscription invoices)",
    ["reason"],
)


def is_purchase(payment_intent: dict[str, Any]) -> bool:
    """Whether a payment intent is a one-time purchase made by CreatePayment."""
    return "tatame_price" in (optional(mapping, payment_intent.get("metadata")) or {})


def purchase_row(payment_intent: dict[str, Any]) -> Row:
    """The `billing.purchases` row for a Stripe payment intent of a purchase."""
    metadata = mapping(payment_intent["metadata"])
    return {
        "id": string(payment_intent["id"]),
        "stripe_customer_id": reference(payment_intent["customer"]),
        "price_id": string(metadata["tatame_price"]),
        "quantity": int(string(metadata.get("tatame_quantity", "1"))),
        "amount": integer(payment_intent["amount"]),
        "currency": string(payment_intent["currency"]),
        "status": string(payment_intent["status"]),
        "latest_charge_id": optional(reference, payment_intent.get("latest_charge")),
        "created": unix_time(payment_intent["created"]),
        # A voucher to pay outside the app (a boleto, Pix) while it waits: async_payments.py.
        **voucher_of(payment_intent).row(),
    }


def charge_row(charge: dict[str, Any]) -> Row:
    """The `billing.charges` row for a Stripe charge."""
    return {
        "id": string(charge["id"]),
        "payment_intent_id": optional(reference, charge.get("payment_intent")),
        "stripe_customer_id": optional(reference, charge.get("customer")),
        "amount": integer(charge["amount"]),
        "amount_refunded": integer(charge["amount_refunded"]),
        "currency": string(charge["currency"]),
        "status": string(charge["status"]),
        "receipt_url": optional(string, charge.get("receipt_url")),
        "created": unix_time(charge["created"]),
    }


def dispute_row(dispute: dict[str, Any]) -> Row:
    """The `billing.disputes` row for a Stripe dispute."""
    return {
        "id": string(dispute["id"]),
        "charge_id": reference(dispute["charge"]),
        "payment_intent_id": optional(reference, dispute.get("payment_intent")),
        "amount": integer(dispute["amount"]),
        "currency": string(dispute["currency"]),
        "status": string(dispute["status"]),
        "reason": string(dispute["reason"]),
        "created": unix_time(dispute["created"]),
    }


# Of these disputes (id, payment intent), those billing has not stored yet and whose payment is
# not a purchase. Every dispute written is locked by then (mirror.locked_versions).
_NEW_SUBSCRIPTION_DISPUTES = text(
    "SELECT d.id FROM unnest(CAST(:ids AS text[]), CAST(:intents AS text[])) AS d(id, intent)"
    " WHERE NOT EXISTS (SELECT 1 FROM billing.disputes x WHERE x.id = d.id)"
    " AND NOT EXISTS (SELECT 1 FROM billing.purchases p WHERE p.id = d.intent)"
)


async def write_disputes(conn: AsyncConnection, rows: list[Row]) -> None:
    """Write disputes; log and count each new one on a payment that is not a purchase.

    Counted as written: should the transaction then fail and the event come again, it is
    counted again (rare; the counter is for alerting, the mirror is the record)."""
    found = await conn.execute(
        _NEW_SUBSCRIPTION_DISPUTES,
        {"ids": [r["id"] for r in rows], "intents": [r["payment_intent_id"] for r in rows]},
    )
    new = set(found.scalars())
    await upsert(conn, rows, table=disputes, touched="updated_at")
    for row in rows:
        if row["id"] in new:
            SUBSCRIPTION_DISPUTES.labels(reason=row["reason"]).inc()
            log.warning(
                "a payment that is not a purchase is disputed",
                extra={
                    "fields": {
                        "dispute": row["id"],
                        "charge": row["charge_id"],
                        "payment_intent": row["payment_intent_id"],
                        "amount": row["amount"],
                        "currency": row["currency"],
                        "reason": row["reason"],
                    }
                },
            )


PURCHASES = Mirror(
    object_type="payment_intent",
    table=purchases,
    key=purchases.c.id,
    row=purchase_row,
    service=attrgetter("v1.payment_intents"),
    write=partial(upsert, table=purchases, touched="updated_at"),
    wanted=is_purchase,
)
CHARGES = Mirror(
    object_type="charge",
    table=charges,
    key=charges.c.id,
    row=charge_row,
    service=attrgetter("v1.charges"),
    write=partial(upsert, table=charges, touched="updated_at"),
)
DISPUTES = Mirror(
    object_type="dispute",
    table=disputes,
    key=disputes.c.id,
    row=dispute_row,
    service=attrgetter("v1.disputes"),
    write=write_disputes,
)


def purchase_status(*, amount: int, amount_refunded: int, dispute_status: str | None) -> str:
    """What became of a paid purchase: `lost` (a dispute lost), `disputed` (the bank has not
    decided), `refunded` (all of it), `partially_refunded` or `succeeded`."""
    if dispute_status == "lost":
        return "lost"
    if dispute_status in UNDECIDED_DISPUTE_STATUSES:
        return "disputed"
    if amount_refunded >= amount > 0:
        return "refunded"
    if amount_refunded > 0:
        return "partially_refunded"
    return "succeeded"


# Statuses of a purchase that still grant what it bought.
GRANTING_STATUSES = frozenset({"succeeded", "partially_refunded"})

# The principal's paid purchases (`p`): the product bought (`pc` its price, `pr` the product),
# the charge that paid (`ch`: refunds, receipt) and the newest dispute of that charge (`d`).
# The one definition of a purchase's state, for listings and entitlements alike.
PAID_PURCHASES_OF_PRINCIPAL = """
FROM billing.purchases p
JOIN billing.customers c ON c.stripe_customer_id = p.stripe_customer_id
LEFT JOIN billing.prices pc ON pc.id = p.price_id
LEFT JOIN billing.products pr ON pr.id = pc.product_id
LEFT JOIN billing.charges ch ON ch.id = p.latest_charge_id
LEFT JOIN LATERAL (
    SELECT status FROM billing.disputes WHERE charge_id = p.latest_charge_id
    ORDER BY created DESC, id DESC LIMIT 1
) d ON true
WHERE c.principal = %s AND p.status = 'succeeded'
"""
# A purchase's amount, amount refunded, dispute status and when it was paid.
PURCHASE_STATE = """
COALESCE(ch.amount, p.amount), COALESCE(ch.amount_refunded, 0), d.status,
COALESCE(ch.created, p.created)
"""
_LIST_PURCHASES = (
    "SELECT p.id, p.price_id, pc.product_id, pr.name, p.quantity, p.currency, ch.receipt_url,"
    + PURCHASE_STATE
    + PAID_PURCHASES_OF_PRINCIPAL
    + "ORDER BY p.created DESC, p.id DESC LIMIT %s"
)


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    payment_intent_id: str
    price_id: str
    product_id: str | None
    product_name: str | None
    quantity: int
    currency: str
    receipt_url: str | None
    amount: int
    amount_refunded: int
    dispute_status: str | None
    paid_at: datetime

    @property
    def status(self) -> str:
        return purchase_status(
            amount=self.amount,
            amount_refunded=self.amount_refunded,
            dispute_status=self.dispute_status,
        )


async def list_purchases(*, engine: AsyncEngine, principal: Principal) -> list[PurchaseRecord]:
    """The principal's paid one-time purchases (the newest MAX_LISTED), newest first."""
    return await fetch_all(engine, _LIST_PURCHASES, (principal.key, MAX_LISTED), PurchaseRecord)
