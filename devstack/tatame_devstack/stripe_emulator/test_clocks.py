"""Test clocks (Stripe's test helper API): advancing a clock moves time for its customers, whose
subscriptions go through every trial or period end it passes, as Stripe's billing would.

The emulator keeps no clock of its own: objects made while a clock advances are stamped with
the wall clock's `created`, but periods and invoices follow the subscriptions' own boundaries."""

import asyncio
import logging
from typing import Any

import stripe
from aiohttp import web
from localstripe import server as localstripe_server
from localstripe.errors import UserError
from localstripe.resources import Customer, Invoice, PaymentIntent, StripeObject

from tatame_devstack.stripe_emulator.customers import TEST_CLOCK_OBJECT, customers_on_clock
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.intents import cancel_payment_intent
from tatame_devstack.stripe_emulator.params import (
    as_int,
    as_optional_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.pauses import resume_if_due
from tatame_devstack.stripe_emulator.pending_updates import expire_if_due
from tatame_devstack.stripe_emulator.render import shape
from tatame_devstack.stripe_emulator.schedules import cancel_subscription
from tatame_devstack.stripe_emulator.subscriptions import (
    ENDED_STATUSES,
    PriceSubscription,
    price_subscriptions,
)

logger = logging.getLogger(__name__)

TC = stripe.test_helpers.TestClock
CLOCK_LIFETIME_SECONDS = 30 * 24 * 60 * 60  # Stripe deletes a test clock after 30 days
COLLECTION = "/v1/test_helpers/test_clocks"
# How long Stripe waits for a subscription's first payment before it ends it, incomplete_expired.
INCOMPLETE_EXPIRY_SECONDS = 23 * 60 * 60


class TestClock(StripeObject):
    """A test clock: `ready`, or `advancing` to `_target` (`status_details.advancing`)."""

    object = TEST_CLOCK_OBJECT
    _id_prefix = "clock_"

    def __init__(self, frozen_time: Any = None, name: Any = None, **unknown: Any) -> None:
        reject_unknown(unknown)
        if frozen_time is None:
            raise param_error("frozen_time", "Missing required param: frozen_time.")
        frozen = as_int("frozen_time", frozen_time, minimum=1)
        name = as_optional_str("name", name)

        super().__init__()
        self.frozen_time, self.name, self.status = frozen, name, "ready"
        self._target: int | None = None
        send_event("test_helpers.test_clock.created", self)

    @classmethod
    def _api_list_all(
        cls, url: str, limit: Any = None, starting_after: Any = None, **unknown: Any
    ) -> Any:
        reject_unknown(unknown)
        page = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        page._list.reverse()  # newest first, as Stripe lists
        return page

    def _export(self, expand: Any = None) -> dict[str, Any]:
        advancing = None
        if self._target is not None:
            advancing = shape(TC.StatusDetails.Advancing, {"target_frozen_time": self._target})
        return shape(
            TC,
            {
                "id": self.id,
                "object": self.object,
                "created": self.created,
                "deletes_after": self.created + CLOCK_LIFETIME_SECONDS,
                "frozen_time": self.frozen_time,
                "livemode": False,
                "name": self.name,
                "status": self.status,
                "status_details": shape(TC.StatusDetails, {"advancing": advancing}),
            },
        )


def _next_boundary(subscription: PriceSubscription) -> int | None:
    """When the subscription's current period (or trial) next ends, a planned cancellation
    happens, or paused collection resumes; None once it has ended or before it has started."""
    if subscription.status in (*ENDED_STATUSES, "incomplete"):
        return None
    pause = subscription.pause_collection
    times = (
        subscription.current_period_end,
        subscription.cancel_at,
        None if pause is None else pause["resumes_at"],
    )
    return min(t for t in times if t is not None)


def _period_ends_by(subscription: PriceSubscription, when: int) -> bool:
    """Whether the current period (or trial) ends, or a planned cancellation happens, by `when`."""
    cancel_at = subscription.cancel_at
    return subscription.current_period_end <= when or (cancel_at is not None and cancel_at <= when)


def _expire_if_unpaid(subscription: PriceSubscription, until: int) -> None:
    """A subscription whose first invoice is still unpaid 23 hours after it was made (a boleto
    not paid yet, a card never confirmed) ends `incomplete_expired`: its invoice is voided and
    its PaymentIntent canceled; Stripe announces it as `customer.subscription.deleted`."""
    if subscription.status != "incomplete":
        return
    expires_at = subscription.created + INCOMPLETE_EXPIRY_SECONDS
    if until < expires_at:
        return
    invoice = Invoice._api_retrieve(subscription.latest_invoice)
    if invoice.status == "open":
        intent = PaymentIntent._api_retrieve(invoice.payment_intent)
        if intent.status != "canceled":
            cancel_payment_intent(intent.id, cancellation_reason="abandoned")
        invoice._voided = True
        invoice.status_transitions["voided_at"] = expires_at
        send_event("invoice.voided", invoice)
    subscription.status, subscription.ended_at = "incomplete_expired", expires_at
    send_event("customer.subscription.deleted", subscription)


def _pass_time(subscription: PriceSubscription, until: int) -> None:
    """Every period end of `subscription` up to `until`, as Stripe's billing runs them (and the
    expiry of a pending update before them, of a first payment never made, and the end of a
    pause when it comes first)."""
    _expire_if_unpaid(subscription, until)
    expire_if_due(subscription, until)
    boundary = _next_boundary(subscription)
    while boundary is not None and boundary <= until:
        resume_if_due(subscription, boundary)
        if _period_ends_by(subscription, boundary):
            subscription._end_period()
        following = _next_boundary(subscription)
        if following is not None and following <= boundary:
            raise RuntimeError(f"{subscription.id}: its period end does not move forward")
        boundary = following


def _finish_advancing(clock: TestClock) -> None:
    target = clock._target
    if target is None:  # not advancing
        return
    try:
        customers = {customer.id for customer in customers_on_clock(clock.id)}
        for subscription in price_subscriptions():
            if subscription.customer in customers:
                _pass_time(subscription, target)
    finally:
        clock.frozen_time, clock.status, clock._target = target, "ready", None
        send_event("test_helpers.test_clock.ready", clock)


def advance_clock(id: str, frozen_time: Any = None, **unknown: Any) -> TestClock:
    """`POST /v1/test_helpers/test_clocks/{id}/advance`: answers `advancing` at once; the clock's
    customers' subscriptions go through the time passed, then the clock is `ready`."""
    reject_unknown(unknown)
    clock = TestClock._api_retrieve(id)
    if frozen_time is None:
        raise param_error("frozen_time", "Missing required param: frozen_time.")
    target = as_int("frozen_time", frozen_time, minimum=1)
    if clock.status != "ready":
        raise UserError(400, "The test clock is already advancing.")
    if target <= clock.frozen_time:
        raise param_error(
            "frozen_time", "The frozen time must be after the test clock's current frozen time."
        )
    clock.status, clock._target = "advancing", target
    send_event("test_helpers.test_clock.advancing", clock)
    asyncio.get_running_loop().call_soon(_finish_advancing, clock)
    return clock


async def delete_clock(request: web.Request) -> web.StreamResponse:
    """`DELETE /v1/test_helpers/test_clocks/{id}`: its customers and their subscriptions go
    with it."""
    clock = TestClock._api_retrieve(request.match_info["id"])
    customers = customers_on_clock(clock.id)
    for subscription in price_subscriptions():
        live = subscription.status not in ENDED_STATUSES
        if live and subscription.customer in {customer.id for customer in customers}:
            cancel_subscription(subscription.id)
    for customer in customers:
        Customer._api_delete(customer.id)
    TestClock._api_delete(clock.id)
    send_event("test_helpers.test_clock.deleted", clock)
    return localstripe_server.json_response(
        {"id": clock.id, "object": clock.object, "deleted": True}
    )


def add_routes(app: web.Application) -> None:
    """The test clock API."""
    one = COLLECTION + "/{id}"
    app.router.add_post(COLLECTION, localstripe_server.api_create(TestClock, COLLECTION))
    app.router.add_get(COLLECTION, localstripe_server.api_list_all(TestClock, COLLECTION))
    app.router.add_get(one, localstripe_server.api_retrieve(TestClock, one))
    app.router.add_delete(one, delete_clock)
    advance = one + "/advance"
    app.router.add_post(advance, localstripe_server.api_extra(advance_clock, advance))
