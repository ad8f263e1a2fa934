"""Refunds of a charge (named by itself or by its payment intent), in full or in part."""

from typing import Any

import stripe
from localstripe.errors import UserError
from localstripe.resources import Charge, PaymentIntent, Refund

from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    as_int,
    as_metadata,
    as_str,
    merged_metadata,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.render import expanded, shape

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _refunded_charge(charge: Any, payment_intent: Any) -> Charge:
    """The charge that `charge` or `payment_intent` (exactly one) names; it must have succeeded."""
    if (charge is None) == (payment_intent is None):
        raise param_error("charge", "Pass exactly one of `charge` and `payment_intent`.")
    if payment_intent is not None:
        intent = PaymentIntent._api_retrieve(as_str("payment_intent", payment_intent))
        if intent.status != "succeeded":
            raise UserError(
                400,
                f"This PaymentIntent ({intent.id}) does not have a successful charge to refund.",
                {"code": "charge_not_refundable", "param": "payment_intent"},
            )
        return intent.latest_charge
    found = Charge._api_retrieve(as_str("charge", charge))
    if found.status != "succeeded":
        raise UserError(
            400,
            f"Charge {found.id} has not succeeded: there is nothing to refund.",
            {"code": "charge_not_refundable", "param": "charge"},
        )
    return found


def create_refund(
    charge: Any = None,
    payment_intent: Any = None,
    amount: Any = None,
    reason: Any = None,
    metadata: Any = None,
    **unknown: Any,
) -> Refund:
    """`POST /v1/refunds`: the whole rest of the charge unless `amount`; `refund.created` and
    `charge.refunded` events."""
    reject_unknown(unknown)
    refunded = _refunded_charge(charge, payment_intent)
    rest = refunded.amount - refunded.amount_refunded
    if getattr(refunded, "_disputed", False):
        raise UserError(
            400,
            f"Charge {refunded.id} has been charged back; cannot issue a refund.",
            {"code": "charge_disputed"},
        )
    if rest == 0:
        raise UserError(
            400,
            f"Charge {refunded.id} has already been refunded.",
            {"code": "charge_already_refunded"},
        )
    amount = rest if amount is None else as_int("amount", amount, minimum=1)
    if amount > rest:
        raise param_error(
            "amount",
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({rest})",
        )
    reason = None if reason is None else as_str("reason", reason, choices=REASONS)
    refund = Refund(charge=refunded.id, amount=amount, metadata=as_metadata(metadata))
    refund.payment_intent, refund.reason = refunded.payment_intent, reason
    send_event("refund.created", refund)
    send_event("charge.refunded", refunded)
    return refund


def update_refund(id: str, metadata: Any = None, **unknown: Any) -> Refund:
    """`POST /v1/refunds/{id}`: only its metadata changes."""
    reject_unknown(unknown)
    refund = Refund._api_retrieve(id)
    if metadata is not None:
        refund.metadata = merged_metadata(refund.metadata, metadata)
    send_event("refund.updated", refund)
    return refund


def render_refund(refund: Refund, expand: Any = None) -> dict[str, Any]:
    """A refund at the pinned API version (to a card: succeeded at once in test mode)."""
    details = stripe.Refund.DestinationDetails
    rendered = shape(
        stripe.Refund,
        {
            "id": refund.id,
            "object": "refund",
            "amount": refund.amount,
            "balance_transaction": refund.balance_transaction,
            "charge": refund.charge,
            "created": refund.created,
            "currency": refund.currency,
            "destination_details": shape(
                details,
                {
                    "type": "card",
                    "card": shape(
                        details.Card,
                        {
                            "type": "refund",
                            "reference_status": "pending",
                            "reference_type": "acquirer_reference_number",
                        },
                    ),
                },
            ),
            "metadata": refund.metadata,
            "payment_intent": refund.payment_intent,
            "reason": getattr(refund, "reason", None),
            "status": refund.status,
        },
    )
    return expanded(rendered, expand or ())


def extend_refunds() -> None:
    """Refunds on localstripe's class: created, updated and rendered as Stripe does at the
    pinned API version."""
    Refund._api_create = classmethod(lambda cls, **params: create_refund(**params))
    Refund._api_update = classmethod(lambda cls, id, **params: update_refund(id, **params))
    Refund._export = render_refund
