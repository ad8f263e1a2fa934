"""Stripe traffic checked against stripe-python's own definition of the pinned API version.

Dev/test only. stripe-python 16.1.0 is generated from Stripe's OpenAPI spec for
`2026-10-28.endive`: its resource classes define every response object, its `stripe.params`
TypedDicts every request, its service classes every route. The schemas are derived from those
types when first used (and cached); only what the types cannot express is written down, in
`_documented.py`.

- `check_response(method, path, status, body, expanded)`: unknown, missing and mistyped fields,
  enum values, `object` names, includable and expandable fields, Stripe's error body, events
  rendered at another API version. An event sent to a webhook endpoint is checked the same way.
- `check_request(method, path, query, form)`: unknown routes, unknown and missing parameters,
  wrong types and enum values, as Stripe refuses them; `stripe_error_body` is Stripe's 400.
- `conformance_middleware(record)`: both, around the emulator's aiohttp handlers.
- `INCLUDABLE`: the fields sent only when expanded, by object name (the emulator renders by it).
"""

from ._documented import INCLUDABLE
from ._violations import Violation
from .middleware import conformance_middleware
from .requests import check_request, decode_form, stripe_error_body
from .responses import check_response

__all__ = [
    "INCLUDABLE",
    "Violation",
    "check_request",
    "check_response",
    "conformance_middleware",
    "decode_form",
    "stripe_error_body",
]
