"""Refunds, for operators only (BillingAdminService.RefundPayment, `python -m services.billing
refund`): Stripe refunds a payment intent's charge, in full or in part, once per idempotency key;
the refunded charge is written to the mirror at once, so that what the purchase granted is
revoked as soon as it is refunded in full (its `charge.refunded` and `refund.*` events, whenever
they arrive, then find this state)."""

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.errors import Conflict, IdempotencyKeyReused, InvalidArgument, NotFound
from services.billing.mirror import answered_at, reference, write_answer
from services.billing.purchases import CHARGES
from services.billing.stripe_errors import translated_stripe_errors
from services.common.errors import ErrorReason
from services.common.idempotency import INVALID_KEY_MESSAGE, valid_idempotency_key

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
# Stripe's codes for a refund it refuses, as billing's reasons.
_REFUSALS = {
    "charge_already_refunded": ErrorReason.PAYMENT_NOT_REFUNDABLE,
    "charge_not_refundable": ErrorReason.PAYMENT_NOT_REFUNDABLE,
    "charge_disputed": ErrorReason.PAYMENT_DISPUTED,
}


@dataclass(frozen=True, slots=True)
class RefundRecord:
    refund_id: str
    payment_intent_id: str
    charge_id: str
    amount: int
    currency: str
    status: str
    # Of the charge, in all, after this refund.
    amount_refunded: int


def refund_idempotency_key(
    *, payment_intent_id: str, amount: int | None, reason: str | None, given: str | None
) -> str:
    """Stripe's idempotency key for a refund: `given`, or one derived from the request, so that
    the same command run again refunds once (another refund of the same amount needs a key)."""
    if given:
        if not valid_idempotency_key(given):
            raise InvalidArgument(INVALID_KEY_MESSAGE, reason=ErrorReason.INVALID_IDEMPOTENCY_KEY)
        return given
    request = f"{payment_intent_id}|{'rest' if amount is None else amount}|{reason or ''}"
    return "refund-" + hashlib.sha256(request.encode()).hexdigest()


async def refund_payment(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    payment_intent_id: str,
    amount: int | None,
    reason: str | None,
    idempotency_key: str | None,
    refunded_by: str,
) -> RefundRecord:
    """Refund `amount` (None: all that is left) of a payment intent's charge; the charge's new
    state is mirrored before this returns."""
    if not payment_intent_id.startswith("pi_"):
        raise InvalidArgument("payment_intent_id must be a payment intent id (pi_...)")
    if amount is not None and amount < 1:
        raise InvalidArgument("amount must be at least 1 (minor units), or unset for all of it")
    if reason is not None and reason not in REASONS:
        raise InvalidArgument(f"reason must be one of {', '.join(REASONS)}")
    key = refund_idempotency_key(
        payment_intent_id=payment_intent_id, amount=amount, reason=reason, given=idempotency_key
    )
    params: stripe.params.RefundCreateParams = {
        "payment_intent": payment_intent_id,
        "metadata": {"tatame_refunded_by": refunded_by},
    }
    if amount is not None:
        params["amount"] = amount
    if reason is not None:
        params["reason"] = reason
    async with translated_stripe_errors("refund the payment"), _refund_errors(payment_intent_id):
        refund = await stripe_client.v1.refunds.create_async(
            params=params, options={"idempotency_key": key}
        )
        charge = await stripe_client.v1.charges.retrieve_async(reference(refund.charge))
    async with engine.begin() as conn:
        await write_answer(
            conn,
            mirror=CHARGES,
            stripe_client=stripe_client,
            obj=charge.to_dict(),
            answered=answered_at(charge),
        )
    return RefundRecord(
        refund_id=refund.id,
        payment_intent_id=payment_intent_id,
        charge_id=charge.id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status or "",
        amount_refunded=charge.amount_refunded,
    )


@asynccontextmanager
async def _refund_errors(payment_intent_id: str) -> AsyncIterator[None]:
    """Stripe's refusals of a refund as billing's errors, each with its reason (others go on to
    translated_stripe_errors)."""
    try:
        yield
    except stripe.IdempotencyError as e:
        raise IdempotencyKeyReused(
            "this idempotency key went with another refund (or that refund is still running); "
            "give another key for another refund"
        ) from e
    except stripe.InvalidRequestError as e:
        if e.http_status == 404 or e.code == "resource_missing":
            raise NotFound(f"no payment {payment_intent_id!r}") from e
        if e.param == "amount":
            raise InvalidArgument(
                f"Stripe refused the amount: {e.user_message or 'more than is left'}",
                reason=ErrorReason.REFUND_EXCEEDS_PAYMENT,
            ) from e
        refused = _REFUSALS.get(e.code or "")
        if refused is None:
            raise
        raise Conflict(
            f"Stripe refused the refund: {e.user_message or refused.value}", reason=refused
        ) from e
