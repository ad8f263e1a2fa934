"""The one ownership check: a Stripe object named by a client is the principal's only when it
belongs to the principal's customer; otherwise it does not exist, for this account."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.customers import CustomerRecord, find_customer
from services.billing.errors import InvalidArgument, NotFound
from services.billing.mirror import optional, reference
from services.billing.stripe_errors import retrieve_or_none

T = TypeVar("T", bound=stripe.StripeObject)


@dataclass(frozen=True, slots=True)
class Owned(Generic[T]):
    """A Stripe object of the principal's customer, as Stripe answered (`answer`) and as a
    dict (`data`)."""

    customer: CustomerRecord
    answer: T
    data: dict[str, Any]


async def owned(
    retrieve: Callable[..., Awaitable[T]],
    object_id: str,
    *,
    engine: AsyncEngine,
    principal: Principal,
    kind: str,
    id_field: str = "id",
    **params: Any,
) -> Owned[T]:
    """`retrieve(object_id)` (a Stripe service's retrieve) when the object's customer is the
    principal's; NotFound otherwise (no customer, no such object, or someone else's), and
    InvalidArgument for an empty id. `kind` names the object in messages ("subscription")."""
    if not object_id:
        raise InvalidArgument(f"{id_field} is required: a {kind} id")
    missing = NotFound(f"no {kind} {object_id!r} for this account")
    customer = await find_customer(engine=engine, principal=principal)
    if customer is None:
        raise missing
    answer = await retrieve_or_none(retrieve, object_id, action=f"retrieve the {kind}", **params)
    if answer is None:
        raise missing
    found = answer.to_dict()
    if optional(reference, found.get("customer")) != customer.stripe_customer_id:
        raise missing
    return Owned(customer, answer, found)
