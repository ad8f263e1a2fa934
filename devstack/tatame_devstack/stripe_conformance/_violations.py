"""What a conformance check reports."""

from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    # Responses.
    "unknown_field",  # a field the SDK class does not declare (e.g. a legacy `subscription.plan`)
    "missing_field",  # a declared field left out (Stripe sends null when there is no value)
    "wrong_type",
    "bad_enum",
    "unknown_object",  # an `object` name the SDK does not know
    "wrong_api_version",  # an event rendered at another API version than the SDK's
    "includable_not_expanded",  # an includable field sent although no `expand[]` asked for it
    "unexpected_expansion",  # an expandable field sent as an object although not expanded
    "not_expanded",  # an expandable field sent as an id although `expand[]` asked for it
    # Requests.
    "unknown_parameter",
    "missing_parameter",
    "invalid_parameter",  # wrong type or enum value
    "unknown_route",
]


@dataclass(frozen=True)
class Violation:
    """One departure from stripe-python's definition of the pinned API version.

    `path` is a JSON path into the response (`subscription.items.data[0].plan`) or the form
    parameter as Stripe names it (`items[0][plan]`); for a route, `METHOD /path`.
    """

    path: str
    kind: Kind
    message: str

    def __str__(self) -> str:
        return f"{self.kind} at {self.path}: {self.message}"
