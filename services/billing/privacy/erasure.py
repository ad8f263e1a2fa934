"""Erasing a principal's billing on request, step by step, each step recorded before the next
(billing.erasures.state), so that a run stopped by a failure (Stripe or the inbox unavailable)
resumes where it stopped, and a second run after the last step changes nothing:

1. started: the erasure is recorded with the principal's Stripe customer and payment methods
   (under the principal's lock, which CreateCustomer takes too);
2. subscriptions_canceled: every live subscription is canceled at once at Stripe (the mirror
   takes Stripe's answers);
3. customer_deleted: the Stripe customer is deleted (already gone counts as done);
4. mirror_scrubbed: billing's personal data of the principal is blanked or deleted
   (`_MIRROR_SCRUBS`: the customer row and its creation record, the kept answers of idempotent
   requests, card details of payment methods), keeping ids, amounts and dates;
5. done: the webhooks inbox has blanked the payloads of the events about the customer, its
   payment methods and the Clerk user or organization (and will blank those that arrive after).

Afterwards the principal has no customer: it may become one again (CreateCustomer makes a new
Stripe customer; its idempotency key counts the principal's erasures). Erasing a principal that
holds nothing records an erasure too (the inbox may hold its Clerk events); erasing it again
answers the last erasure.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.auth.principal import Principal
from services.billing.customers import lock_principal
from services.billing.mirror import answered_at, write_answer
from services.billing.privacy.inbox import InboxClient, InboxUnavailable, Subjects
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscriptions import SUBSCRIPTIONS, stripe_subscriptions
from services.common.errors import ServiceError
from services.common.subscription_statuses import LIVE_STATUSES

log = logging.getLogger(__name__)

API = "api"


@dataclass(frozen=True, slots=True)
class ErasureRecord:
    id: int
    principal: str
    requested_by: str
    requested_at: datetime
    completed_at: datetime | None
    state: str
    stripe_customer_id: str | None
    canceled_subscription_ids: list[str]
    payment_method_ids: list[str]
    inbox_events_scrubbed: int


_COLUMNS = (
    "id, principal, requested_by, requested_at, completed_at, state, stripe_customer_id,"
    " canceled_subscription_ids, payment_method_ids, inbox_events_scrubbed"
)

# Billing's personal data of an erased principal (`:principal`, `:customer`, `:payment_methods`).
# The one place to extend when a table holding personal data is added. Notifications keep no
# recipient (the notifier reads the customer row at send time, gone here) and no text: their
# rows (kind, object, amounts) stay; the devices' push tokens and the preferences go.
_MIRROR_SCRUBS = (
    "DELETE FROM billing.customers WHERE principal = :principal",
    "DELETE FROM billing.customer_creations WHERE principal = :principal",
    # Kept answers may repeat the customer's email and name (CreateCustomer's).
    "DELETE FROM billing.idempotent_requests WHERE principal = :principal",
    "DELETE FROM billing.notification_devices WHERE principal = :principal",
    "DELETE FROM billing.notification_preferences WHERE principal = :principal",
    "UPDATE billing.payment_methods SET card_brand = NULL, card_last4 = NULL,"
    " card_exp_month = NULL, card_exp_year = NULL, updated_at = now()"
    " WHERE (stripe_customer_id = :customer OR id = ANY(CAST(:payment_methods AS text[])))"
    " AND (card_brand IS NOT NULL OR card_last4 IS NOT NULL OR card_exp_month IS NOT NULL"
    " OR card_exp_year IS NOT NULL)",
    # A boleto's hosted voucher shows the payer's name and CPF.
    "UPDATE billing.invoices SET payment_voucher_url = NULL, updated_at = now()"
    " WHERE stripe_customer_id = :customer AND payment_voucher_url IS NOT NULL",
    "UPDATE billing.purchases SET payment_voucher_url = NULL, updated_at = now()"
    " WHERE stripe_customer_id = :customer AND payment_voucher_url IS NOT NULL",
)


async def _record(
    conn: AsyncConnection, where: str, params: Mapping[str, object]
) -> ErasureRecord | None:
    row = (
        await conn.execute(
            text(f"SELECT {_COLUMNS} FROM billing.erasures WHERE {where}"),  # noqa: S608 (fixed fragments)
            params,
        )
    ).first()
    return None if row is None else ErasureRecord(**row._mapping)


async def _update(conn: AsyncConnection, erasure_id: int, **values: object) -> ErasureRecord:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    if values.get("state") == "done":
        assignments += ", completed_at = now()"
    row = (
        await conn.execute(
            text(
                f"UPDATE billing.erasures SET {assignments}, last_error = NULL, updated_at = now()"  # noqa: S608 (fixed names)
                f" WHERE id = :id RETURNING {_COLUMNS}"
            ),
            {"id": erasure_id, **values},
        )
    ).one()
    return ErasureRecord(**row._mapping)


async def _start(
    engine: AsyncEngine, principal: Principal, requested_by: str
) -> tuple[ErasureRecord, bool]:
    """The principal's unfinished erasure, or a new one; (its last erasure, False) when it holds
    nothing any more."""
    async with engine.begin() as conn:
        await lock_principal(conn, principal)
        key = {"principal": principal.key}
        unfinished = await _record(conn, "principal = :principal AND state <> 'done'", key)
        if unfinished is not None:
            return unfinished, True
        customer = (
            await conn.execute(
                text(
                    "SELECT stripe_customer_id FROM billing.customers WHERE principal = :principal"
                ),
                key,
            )
        ).scalar()
        if customer is None:
            last = await _record(
                conn, "principal = :principal ORDER BY requested_at DESC, id DESC LIMIT 1", key
            )
            if last is not None:
                return last, False
        payment_methods = (
            []
            if customer is None
            else list(
                (
                    await conn.execute(
                        text(
                            "SELECT id FROM billing.payment_methods"
                            " WHERE stripe_customer_id = :customer ORDER BY id"
                        ),
                        {"customer": customer},
                    )
                ).scalars()
            )
        )
        # Nothing at Stripe to undo without a customer: straight to the inbox's step.
        row = (
            await conn.execute(
                text(
                    "INSERT INTO billing.erasures (principal, requested_by, state,"  # noqa: S608 (fixed fragments)
                    " stripe_customer_id, payment_method_ids)"
                    " VALUES (:principal, :requested_by, :state, :customer, :payment_methods)"
                    f" RETURNING {_COLUMNS}"
                ),
                {
                    **key,
                    "requested_by": requested_by,
                    "state": "started" if customer else "customer_deleted",
                    "customer": customer,
                    "payment_methods": payment_methods,
                },
            )
        ).one()
        log.info(
            "erasure started",
            extra={"fields": {"principal": principal.key, "requested_by": requested_by}},
        )
        return ErasureRecord(**row._mapping), True


async def _cancel_subscriptions(
    engine: AsyncEngine, stripe_client: stripe.StripeClient, erasure: ErasureRecord
) -> ErasureRecord:
    customer = erasure.stripe_customer_id
    canceled = list(erasure.canceled_subscription_ids)
    if customer is not None:
        for subscription in await stripe_subscriptions(stripe_client, customer):
            if subscription["status"] not in LIVE_STATUSES:
                continue
            async with translated_stripe_errors("cancel a subscription of an erased customer"):
                answer = await stripe_client.v1.subscriptions.cancel_async(subscription["id"])
            async with engine.begin() as conn:
                await write_answer(
                    conn,
                    mirror=SUBSCRIPTIONS,
                    stripe_client=stripe_client,
                    obj=answer.to_dict(),
                    answered=answered_at(answer),
                )
            canceled.append(answer.id)
    async with engine.begin() as conn:
        return await _update(
            conn, erasure.id, state="subscriptions_canceled", canceled_subscription_ids=canceled
        )


async def _delete_customer(
    engine: AsyncEngine, stripe_client: stripe.StripeClient, erasure: ErasureRecord
) -> ErasureRecord:
    if erasure.stripe_customer_id is not None:
        async with translated_stripe_errors("delete the Stripe customer"):
            try:
                await stripe_client.v1.customers.delete_async(erasure.stripe_customer_id)
            except stripe.InvalidRequestError as e:
                if e.http_status != 404:  # gone already (an earlier run, or the Dashboard)
                    raise
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE billing.customers SET deleted_at = now() WHERE stripe_customer_id = :c"),
            {"c": erasure.stripe_customer_id},
        )
        return await _update(conn, erasure.id, state="customer_deleted")


async def _scrub_mirror(engine: AsyncEngine, erasure: ErasureRecord) -> ErasureRecord:
    params = {
        "principal": erasure.principal,
        "customer": erasure.stripe_customer_id,
        "payment_methods": erasure.payment_method_ids,
    }
    async with engine.begin() as conn:
        for statement in _MIRROR_SCRUBS:
            await conn.execute(text(statement), params)
        return await _update(conn, erasure.id, state="mirror_scrubbed")


async def _scrub_inbox(
    engine: AsyncEngine, inbox: InboxClient, erasure: ErasureRecord, principal: Principal
) -> ErasureRecord:
    customer = [] if erasure.stripe_customer_id is None else [erasure.stripe_customer_id]
    scrubbed = await inbox.erase(
        Subjects(stripe_ids=customer + erasure.payment_method_ids, clerk_ids=[principal.id])
    )
    async with engine.begin() as conn:
        record = await _update(
            conn,
            erasure.id,
            state="done",
            inbox_events_scrubbed=erasure.inbox_events_scrubbed + scrubbed,
        )
    log.info("erasure done", extra={"fields": {"principal": principal.key}})
    return record


async def _failed(engine: AsyncEngine, erasure: ErasureRecord, error: ServiceError) -> None:
    """Keep why the erasure stopped (the next run resumes at its recorded state)."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE billing.erasures SET last_error = :e, updated_at = now() WHERE id = :id"),
            {"e": f"{error.reason}: {error.message}"[:2000], "id": erasure.id},
        )


async def erase(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    inbox: InboxClient | None,
    principal: Principal,
    requested_by: str,
) -> ErasureRecord:
    """Erase the principal's billing, or resume its unfinished erasure; its record."""
    if inbox is None:
        raise InboxUnavailable(
            "billing has no credential for the webhooks inbox (BILLING_WEBHOOKS_SERVICE_SECRET)"
        )
    erasure, pending = await _start(engine, principal, requested_by)
    if not pending:
        return erasure
    try:
        if erasure.state == "started":
            erasure = await _cancel_subscriptions(engine, stripe_client, erasure)
        if erasure.state == "subscriptions_canceled":
            erasure = await _delete_customer(engine, stripe_client, erasure)
        if erasure.state == "customer_deleted":
            erasure = await _scrub_mirror(engine, erasure)
        if erasure.state == "mirror_scrubbed":
            erasure = await _scrub_inbox(engine, inbox, erasure, principal)
    except ServiceError as e:
        await _failed(engine, erasure, e)
        raise
    return erasure
