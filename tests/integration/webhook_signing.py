"""Signing webhook bodies the way Stripe does (`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`)."""

import hashlib
import hmac
import json
import secrets
import time
from typing import Any


def signature_header(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


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
