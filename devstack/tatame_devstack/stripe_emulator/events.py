"""Events: every change the emulator makes is announced as Stripe announces it."""

from localstripe.resources import Event, StripeObject
from localstripe.webhooks import schedule_webhook


def send_event(event_type: str, obj: StripeObject) -> None:
    """Record the event `event_type` about `obj` and deliver it to the registered webhooks."""
    schedule_webhook(Event(event_type, obj))
