"""Paused collection (`pause_collection`) of subscriptions, as Stripe runs it at the pinned API
version: the subscription keeps its status, and each invoice it makes meanwhile is finalized and
voided (`void`), left a draft that does not advance (`keep_as_draft`), or finalized and marked
uncollectible (`mark_uncollectible`); nothing is charged. At `resumes_at` Stripe clears the pause
(`customer.subscription.updated`); an update with `pause_collection=""` clears it at once."""

import time
from typing import Any

import stripe
from localstripe.resources import Invoice

from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import as_int, as_str, param_error, reject_unknown
from tatame_devstack.stripe_emulator.render import shape

BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")


def pause_collection_of(value: Any) -> dict[str, Any] | None:
    """The `pause_collection` an update asks for: `""` clears it, else `behavior` (required)
    and `resumes_at` (optional, a Unix time)."""
    if value == "":
        return None
    if not isinstance(value, dict):
        raise param_error("pause_collection", "Invalid pause_collection: expected a hash")
    params = dict(value)
    if params.get("behavior") is None:
        raise param_error(
            "pause_collection[behavior]", "Missing required param: pause_collection[behavior]."
        )
    behavior = as_str("pause_collection[behavior]", params.pop("behavior"), choices=BEHAVIORS)
    resumes_at = params.pop("resumes_at", None)
    if resumes_at is not None:
        resumes_at = as_int("pause_collection[resumes_at]", resumes_at, minimum=1)
    reject_unknown(params, parent="pause_collection")
    return {"behavior": behavior, "resumes_at": resumes_at}


def render_pause_collection(pause: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if pause is None else shape(stripe.Subscription.PauseCollection, pause)


def hold_invoice(invoice: Invoice, behavior: str) -> None:
    """What a paused subscription does with a new invoice instead of charging it (its events
    too): `keep_as_draft` leaves it a draft with `auto_advance` false; `void` finalizes and
    voids it; `mark_uncollectible` finalizes it and marks it uncollectible."""
    if behavior == "keep_as_draft":
        invoice._held = True
        return
    invoice._finalize()
    send_event("invoice.finalized", invoice)
    now = int(time.time())
    if behavior == "void":
        invoice._voided = True
        invoice.status_transitions["voided_at"] = now
        send_event("invoice.voided", invoice)
    else:
        invoice._uncollectible = True
        invoice.status_transitions["marked_uncollectible_at"] = now
        send_event("invoice.marked_uncollectible", invoice)


def resume_if_due(subscription: Any, until: int) -> None:
    """Clear a pause whose `resumes_at` is at or before `until` (a test clock passing it), as
    Stripe does, with the subscription's updated event."""
    pause = subscription.pause_collection
    if pause is not None and pause["resumes_at"] is not None and pause["resumes_at"] <= until:
        subscription.pause_collection = None
        send_event("customer.subscription.updated", subscription)


def extend_invoice_statuses() -> None:
    """Give localstripe's invoices Stripe's `uncollectible` status, and `_held` drafts (kept by
    a paused subscription: they do not advance)."""
    status_of = Invoice.status.fget
    assert status_of is not None

    def status(invoice: Invoice) -> str:
        found: str = status_of(invoice)
        return "uncollectible" if found == "open" and invoice._uncollectible else found

    Invoice.status = property(status)
    Invoice._uncollectible = False
    Invoice._held = False
