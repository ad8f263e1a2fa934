"""`DELETE /v1/customers/{id}` as Stripe does it: the customer's live subscriptions are canceled at
once (each with its `customer.subscription.deleted`), `customer.deleted` carries the customer as it
was, and the answer is the deleted stub `{"id", "object": "customer", "deleted": true}`; a
customer deleted already is `resource_missing` (404)."""

from typing import Any

from localstripe.errors import UserError
from localstripe.resources import Customer, DeletedObject, Subscription

from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import reject_unknown
from tatame_devstack.stripe_emulator.schedules import cancel_subscription
from tatame_devstack.stripe_emulator.state import stored
from tatame_devstack.stripe_emulator.subscriptions import ENDED_STATUSES


def delete_customer(id: str, **params: Any) -> DeletedObject:
    reject_unknown(params)
    try:
        customer = Customer._api_retrieve(id)
    except UserError as e:
        raise UserError(
            404, f"No such customer: '{id}'", {"code": "resource_missing", "param": "id"}
        ) from e
    for subscription in stored(Subscription.object):
        if subscription.customer == id and subscription.status not in ENDED_STATUSES:
            cancel_subscription(subscription.id)
    send_event("customer.deleted", customer)
    return Customer._api_delete(id)
