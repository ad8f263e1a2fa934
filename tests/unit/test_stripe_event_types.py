"""One list of the Stripe event types billing consumes, for billing and the webhook endpoint."""

from services.billing import events
from services.common import stripe_events
from services.common.stripe_events import BILLING_EVENT_TYPES


def test_billing_acts_on_exactly_the_types_the_webhook_endpoint_subscribes_to() -> None:
    assert set(events._MIRRORED) | set(events._FETCHED) == BILLING_EVENT_TYPES


def test_each_list_of_event_types_names_each_type_once() -> None:
    lists = {
        name: value
        for name, value in vars(stripe_events).items()
        if name.endswith("_EVENTS") and isinstance(value, tuple)
    }
    assert "INVOICE_EVENTS" in lists
    for name, types in lists.items():
        assert len(set(types)) == len(types), name
