"""The filters Stripe's lists take that localstripe's lack: `created` (a Unix time, or a range
`created[gt|gte|lt|lte]`) on every list billing resyncs from, and `customer` on payment intents
and subscription schedules (which localstripe lists unfiltered, oldest first); and Stripe's 400
for a `starting_after` that names no object of the type (localstripe starts over instead)."""

from collections.abc import Callable
from typing import Any

from localstripe.errors import UserError
from localstripe.resources import (
    Charge,
    Customer,
    Invoice,
    PaymentIntent,
    Product,
    StripeObject,
    Subscription,
    store,
)

from tatame_devstack.stripe_emulator.catalog import Price
from tatame_devstack.stripe_emulator.disputes import Dispute
from tatame_devstack.stripe_emulator.params import as_int, as_str, reject_unknown
from tatame_devstack.stripe_emulator.render import list_newest_first
from tatame_devstack.stripe_emulator.schedules import SubscriptionSchedule

Match = Callable[[Any], bool]

_RANGE: dict[str, Callable[[int, int], bool]] = {
    "gt": int.__gt__,
    "gte": int.__ge__,
    "lt": int.__lt__,
    "lte": int.__le__,
}


def _within(compare: Callable[[int, int], bool], bound: int) -> Match:
    return lambda obj: compare(obj.created, bound)


def _created_matchers(created: Any) -> list[Match]:
    """Predicates of Stripe's `created` filter: one Unix time, or a range of them."""
    if not isinstance(created, dict):
        exact = as_int("created", created, minimum=0)
        return [lambda obj: obj.created == exact]
    bounds = dict(created)
    matchers: list[Match] = []
    for name, compare in _RANGE.items():
        if name in bounds:
            bound = as_int(f"created[{name}]", bounds.pop(name), minimum=0)
            matchers.append(_within(compare, bound))
    reject_unknown(bounds, "created")
    return matchers


def _filtered(cls: type[StripeObject], *, by_customer: bool) -> None:
    """Let `cls`'s list take `created` (and `customer`, when `by_customer`)."""
    listed = cls._api_list_all.__func__

    def list_all(
        cls: type[StripeObject], /, url: str, *, _listed: Any = listed, **params: Any
    ) -> Any:
        matchers: list[Match] = []
        if (created := params.pop("created", None)) is not None:
            matchers += _created_matchers(created)
        if by_customer and (customer := params.pop("customer", None)) is not None:
            wanted = as_str("customer", customer)
            matchers.append(lambda obj: getattr(obj, "customer", None) == wanted)
        after = params.get("starting_after")
        if isinstance(after, str) and f"{cls.object}:{after}" not in store:
            raise UserError(
                400,
                f"No such {cls.object}: '{after}'",
                {"code": "resource_missing", "param": "starting_after"},
            )
        page = _listed(cls, url, **params)
        page._list = [obj for obj in page._list if all(match(obj) for match in matchers)]
        return page

    cls._api_list_all = classmethod(list_all)


def extend_list_filters() -> None:
    """Payment intents and schedules newest first (as Stripe lists), then the filters above;
    after every other change to these lists."""
    list_newest_first(PaymentIntent, SubscriptionSchedule)
    for cls in (Customer, Product, Price, Subscription, Invoice, Charge, Dispute):
        _filtered(cls, by_customer=False)
    for cls in (PaymentIntent, SubscriptionSchedule):
        _filtered(cls, by_customer=True)
