"""A realistic mix of Stripe events for the drain and lag figures, for customers billing knows.

Each customer lives through what Stripe sends when a subscription starts and its first invoice is
paid, one event per second of Stripe's clock (`created`), in this order:

    customer.updated, customer.subscription.created (incomplete), invoice.created (draft),
    invoice.finalized (open), payment_intent.succeeded, invoice.paid,
    customer.subscription.updated (active)

Billing applies all but `payment_intent.succeeded` (a type it does not consume: IGNORED). The
objects are shaped as Stripe sends them at the pinned API version by the builders the tests use
(`tests/stripe_objects.py`, checked against stripe-python's types). A phase sends the events in
waves: every customer's first event, then every customer's second, and so on, so that each
customer's events arrive in `created` order, about a second of the clock apart, as Stripe's do;
a phase of more events than one life per customer holds repeats it (a second subscription, …).
"""

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import stripe
from tatame_devstack.stripe_emulator.render import shape
from tatame_devstack.stripe_emulator.webhook_delivery import signature_header

from tests.stripe_objects import MONTH, event_envelope, invoice, price, subscription

AMOUNT = 2900  # minor units
# The events of one customer's life, in order; the one billing does not consume is IGNORED.
LIFE = (
    "customer.updated",
    "customer.subscription.created",
    "invoice.created",
    "invoice.finalized",
    "payment_intent.succeeded",
    "invoice.paid",
    "customer.subscription.updated",
)
NOT_CONSUMED = frozenset({"payment_intent.succeeded"})


@dataclass(frozen=True)
class SignedEvent:
    id: str
    type: str
    signature: str  # the Stripe-Signature header
    body: str


def _customer(customer_id: str, created: int, life: str) -> dict[str, Any]:
    return shape(
        stripe.Customer,
        {
            "id": customer_id,
            "object": "customer",
            "created": created,
            "email": f"{customer_id}.{life}@example.com",
            "livemode": False,
            "metadata": {},
            "name": f"Bench {life}",
        },
    )


def _payment_intent(customer_id: str, created: int, invoice_id: str) -> dict[str, Any]:
    return shape(
        stripe.PaymentIntent,
        {
            "id": "pi_" + invoice_id.removeprefix("in_"),
            "object": "payment_intent",
            "amount": AMOUNT,
            "amount_capturable": 0,
            "amount_received": AMOUNT,
            "capture_method": "automatic",
            "confirmation_method": "automatic",
            "created": created,
            "currency": "usd",
            "customer": customer_id,
            "livemode": False,
            "metadata": {},
            "payment_method_types": ["card"],
            "status": "succeeded",
        },
    )


def _objects(customer_id: str, base: int, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The `data.object` of each event of LIFE for `customer_id`, the first at second `base`."""
    life = secrets.token_hex(6)
    sub_id, invoice_id = f"sub_bench{life}", f"in_bench{life}"
    period = (base + 1, base + 1 + MONTH)

    def sub(status: str) -> dict[str, Any]:
        return subscription(
            sub_id,
            customer=customer_id,
            status=status,
            item_price=plan,
            period=period,
            created=base + 1,
            start_date=base + 1,
            billing_cycle_anchor=base + 1,
            latest_invoice=invoice_id,
        )

    def bill(status: str, paid: int) -> dict[str, Any]:
        return invoice(
            invoice_id,
            subscription=sub_id,
            total=AMOUNT,
            customer=customer_id,
            status=status,
            created=base + 2,
            period_start=period[0],
            period_end=period[0],
            amount_paid=paid,
            amount_remaining=AMOUNT - paid,
        )

    return [
        _customer(customer_id, base, life),
        sub("incomplete"),
        bill("draft", 0),
        bill("open", 0),
        _payment_intent(customer_id, base + 4, invoice_id),
        bill("paid", AMOUNT),
        sub("active"),
    ]


def _signed(secret: str, event_type: str, created: int, obj: dict[str, Any]) -> SignedEvent:
    event = event_envelope(
        event_type, obj, created=created, event_id="evt_bench" + secrets.token_hex(10)
    )
    body = json.dumps(event)
    return SignedEvent(event["id"], event_type, signature_header(body.encode(), secret), body)


class EventMix:
    """Phases of the mix for a fixed set of customers; each phase starts a later second."""

    def __init__(self, secret: str, customer_ids: list[str], plan_price_id: str) -> None:
        self._secret = secret
        self._customers = customer_ids
        self._plan = price(plan_price_id, unit_amount=AMOUNT)
        self._next_second = 0

    def phase(self, count: int) -> list[SignedEvent]:
        """`count` events: every customer lives through LIFE once per round, in waves, in as few
        rounds as it takes."""
        per_round = len(LIFE) * len(self._customers)
        rounds = -(-count // per_round)
        # Stripe's clock moves forward between phases, so no event is older than one before it.
        base = max(int(time.time()) + 1, self._next_second)
        self._next_second = base + rounds * len(LIFE)
        events: list[SignedEvent] = []
        for start in range(base, self._next_second, len(LIFE)):
            lives = [_objects(customer, start, self._plan) for customer in self._customers]
            events += [
                _signed(self._secret, event_type, start + k, objects[k])
                for k, event_type in enumerate(LIFE)
                for objects in lives
            ]
        return events[:count]
