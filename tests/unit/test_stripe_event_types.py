"""One list of the Stripe event types billing consumes, for billing and the webhook endpoint."""

from services.billing import events
from services.common.stripe_events import BILLING_EVENT_TYPES


def test_billing_acts_on_exactly_the_types_the_webhook_endpoint_subscribes_to() -> None:
    assert set(events._MIRRORED) | set(events._FETCHED) == BILLING_EVENT_TYPES
