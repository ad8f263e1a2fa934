"""Signing webhook bodies the way Stripe does (`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`)."""

import json
import secrets
import time
from typing import Any

from tatame_devstack.stripe_emulator.webhook_delivery import signature_header

__all__ = ["encode", "signature_header", "stripe_event"]


def stripe_event(
    event_type: str = "customer.updated",
    *,
    obj: dict[str, Any] | None = None,
    created: int | None = None,
    livemode: bool = False,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A Stripe event envelope around `obj`."""
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created or int(time.time()),
        "livemode": livemode,
        "type": event_type,
        "data": {"object": obj or {"id": "cus_" + secrets.token_hex(6), "object": "customer"}},
    }


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()
