"""One list of the Stripe event types billing consumes, for billing and the webhook endpoint."""

from services.billing import events
from services.common.stripe_events import BILLING_EVENT_TYPES, CHECKOUT_COMPLETED


def test_billing_acts_on_exactly_the_types_the_webhook_endpoint_subscribes_to() -> None:
    assert set(events._MIRRORED) | {CHECKOUT_COMPLETED} == BILLING_EVENT_TYPES
