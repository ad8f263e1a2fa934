"""Reading a Stripe event's envelope: the fields the inbox keeps beside the payload (the inbox's
row for any provider's event is an InboundEvent)."""

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class MalformedEvent(ValueError):
    """The body is not a Stripe event (bad JSON or missing envelope fields)."""


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A Stripe event as the inbox stores it; `payload` is the JSON text as received."""

    id: str
    type: str
    created: int
    api_version: str | None
    livemode: bool
    object_id: str | None
    customer_id: str | None
    payload: str
    # Who sent it: "stripe", or "clerk" (services/webhooks/clerk_events.py).
    provider: str = "stripe"

    @property
    def ordering_key(self) -> str:
        """Events with one key are delivered one at a time, in `created` order: Stripe's per
        customer (else per object), another provider's per subject, under its own prefix
        (`clerk:user_…`), so that it never shares a key with a Stripe id."""
        if self.provider != "stripe":
            return f"{self.provider}:{self.object_id or self.id}"
        return self.customer_id or self.object_id or self.id


def _customer_of(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        object_id = obj.get("id")
        return object_id if isinstance(object_id, str) else None
    customer = obj.get("customer")
    if isinstance(customer, str):
        return customer
    if isinstance(customer, dict):
        return _customer_of({"object": "customer", "id": customer.get("id")})
    return None


def parse_event(payload: str) -> InboundEvent:
    """The envelope of a Stripe event, or MalformedEvent saying what is wrong."""
    try:
        event = json.loads(payload)
    except json.JSONDecodeError as e:
        raise MalformedEvent(f"body is not JSON: {e.msg}") from e
    except ValueError as e:  # an integer of more digits than Python converts
        raise MalformedEvent("body holds a number too large to read") from e
    except RecursionError as e:
        raise MalformedEvent("body is nested too deeply") from e
    return event_from_dict(event, payload)


# What Postgres cannot hold: NUL in text or jsonb, and a lone UTF-16 surrogate (jsonb refuses
# `\ud800` unpaired; as text it cannot even be encoded). In JSON text both can only come as
# `\u` escapes, which Stripe writes only for control characters: this cheap test lets nearly
# every event skip the walk below.
_ESCAPES_POSTGRES_MAY_REFUSE = ("\\u0000", "\\ud", "\\uD")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable(event: Any, payload: str) -> tuple[Any, str]:
    """`event` and its JSON text as the inbox can store them: every NUL and lone surrogate in a
    string or key replaced by U+FFFD (the payload is then re-serialized; nothing else changes).

    Refusing such an event would make Stripe retry it for three days and then drop it, and one
    in a batch would fail its batch-mates' commit; stored this way it is kept and delivered, and
    billing (whose Postgres could not hold the character either) reads the replacement."""
    if not any(escape in payload for escape in _ESCAPES_POSTGRES_MAY_REFUSE):
        return event, payload
    try:
        cleaned = _replace_unstorable(event)
        if cleaned == event:
            return event, payload
        event_id = cleaned.get("id") if isinstance(cleaned, dict) else None
        log.warning(
            "replaced characters Postgres cannot store in an event",
            extra={"fields": {"event": event_id}},
        )
        return cleaned, json.dumps(cleaned, ensure_ascii=False)
    except RecursionError as e:
        raise MalformedEvent("body is nested too deeply") from e


def _replace_unstorable(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value)
    if isinstance(value, list):
        return [_replace_unstorable(item) for item in value]
    if isinstance(value, dict):
        return {_replace_unstorable(k): _replace_unstorable(v) for k, v in value.items()}
    return value


def event_from_dict(event: object, payload: str) -> InboundEvent:
    """The envelope of an already-decoded event (`payload` is its JSON text), made storable."""
    event, payload = storable(event, payload)
    if not isinstance(event, dict):
        raise MalformedEvent("an event is a JSON object")
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or len(event_id) > 255:
        raise MalformedEvent("id must be a Stripe event id (evt_…)")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 255:
        raise MalformedEvent("type must be a non-empty string")
    if not isinstance(created, int) or isinstance(created, bool) or created <= 0:
        raise MalformedEvent("created must be a Unix time")
    livemode = event.get("livemode")
    if not isinstance(livemode, bool):
        raise MalformedEvent("livemode must be true or false")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise MalformedEvent("data.object must be an object")
    api_version = event.get("api_version")
    object_id = obj.get("id")
    return InboundEvent(
        id=event_id,
        type=event_type,
        created=created,
        api_version=api_version if isinstance(api_version, str) else None,
        livemode=livemode,
        object_id=object_id if isinstance(object_id, str) else None,
        customer_id=_customer_of(obj),
        payload=payload,
    )
