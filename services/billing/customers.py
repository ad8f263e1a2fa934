"""Customers: exactly one Stripe customer per principal."""

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

import stripe
from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from stripe.params import CustomerCreateParams

from services.auth.principal import Principal
from services.billing.errors import Conflict, InvalidArgument, NotFound, StripeRejected
from services.billing.mirror import Mirror, Row, mapping, optional, reference, string
from services.billing.models import customer_creations, customers
from services.billing.stripe_errors import translated_stripe_errors
from services.common.db import fetch_all
from services.common.errors import ErrorReason

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 256
# The metadata key naming the principal a Stripe customer was made for.
PRINCIPAL_KEY = "tatame_principal"


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    principal: str
    stripe_customer_id: str
    email: str
    name: str
    created_at: datetime
    # Stripe's: set by the first subscription or invoice, never changed after; None before.
    currency: str | None = None


def idempotency_key(*, principal: Principal, email: str, name: str, erasures: int = 0) -> str:
    """Stripe idempotency key of a customer creation: one per principal and contact details, so
    Stripe never sees one key with other parameters (its `idempotency_error`); and one per
    erasure of the principal, so that a principal erased and back (privacy/erasure.py) gets a new
    customer, not the deleted one's answer."""
    parts = (principal.key, email, name, *((str(erasures),) if erasures else ()))
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"tatame-customer-v2:{digest}"


def validate_contact(*, email: str, name: str) -> tuple[str, str]:
    """Normalise and check the contact details sent for a new customer."""
    email, name = email.strip(), name.strip()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise InvalidArgument("email must be a valid address of at most 254 characters")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument("name must be at most 256 characters")
    return email, name


async def lock_principal(conn: AsyncConnection, principal: Principal) -> None:
    """Hold the principal's lock until `conn`'s transaction ends (creating, subscribing)."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"tatame-customer-v1:{principal.key}"},
    )


_CUSTOMER_OF = (
    "SELECT principal, stripe_customer_id, email, name, created_at, currency"
    " FROM billing.customers WHERE principal = %s"
)


async def _select(conn: AsyncConnection, principal: Principal) -> CustomerRecord | None:
    """The principal's customer as `conn`'s transaction sees it (under the principal's lock)."""
    row = (await conn.exec_driver_sql(_CUSTOMER_OF, (principal.key,))).first()
    return None if row is None else CustomerRecord(**row._mapping)


async def get_customer(*, engine: AsyncEngine, principal: Principal) -> CustomerRecord:
    """The principal's customer, or NotFound."""
    record = await find_customer(engine=engine, principal=principal)
    if record is None:
        raise NotFound("no customer exists for this account yet")
    return record


async def find_customer(*, engine: AsyncEngine, principal: Principal) -> CustomerRecord | None:
    """The principal's customer, or None (a prepared statement: GetCustomer's hot path)."""
    rows = await fetch_all(engine, _CUSTOMER_OF, (principal.key,), CustomerRecord)
    return rows[0] if rows else None


async def require_customer(*, engine: AsyncEngine, principal: Principal) -> CustomerRecord:
    """The principal's customer; Conflict `customer_required` where an action needs one first."""
    record = await find_customer(engine=engine, principal=principal)
    if record is None:
        raise Conflict(
            "create the customer first (CreateCustomer)", reason=ErrorReason.CUSTOMER_REQUIRED
        )
    return record


async def customer_for_purchase(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    email: str,
    name: str,
    test_clock_prefix: str | None,
) -> CustomerRecord:
    """The principal's customer; created from `email` and `name` when it has none yet, and
    Conflict `customer_required` when it has none and the caller sent no email."""
    if not email:
        return await require_customer(engine=engine, principal=principal)
    record = await find_customer(engine=engine, principal=principal)
    if record is not None:
        return record
    record, _ = await create_or_get_customer(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        email=email,
        name=name,
        test_clock_prefix=test_clock_prefix,
    )
    return record


async def create_or_get_customer(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    email: str,
    name: str,
    test_clock_prefix: str | None = None,
) -> tuple[CustomerRecord, bool]:
    """The principal's customer, creating it in Stripe first if needed; True when created here.

    Concurrent calls for one principal queue on a transaction-scoped advisory lock, so only one
    reaches Stripe at a time. The first attempt's contact details are recorded before Stripe is
    asked (`customer_creations`); when an attempt's answer was lost (a crash, a timeout), the
    next one finds the customer it made by that email and the principal in its metadata, or
    makes it with those same details and key. So a retry with other details neither meets
    Stripe's `idempotency_error` nor, once Stripe has forgotten the key, makes a second customer.
    Details Stripe refused (it made nothing) give way to the next attempt's.
    """
    email, name = validate_contact(email=email, name=name)
    async with engine.connect() as conn:
        existing = await _select(conn, principal)
    if existing is not None:
        return existing, False
    first_attempt = await _record_attempt(engine, principal, email=email, name=name)
    try:
        return await _create_once(
            engine=engine,
            stripe_client=stripe_client,
            principal=principal,
            first=first_attempt,
            test_clock_prefix=test_clock_prefix,
        )
    except StripeRejected:
        # Stripe made nothing with those details: the next attempt may send its own.
        async with engine.begin() as conn:
            await conn.execute(
                update(customer_creations)
                .where(customer_creations.c.principal == principal.key)
                .values(refused_at=func.now())
            )
        raise


async def _create_once(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    first: bool,
    test_clock_prefix: str | None,
) -> tuple[CustomerRecord, bool]:
    """Under the principal's lock: its customer, found or made from the recorded attempt."""
    async with engine.begin() as conn:
        await lock_principal(conn, principal)
        existing = await _select(conn, principal)
        if existing is not None:
            return existing, False
        attempt = (
            await conn.execute(
                select(customer_creations).where(customer_creations.c.principal == principal.key)
            )
        ).one()
        made = None if first else await _made_before(stripe_client, principal, attempt.email)
        if made is None:
            erasures = (
                await conn.execute(
                    text("SELECT count(*) FROM billing.erasures WHERE principal = :principal"),
                    {"principal": principal.key},
                )
            ).scalar_one()
            key = idempotency_key(
                principal=principal, email=attempt.email, name=attempt.name, erasures=erasures
            )
            params: CustomerCreateParams = {
                "email": attempt.email,
                "name": attempt.name,
                "metadata": {PRINCIPAL_KEY: principal.key},
            }
            async with translated_stripe_errors("create the customer"):
                if test_clock_prefix is not None:
                    params["test_clock"] = await _new_test_clock(
                        stripe_client, f"{test_clock_prefix} {principal.key}", key=key
                    )
                made = await stripe_client.v1.customers.create_async(
                    params=params, options={"idempotency_key": key}
                )
        row = (
            await conn.execute(
                insert(customers)
                .values(
                    principal=principal.key,
                    stripe_customer_id=made.id,
                    email=made.email or "",
                    name=made.name or "",
                    created_at=func.now(),
                )
                .returning(*customers.c)
            )
        ).one()
        await conn.execute(
            delete(customer_creations).where(customer_creations.c.principal == principal.key)
        )
    record = CustomerRecord(
        row.principal, row.stripe_customer_id, row.email, row.name, row.created_at, row.currency
    )
    return record, True


async def _new_test_clock(stripe_client: stripe.StripeClient, name: str, *, key: str) -> str:
    """A Stripe test clock frozen at now, for one customer (`BillingRules.test_clock_prefix`)."""
    clock = await stripe_client.v1.test_helpers.test_clocks.create_async(
        params={"frozen_time": int(time.time()), "name": name[:300]},
        options={"idempotency_key": key + ":test-clock"},
    )
    return clock.id


async def _record_attempt(
    engine: AsyncEngine, principal: Principal, *, email: str, name: str
) -> bool:
    """Record the contact details a creation will send, unless an earlier attempt's are recorded
    (they are what Stripe may have seen, unless it refused them); True when none were."""
    recorded = insert(customer_creations).values(principal=principal.key, email=email, name=name)
    recorded = recorded.on_conflict_do_update(
        index_elements=[customer_creations.c.principal],
        set_={
            "email": recorded.excluded.email,
            "name": recorded.excluded.name,
            "created_at": func.now(),
            "refused_at": None,
        },
        where=customer_creations.c.refused_at.is_not(None),
    )
    async with engine.begin() as conn:
        inserted = await conn.execute(recorded.returning(customer_creations.c.principal))
        return inserted.first() is not None


async def _made_before(
    stripe_client: stripe.StripeClient, principal: Principal, email: str
) -> stripe.Customer | None:
    """The customer an earlier attempt for `principal` made with `email`, if Stripe has one
    (its list by email is read-after-write consistent, unlike search)."""
    async with translated_stripe_errors("look for the customer"):
        listed = await stripe_client.v1.customers.list_async(params={"email": email, "limit": 100})
        async for customer in listed.auto_paging_iter():
            if principal_of(customer.to_dict()) == principal.key:
                return customer
    return None


def customer_default_payment_method(customer: dict[str, Any]) -> str | None:
    """What Stripe charges a customer's invoices to by default: its invoice default payment
    method, else its default source."""
    invoice_settings = optional(mapping, customer.get("invoice_settings")) or {}
    return optional(reference, invoice_settings.get("default_payment_method")) or optional(
        reference, customer.get("default_source")
    )


def customer_row(customer: dict[str, Any]) -> Row:
    """What events may change of a customer row: the contact details of its Stripe customer, and
    what it pays with by default."""
    return {
        "stripe_customer_id": string(customer["id"]),
        "email": optional(string, customer.get("email")) or "",
        "name": optional(string, customer.get("name")) or "",
        "deleted_at": None,
        "default_payment_method": customer_default_payment_method(customer),
        "preferred_locales": [string(locale) for locale in customer.get("preferred_locales") or []],
        "currency": optional(string, customer.get("currency")),
    }


def principal_of(customer: dict[str, Any]) -> str | None:
    """The principal a Stripe customer was made for (its metadata's `tatame_principal`, set by
    CreateCustomer); None for customers billing did not make."""
    return optional(string, (optional(mapping, customer.get("metadata")) or {}).get(PRINCIPAL_KEY))


async def adopt_customer(conn: AsyncConnection, customer: dict[str, Any]) -> None:
    """Insert the row of a Stripe customer that names its principal (`principal_of`) where the
    mirror has none; events only refresh customer rows."""
    principal = principal_of(customer)
    if principal is not None:
        await conn.execute(
            insert(customers)
            .values(
                principal=principal,
                stripe_customer_id=string(customer["id"]),
                email=optional(string, customer.get("email")) or "",
                name=optional(string, customer.get("name")) or "",
            )
            .on_conflict_do_nothing()
        )


def _deleted(row: Row, deleted_at: datetime) -> Row:
    return {**row, "deleted_at": deleted_at}


_REFRESH = (
    update(customers)
    .where(customers.c.stripe_customer_id == bindparam("customer"))
    # Stripe never unsets a customer's currency: an object without one is older than it.
    .values(
        updated_at=func.now(),
        currency=func.coalesce(customers.c.currency, bindparam("stripe_currency")),
    )
)


async def _refresh(conn: AsyncConnection, rows: list[Row]) -> None:
    """Update the rows of Stripe customers; customer rows are only created by CreateCustomer."""
    await conn.execute(
        _REFRESH,
        [
            {
                **{name: value for name, value in row.items() if name != "currency"},
                "customer": row["stripe_customer_id"],
                "stripe_currency": row["currency"],
            }
            for row in rows
        ],
    )


async def customer_currency(conn: AsyncConnection, principal: Principal) -> str | None:
    """The currency the principal's customer pays in, once Stripe set it."""
    query = select(customers.c.currency).where(customers.c.principal == principal.key)
    currency: str | None = (await conn.execute(query)).scalar()
    return currency


async def settle_currency(conn: AsyncConnection, *, stripe_customer_id: str, currency: str) -> None:
    """Record the customer's currency that Stripe just set (a subscription it accepted in
    `currency`), before the customer's events tell it; an existing one stays."""
    await conn.execute(
        update(customers)
        .where(customers.c.stripe_customer_id == stripe_customer_id, customers.c.currency.is_(None))
        .values(currency=currency)
    )


CUSTOMERS = Mirror(
    object_type="customer",
    table=customers,
    key=customers.c.stripe_customer_id,
    row=customer_row,
    service=attrgetter("v1.customers"),
    write=_refresh,
    retire=_deleted,
    adds_rows=False,
)
