"""Which applied Stripe event is which fact to tell the user: one `Fact` per (kind, object).

A fact is recorded when its event is applied for the first time (APPLIED), or found older than the
mirror (STALE: it still happened), except for the kinds in `CURRENT_ONLY`, which a newer state
makes wrong to tell (a payment that failed, then succeeded before its event arrived)."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from services.billing.mirror import Outcome, integer, optional, reference, string


class Kind(StrEnum):
    SUBSCRIPTION_STARTED = "subscription_started"  # the welcome
    TRIAL_ENDING = "trial_ending"
    PAYMENT_FAILED = "payment_failed"
    ACTION_REQUIRED = "action_required"
    RECEIPT = "receipt"
    SUBSCRIPTION_ENDED = "subscription_ended"
    REFUND_ISSUED = "refund_issued"


# Kinds a user cannot turn off.
MANDATORY: frozenset[Kind] = frozenset({Kind.RECEIPT, Kind.ACTION_REQUIRED})
# Kinds told only of the newest state (never from a STALE event).
CURRENT_ONLY: frozenset[Kind] = frozenset({Kind.PAYMENT_FAILED, Kind.ACTION_REQUIRED})
_STARTED = frozenset({"active", "trialing"})


@dataclass(frozen=True, slots=True)
class Fact:
    """One notification to write: `customer` is the Stripe customer, or None when it is read
    from the mirrored charge `charge_id` (a refund names only its charge)."""

    kind: Kind
    object_id: str
    customer: str | None
    data: dict[str, Any]
    charge_id: str | None = None


def _waits_for_a_card(obj: dict[str, Any]) -> bool:
    """A trial that Stripe cancels at its end unless a card is saved, with none saved yet (the
    app's PaymentSheet saves it as the subscription's default): not started yet."""
    end = ((obj.get("trial_settings") or {}).get("end_behavior") or {}).get(
        "missing_payment_method"
    )
    return (
        obj["status"] == "trialing"
        and end in ("cancel", "pause")
        and obj.get("default_payment_method") is None
    )


def _subscription_started(event_type: str, obj: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Created active or trialing (a trial: with its card), or updated to that from incomplete
    (its first payment), or a trial's card saved."""
    if string(obj["status"]) not in _STARTED or _waits_for_a_card(obj):
        return False
    if event_type == "customer.subscription.created":
        return True
    card_saved = "default_payment_method" in previous and previous["default_payment_method"] is None
    return previous.get("status") == "incomplete" or (obj["status"] == "trialing" and card_saved)


def _subscription(kind: Kind, obj: dict[str, Any]) -> Fact:
    return Fact(
        kind,
        string(obj["id"]),
        reference(obj["customer"]),
        {"trial_end": optional(integer, obj.get("trial_end"))},
    )


def _invoice(kind: Kind, obj: dict[str, Any], amount_field: str) -> Fact:
    return Fact(
        kind,
        string(obj["id"]),
        reference(obj["customer"]),
        {
            "amount": integer(obj[amount_field]),
            "currency": string(obj["currency"]),
            "number": optional(string, obj.get("number")),
            "url": optional(string, obj.get("hosted_invoice_url")),
        },
    )


def _by_type(event_type: str, obj: dict[str, Any], previous: dict[str, Any]) -> Fact | None:
    match event_type:
        case "customer.subscription.created" | "customer.subscription.updated":
            if _subscription_started(event_type, obj, previous):
                return _subscription(Kind.SUBSCRIPTION_STARTED, obj)
        case "customer.subscription.trial_will_end":
            return _subscription(Kind.TRIAL_ENDING, obj)
        case "customer.subscription.deleted":
            return _subscription(Kind.SUBSCRIPTION_ENDED, obj)
        case "invoice.payment_failed":
            return _invoice(Kind.PAYMENT_FAILED, obj, "amount_due")
        case "invoice.payment_action_required":
            return _invoice(Kind.ACTION_REQUIRED, obj, "amount_due")
        case "invoice.paid":
            if integer(obj["amount_paid"]) > 0:
                return _invoice(Kind.RECEIPT, obj, "amount_paid")
        case "payment_intent.succeeded":
            return Fact(
                Kind.RECEIPT,
                string(obj["id"]),
                reference(obj["customer"]),
                {"amount": integer(obj["amount"]), "currency": string(obj["currency"])},
            )
        case "refund.created" | "refund.updated":
            if obj.get("status") == "succeeded" and obj.get("charge") is not None:
                return Fact(
                    Kind.REFUND_ISSUED,
                    string(obj["id"]),
                    None,
                    {"amount": integer(obj["amount"]), "currency": string(obj["currency"])},
                    charge_id=reference(obj["charge"]),
                )
    return None


def fact_of(
    *, event_type: str, obj: dict[str, Any], previous: dict[str, Any], outcome: Outcome
) -> Fact | None:
    """The fact an event applied with `outcome` tells, if any (a malformed one tells none:
    its object was mirrored already, so the reading cannot fail on fields it needs)."""
    if outcome not in (Outcome.APPLIED, Outcome.STALE):
        return None
    try:
        fact = _by_type(event_type, obj, previous)
    except (KeyError, TypeError, ValueError):
        return None
    if fact is None or (outcome is Outcome.STALE and fact.kind in CURRENT_ONLY):
        return None
    return fact
