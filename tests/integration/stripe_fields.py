"""Reading the `stripe` SDK's declared types in tests. An expandable field is declared `str | Obj`
(often `| None`): a test knows which one its request asked for, and says so here."""

from typing import TypeVar

import stripe

Obj = TypeVar("Obj", bound=stripe.StripeObject)
Value = TypeVar("Value")


def expanded(value: str | Obj | None) -> Obj:
    """An expandable field that the request expanded: the object itself."""
    assert value is not None, "no object"
    assert not isinstance(value, str), f"not expanded: {value!r}"
    return value


def id_of(value: str | stripe.StripeObject | None) -> str:
    """An expandable field's id, expanded or not."""
    assert value is not None, "no object"
    return value if isinstance(value, str) else str(value["id"])


def present(value: Value | None) -> Value:
    """A field the test expects Stripe to have set."""
    assert value is not None
    return value
