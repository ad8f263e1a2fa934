"""Setup intents as Stripe runs them with its test cards: a card that declines leaves the intent
`requires_payment_method` with its `last_setup_error`; one that asks for 3-D Secure waits in
`requires_action` for the card holder's answer; once it succeeds, the card is the customer's."""

from typing import Any

import stripe
from localstripe.errors import UserError
from localstripe.resources import PaymentMethod, SetupIntent

from tatame_devstack.stripe_emulator.boleto import allowed_types
from tatame_devstack.stripe_emulator.charges import CardError
from tatame_devstack.stripe_emulator.customers import attach
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.intents import AUTHENTICATION_FAILURE, declined, three_d_secure
from tatame_devstack.stripe_emulator.params import (
    as_bool,
    as_optional_str,
    as_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.payment_methods import test_card
from tatame_devstack.stripe_emulator.render import expanded, shape
from tatame_devstack.stripe_emulator.subscriptions import price_subscriptions

SI = stripe.SetupIntent


def _succeed(intent: SetupIntent, payment_method: PaymentMethod) -> None:
    """The card is saved: attached to the intent's customer, for a subscription waiting for it
    (`pending_setup_intent`) too."""
    intent.status, intent.next_action = "succeeded", None
    if intent.customer is not None:
        attach(payment_method, intent.customer)
    send_event("setup_intent.succeeded", intent)
    for subscription in price_subscriptions():
        if subscription.pending_setup_intent == intent.id:
            subscription._on_setup_intent_succeeded(intent)


def confirm_setup_intent(
    id: str, payment_method: Any = None, return_url: Any = None, **unknown: Any
) -> SetupIntent:
    """`POST /v1/setup_intents/{id}/confirm`, with the card to save (such as `pm_card_visa`)."""
    reject_unknown(unknown)
    as_optional_str("return_url", return_url)
    intent = SetupIntent._api_retrieve(id)
    if intent.status not in ("requires_payment_method", "requires_confirmation"):
        raise UserError(
            400,
            f"You cannot confirm this SetupIntent because it has a status of {intent.status}.",
            {"code": "setup_intent_unexpected_state"},
        )
    if payment_method is not None:
        intent.payment_method = PaymentMethod._api_retrieve(
            as_str("payment_method", payment_method)
        ).id
    if intent.payment_method is None:
        raise UserError(
            400,
            "You cannot confirm this SetupIntent because it's missing a payment method.",
            {"code": "setup_intent_unexpected_state"},
        )
    card = PaymentMethod._api_retrieve(intent.payment_method)
    intent._last_error = None
    if test_card(card).declines_on_attach:
        intent._last_error = declined(card)
        intent.status, intent.payment_method = "requires_payment_method", None
        send_event("setup_intent.setup_failed", intent)
        error = {**intent._last_error, "payment_method": card._export()}
        raise CardError({**error, "setup_intent": intent._export()})
    if test_card(card).requires_authentication:
        intent.status, intent.next_action = "requires_action", three_d_secure(intent.id)
        send_event("setup_intent.requires_action", intent)
    else:
        _succeed(intent, card)
    return intent


def authenticate_setup_intent(id: str, outcome: Any = None, **unknown: Any) -> SetupIntent:
    """`POST /_testing/setup_intents/{id}/authenticate` (emulator only): the card holder's
    3-D Secure answer, `outcome=succeed` (the card is saved) or `fail`."""
    reject_unknown(unknown)
    succeeds = as_str("outcome", outcome, choices=("succeed", "fail")) == "succeed"
    intent = SetupIntent._api_retrieve(id)
    if intent.status != "requires_action":
        raise UserError(400, f"This SetupIntent's status is {intent.status}.")
    card = PaymentMethod._api_retrieve(intent.payment_method)
    if succeeds:
        _succeed(intent, card)
        return intent
    code = "setup_intent_authentication_failure"
    intent._last_error = {**AUTHENTICATION_FAILURE, "code": code, "payment_method": card.id}
    intent.status, intent.next_action, intent.payment_method = "requires_payment_method", None, None
    send_event("setup_intent.setup_failed", intent)
    return intent


def create_setup_intent(
    allowed_payment_method_types: Any = None,
    automatic_payment_methods: Any = None,
    **params: Any,
) -> SetupIntent:
    """`POST /v1/setup_intents`, with its `setup_intent.created` event: for cards (boleto saves
    no payment method for later), of `allowed_payment_method_types` if given."""
    allowed = allowed_types("allowed_payment_method_types", allowed_payment_method_types)
    if automatic_payment_methods is not None:  # on by default at the pinned version
        if not isinstance(automatic_payment_methods, dict):
            raise param_error("automatic_payment_methods", "Invalid hash")
        as_bool("automatic_payment_methods[enabled]", automatic_payment_methods.get("enabled"))
    if allowed is not None and "card" not in allowed:
        raise param_error(
            "allowed_payment_method_types", "None of these payment methods can be set up."
        )
    intent = SetupIntent(**params)
    intent._allowed_types = allowed
    send_event("setup_intent.created", intent)
    return intent


def render_setup_intent(intent: SetupIntent, expand: Any = None) -> dict[str, Any]:
    """A setup intent at the pinned API version."""
    error = getattr(intent, "_last_error", None)
    if error is not None:
        card = PaymentMethod._api_retrieve(error["payment_method"])
        error = shape(SI.LastSetupError, {**error, "payment_method": card._export()})
    rendered = shape(
        SI,
        {
            "id": intent.id,
            "object": "setup_intent",
            "allowed_payment_method_types": getattr(intent, "_allowed_types", None),
            "automatic_payment_methods": shape(
                SI.AutomaticPaymentMethods, {"allow_redirects": "always", "enabled": True}
            ),
            "client_secret": intent.client_secret,
            "created": intent.created,
            "customer": intent.customer,
            "flow_directions": None,
            "last_setup_error": error,
            "livemode": False,
            "metadata": intent.metadata,
            "next_action": (
                None if intent.next_action is None else shape(SI.NextAction, intent.next_action)
            ),
            "payment_method": intent.payment_method,
            "payment_method_options": shape(
                SI.PaymentMethodOptions,
                {
                    "card": shape(
                        SI.PaymentMethodOptions.Card, {"request_three_d_secure": "automatic"}
                    )
                },
            ),
            "payment_method_types": intent.payment_method_types,
            "status": intent.status,
            "usage": intent.usage,
        },
    )
    return expanded(rendered, expand or ())


def extend_setup_intents() -> None:
    """Setup intents on localstripe's class: created with their event and rendered as Stripe
    does at the pinned API version."""
    SetupIntent._api_create = classmethod(lambda cls, **params: create_setup_intent(**params))
    SetupIntent._export = render_setup_intent
