"""Clerk's events, delivered by the webhooks relay like Stripe's (ApplyStripeEvents, provider
"clerk"): `user.deleted` and `organization.deleted` erase that principal's billing (a user's
when billing is per user, an organization's when per organization: whichever billing holds;
erasure.py), `user.updated` gives the user's Stripe customer the new primary email and name.
Any other type is IGNORED. Each event id (the Svix message id) is applied once."""

import json
from datetime import UTC, datetime
from typing import Any, cast

import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal, PrincipalKind
from services.billing.customers import CUSTOMERS, MAX_NAME_LENGTH, validate_contact
from services.billing.errors import InvalidArgument
from services.billing.mirror import Outcome, answered_at, write_answer
from services.billing.privacy import erasure
from services.billing.privacy.inbox import InboxClient
from services.billing.stripe_errors import translated_stripe_errors

PROVIDER = "clerk"
_ERASING = {"user.deleted": "user", "organization.deleted": "org"}


def _data(payload: bytes) -> tuple[dict[str, Any], datetime]:
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError) as e:
        raise InvalidArgument("the Clerk event is not JSON") from e
    data = event.get("data") if isinstance(event, dict) else None
    timestamp = event.get("timestamp") if isinstance(event, dict) else None
    if not isinstance(data, dict) or not isinstance(timestamp, int):
        raise InvalidArgument("the Clerk event has no data object or timestamp")
    return data, datetime.fromtimestamp(timestamp / 1000, UTC)


def _principal(kind: str, data: dict[str, Any]) -> Principal:
    try:
        return Principal(cast(PrincipalKind, kind), data.get("id"))  # type: ignore[arg-type]
    except ValueError as e:
        raise InvalidArgument("the Clerk event's data.id is not a Clerk id") from e


def _contact(user: dict[str, Any]) -> tuple[str | None, str]:
    """The user's primary email (None when it has none) and full name."""
    primary = user.get("primary_email_address_id")
    addresses = user.get("email_addresses")
    email = next(
        (
            a.get("email_address")
            for a in (addresses if isinstance(addresses, list) else [])
            if isinstance(a, dict) and a.get("id") == primary
        ),
        None,
    )
    parts = [user.get(k) for k in ("first_name", "last_name")]
    name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return (email if isinstance(email, str) else None), name[:MAX_NAME_LENGTH]


async def _update_customer(
    *, engine: AsyncEngine, stripe_client: stripe.StripeClient, user: dict[str, Any]
) -> Outcome:
    principal = _principal("user", user)
    async with engine.connect() as conn:
        customer = (
            await conn.execute(
                text("SELECT stripe_customer_id FROM billing.customers WHERE principal = :p"),
                {"p": principal.key},
            )
        ).scalar()
    if customer is None:  # never a customer, billed per organization, or erased
        return Outcome.IGNORED
    email, name = _contact(user)
    params: dict[str, str] = {"name": name} if name else {}
    if email is not None:
        params["email"] = validate_contact(email=email, name=name)[0]
    if not params:  # nothing Stripe's customer shows
        return Outcome.IGNORED
    async with translated_stripe_errors("update the customer's contact details"):
        answer = await stripe_client.v1.customers.update_async(customer, params=params)  # type: ignore[arg-type]
    async with engine.begin() as conn:
        return await write_answer(
            conn,
            mirror=CUSTOMERS,
            stripe_client=stripe_client,
            obj=answer.to_dict(),
            answered=answered_at(answer),
        )


async def apply_clerk_event(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    inbox: InboxClient | None,
    event_id: str,
    event_type: str,
    payload: bytes,
) -> Outcome:
    """Apply one Clerk event (once per id: DUPLICATE after)."""
    async with engine.connect() as conn:
        seen = (
            await conn.execute(
                text("SELECT 1 FROM billing.applied_events WHERE event_id = :id"), {"id": event_id}
            )
        ).scalar()
    if seen:
        return Outcome.DUPLICATE
    data, created = _data(payload)
    if event_type in _ERASING:
        await erasure.erase(
            engine=engine,
            stripe_client=stripe_client,
            inbox=inbox,
            principal=_principal(_ERASING[event_type], data),
            requested_by=event_type,
        )
        outcome = Outcome.APPLIED
    elif event_type == "user.updated":
        outcome = await _update_customer(engine=engine, stripe_client=stripe_client, user=data)
        if outcome is Outcome.DUPLICATE:
            outcome = Outcome.APPLIED
    else:
        outcome = Outcome.IGNORED
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO billing.applied_events (event_id, type, event_created, outcome)"
                " VALUES (:id, :type, :created, :outcome) ON CONFLICT (event_id) DO NOTHING"
            ),
            {"id": event_id, "type": event_type, "created": created, "outcome": outcome.value},
        )
    return outcome
