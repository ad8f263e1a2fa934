"""Invoices: mirrored from Stripe's invoice objects, listed per principal."""

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, Literal

from sqlalchemy import Row as Row_
from sqlalchemy import Select, case, func, select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.auth.principal import Principal
from services.billing.discounts import DiscountRecord, discount_ids, discount_records, in_order
from services.billing.mirror import (
    Mirror,
    Row,
    integer,
    mapping,
    optional,
    reference,
    string,
    unix_time,
)
from services.billing.models import customers, invoices

MAX_LISTED = 100
# What an open invoice's payment waits for: the card holder's authentication (3-D Secure), or
# another card (the charge was declined).
PaymentAction = Literal["authenticate", "pay"]


def _subscription_of(invoice: dict[str, Any]) -> object:
    """The subscription an invoice bills, named under `parent` (since API version 2025-03-31)."""
    parent = optional(mapping, invoice["parent"]) or {}
    details = optional(mapping, parent.get("subscription_details")) or {}
    return details.get("subscription")


def invoice_row(invoice: dict[str, Any]) -> Row:
    """The `billing.invoices` row for a Stripe invoice object (amounts in minor units)."""
    return {
        "id": string(invoice["id"]),
        "stripe_customer_id": reference(invoice["customer"]),
        "subscription_id": optional(reference, _subscription_of(invoice)),
        "status": optional(string, invoice.get("status")),
        "currency": string(invoice["currency"]),
        "amount_due": integer(invoice["amount_due"]),
        "amount_paid": integer(invoice["amount_paid"]),
        "amount_remaining": integer(invoice["amount_remaining"]),
        "total": integer(invoice["total"]),
        "hosted_invoice_url": optional(string, invoice.get("hosted_invoice_url")),
        "invoice_pdf": optional(string, invoice.get("invoice_pdf")),
        "number": optional(string, invoice.get("number")),
        "period_start": optional(unix_time, invoice.get("period_start")),
        "period_end": optional(unix_time, invoice.get("period_end")),
        "created": unix_time(invoice["created"]),
        **_discounts_of(invoice),
        # What the payment waits for is not on the invoice: events and billing's own answers
        # say it (`with_payment_action`); a row without it keeps the one stored (`_write`).
        "payment_action": None,
    }


def with_payment_action(row: Row, action: PaymentAction) -> Row:
    """An invoice row that records what its open invoice's payment waits for."""
    return {**row, "payment_action": action}


def _discounts_of(invoice: dict[str, Any]) -> Row:
    """Which discounts an invoice applied, and what each took off (Stripe's
    `total_discount_amounts`)."""
    amounts = [
        {"discount": reference(entry["discount"]), "amount": integer(entry["amount"])}
        for entry in (invoice.get("total_discount_amounts") or [])
        if mapping(entry).get("discount") is not None
    ]
    return {
        "discount_ids": discount_ids(invoice),
        "discount_amounts": amounts,
        "total_discount_amount": sum(entry["amount"] for entry in amounts),
    }


@functools.cache
def _invoice_upsert(columns: tuple[str, ...]) -> Insert:
    """The upsert of an invoice row of these columns, built once (see `mirror.upsert`)."""
    stmt = insert(invoices)
    excluded = stmt.excluded
    changed: dict[str, Any] = {name: excluded[name] for name in columns if name != "id"}
    changed["updated_at"] = func.now()
    stored = invoices.c.payment_action
    changed["payment_action"] = case(
        (excluded.status.is_distinct_from("open"), None),
        (excluded.payment_action.is_(None), stored),
        # Stripe announces a payment waiting for authentication with invoice.payment_failed
        # and invoice.payment_action_required in one second, in either order.
        (
            (stored == "authenticate")
            & (excluded.source_event_created == invoices.c.source_event_created),
            stored,
        ),
        else_=excluded.payment_action,
    )
    return stmt.on_conflict_do_update(index_elements=["id"], set_=changed)


async def _write(conn: AsyncConnection, rows: list[Row]) -> None:
    """Upsert invoice rows; `payment_action` is the newest one said while the invoice is open
    (a row that says none keeps it; within one second, `authenticate` wins) and is cleared once
    it is not open."""
    await conn.execute(_invoice_upsert(tuple(rows[0])), rows)


INVOICES = Mirror(
    object_type="invoice",
    table=invoices,
    key=invoices.c.id,
    row=invoice_row,
    service=attrgetter("v1.invoices"),
    write=_write,
    carried=("payment_action",),
)


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    id: str
    subscription_id: str | None
    status: str | None
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    total: int
    number: str | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    created: datetime
    period_start: datetime | None
    period_end: datetime | None
    total_discount_amount: int
    # The discounts applied (those whose details the mirror holds), each with its amount.
    discounts: tuple[DiscountRecord, ...] = ()


_RECORD_COLUMNS = [invoices.c[f.name] for f in fields(InvoiceRecord) if f.name != "discounts"]


def _principal_invoices(principal: Principal) -> Select[Any]:
    """The principal's invoices as InvoiceRecord columns, with their discounts."""
    return (
        select(*_RECORD_COLUMNS, invoices.c.discount_ids, invoices.c.discount_amounts)
        .join(customers, customers.c.stripe_customer_id == invoices.c.stripe_customer_id)
        .where(customers.c.principal == principal.key)
        .order_by(invoices.c.created.desc(), invoices.c.id.desc())
    )


async def _records(conn: AsyncConnection, rows: Sequence[Row_[Any]]) -> list[InvoiceRecord]:
    """Records of rows of `_principal_invoices`, each with its mirrored discounts."""
    known = await discount_records(conn, (i for row in rows for i in row.discount_ids))
    records = []
    for row in rows:
        values = dict(row._mapping)
        values.pop("payment_action", None)
        ids = values.pop("discount_ids")
        amounts = {entry["discount"]: entry["amount"] for entry in values.pop("discount_amounts")}
        records.append(InvoiceRecord(**values, discounts=in_order(ids, known, amounts)))
    return records


async def list_invoices(*, engine: AsyncEngine, principal: Principal) -> list[InvoiceRecord]:
    """The principal's invoices of some amount (the newest MAX_LISTED), newest first, from the
    mirror. An invoice of total 0 (the one with which Stripe starts a trial) is mirrored but not
    listed: nothing was charged or is due on it, and the trial it records is the subscription's
    `trial_start`/`trial_end`, which the app already shows."""
    query = _principal_invoices(principal).where(invoices.c.total != 0).limit(MAX_LISTED)
    async with engine.connect() as conn:
        return await _records(conn, (await conn.execute(query)).all())


async def awaiting_payment(
    conn: AsyncConnection, principal: Principal
) -> tuple[InvoiceRecord, PaymentAction] | None:
    """The principal's newest open invoice with an amount left to pay, and what its payment
    waits for (`pay` unless an attempt asked for authentication)."""
    query = (
        _principal_invoices(principal)
        .add_columns(invoices.c.payment_action)
        .where(invoices.c.status == "open", invoices.c.amount_remaining > 0)
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    [record] = await _records(conn, [row])
    action: PaymentAction = "authenticate" if row.payment_action == "authenticate" else "pay"
    return record, action
