"""Discounts: what a coupon (maybe through a promotion code) takes off a subscription's invoices.

Stripe names a subscription's and an invoice's discounts by id (`di_…`); the rows of
`billing.subscriptions` and `billing.invoices` keep those ids in order, so they always say which
discounts apply. What each discount is — its coupon, its code, how much off and for how long —
is in `billing.discounts`, written from Stripe's expanded discounts whenever billing writes a
subscription through (`mirror_discounts`): its own answers, or one fetch for ids it has not
seen yet (a discount applied by Checkout, the portal or the Dashboard).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.mirror import (
    integer,
    mapping,
    optional,
    reference,
    string,
    unix_time,
    upsert,
)
from services.billing.models import discounts
from services.billing.stripe_errors import translated_stripe_errors

# What expands a subscription's discounts enough to mirror them.
EXPAND_DISCOUNTS = ["discounts.source.coupon", "discounts.promotion_code"]


@dataclass(frozen=True, slots=True)
class DiscountRecord:
    id: str  # "" in a preview
    coupon_id: str
    name: str | None
    promotion_code_id: str | None
    promotion_code: str | None
    percent_off: Decimal | None
    amount_off: int | None
    currency: str | None
    duration: str
    duration_in_months: int | None
    start: datetime | None
    end: datetime | None
    # On an invoice or a preview: the minor units it took off.
    amount: int = 0


def coupon_terms(coupon: dict[str, Any]) -> dict[str, Any]:
    """The columns a coupon gives a discount."""
    percent = coupon.get("percent_off")
    return {
        "coupon_id": string(coupon["id"]),
        "coupon_name": optional(string, coupon.get("name")),
        "percent_off": None if percent is None else Decimal(str(percent)),
        "amount_off": optional(integer, coupon.get("amount_off")),
        "currency": optional(string, coupon.get("currency")),
        "duration": string(coupon["duration"]),
        "duration_in_months": optional(integer, coupon.get("duration_in_months")),
    }


def discount_row(discount: dict[str, Any]) -> dict[str, Any]:
    """The `billing.discounts` row of a Stripe discount, its coupon and promotion code expanded."""
    code = discount.get("promotion_code")
    code_object = code if isinstance(code, dict) else None
    return {
        "id": string(discount["id"]),
        "stripe_customer_id": optional(reference, discount.get("customer")),
        **coupon_terms(mapping(mapping(discount["source"])["coupon"])),
        "promotion_code_id": optional(reference, code),
        "promotion_code": None if code_object is None else string(code_object["code"]),
        "start": unix_time(discount["start"]),
        "end": optional(unix_time, discount.get("end")),
    }


def discount_ids(obj: dict[str, Any]) -> list[str]:
    """The ids of the discounts of a subscription or an invoice (expanded or not), in order."""
    return [reference(discount) for discount in obj.get("discounts") or []]


def _expanded(subscription: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        d
        for d in subscription.get("discounts") or []
        if isinstance(d, dict) and isinstance(mapping(d["source"]).get("coupon"), dict)
    ]


async def mirror_discounts(
    conn: AsyncConnection, *, stripe_client: stripe.StripeClient, subscription: dict[str, Any]
) -> None:
    """Write the details of a subscription's discounts: from the object when it has them
    expanded, else (for ids the mirror lacks) from one fetch of the subscription."""
    ids = discount_ids(subscription)
    if not ids:
        return
    given = _expanded(subscription)
    known = set(
        (await conn.execute(select(discounts.c.id).where(discounts.c.id.in_(ids)))).scalars()
    )
    if set(ids) - known - {d["id"] for d in given}:
        async with translated_stripe_errors("retrieve the subscription's discounts"):
            fetched = await stripe_client.v1.subscriptions.retrieve_async(
                string(subscription["id"]), params={"expand": EXPAND_DISCOUNTS}
            )
        given = _expanded(fetched.to_dict())
    await upsert(conn, [discount_row(d) for d in given], table=discounts, touched="updated_at")


async def discount_records(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, DiscountRecord]:
    """The mirrored discounts with these ids, by id (an id not mirrored yet is left out)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    rows = await conn.execute(select(discounts).where(discounts.c.id.in_(wanted)))
    return {
        row.id: DiscountRecord(
            id=row.id,
            coupon_id=row.coupon_id,
            name=row.coupon_name,
            promotion_code_id=row.promotion_code_id,
            promotion_code=row.promotion_code,
            percent_off=row.percent_off,
            amount_off=row.amount_off,
            currency=row.currency,
            duration=row.duration,
            duration_in_months=row.duration_in_months,
            start=row.start,
            end=row.end,
        )
        for row in rows
    }


def in_order(
    ids: Sequence[str],
    known: dict[str, DiscountRecord],
    amounts: dict[str, int] | None = None,
) -> tuple[DiscountRecord, ...]:
    """The records of `ids` in order, each with the amount it took off (invoices)."""
    return tuple(replace(known[i], amount=(amounts or {}).get(i, 0)) for i in ids if i in known)
