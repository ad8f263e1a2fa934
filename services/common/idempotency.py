"""A client's `Idempotency-Key`, as the gateway takes it and billing reads it: one rule, one name."""

import re

# The gRPC call metadata entry that carries the key from the gateway to billing.
IDEMPOTENCY_METADATA = "idempotency-key"
# 1 to 255 visible ASCII characters, as Stripe accepts its own keys.
_CLIENT_KEY = re.compile(r"[\x21-\x7e]{1,255}")
INVALID_KEY_MESSAGE = "an Idempotency-Key is 1 to 255 visible ASCII characters"


def valid_idempotency_key(key: str) -> bool:
    """Whether `key` is a well-formed Idempotency-Key."""
    return _CLIENT_KEY.fullmatch(key) is not None
