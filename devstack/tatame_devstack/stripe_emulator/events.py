"""Events: every change the emulator makes is announced as Stripe announces it at the pinned API
version, with the object rendered as it is at the time of the event and, for a change, the
previous values of the fields that changed (`data.previous_attributes`)."""

from typing import Any

import stripe
from localstripe.resources import Event, StripeObject
from localstripe.webhooks import schedule_webhook

from tatame_devstack.stripe_emulator.render import expanded, shape

API_VERSION = stripe.api_version  # the version stripe-python is generated from, and pins

# What each object looked like in the last event about it, to tell what a change changed.
_last_rendered: dict[str, dict[str, Any]] = {}


def send_event(event_type: str, obj: StripeObject) -> None:
    """Record the event `event_type` about `obj` and deliver it to the registered webhooks."""
    schedule_webhook(Event(event_type, obj))


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields of `after` whose values differ in `before`, with their values in `before`."""
    return {name: before.get(name) for name, value in after.items() if before.get(name) != value}


def _export_event(event: Event, expand: Any = None) -> dict[str, Any]:
    values = {
        "id": event.id,
        "object": "event",
        "api_version": API_VERSION,
        "created": event.created,
        "data": shape(stripe.Event.Data, event.data),
        "livemode": False,
        "pending_webhooks": 0,
        "request": shape(stripe.Event.Request, {}),
        "type": event.type,
    }
    return expanded(shape(stripe.Event, values), expand or [])


def extend_events() -> None:
    """Make localstripe's events (its own as well as ours) events of the pinned version."""
    record = Event.__init__

    def init(event: Event, type: str, data: StripeObject) -> None:
        record(event, type, data)  # renders `data` now, with our renderers
        rendered = event.data["object"]
        before = _last_rendered.get(rendered.get("id", ""))
        if type.endswith(".updated") and before is not None:
            event.data["previous_attributes"] = previous_attributes(before, rendered)
        _last_rendered[rendered.get("id", "")] = rendered
        event.api_version = API_VERSION

    Event.__init__ = init
    Event._export = _export_event
