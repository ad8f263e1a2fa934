"""Signing webhook bodies the way Stripe does (`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`)."""

import json
import secrets
from typing import Any

from tatame_devstack.stripe_emulator.webhook_delivery import signature_header

from tests.stripe_objects import event_envelope

__all__ = ["encode", "signature_header", "stripe_event"]


def stripe_event(
    event_type: str = "customer.updated",
    *,
    obj: dict[str, Any] | None = None,
    created: int | None = None,
    livemode: bool = False,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A Stripe event around `obj` (a new customer when None)."""
    return event_envelope(
        event_type,
        obj or {"id": "cus_" + secrets.token_hex(6), "object": "customer"},
        created=created,
        event_id=event_id,
        livemode=livemode,
    )


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()
