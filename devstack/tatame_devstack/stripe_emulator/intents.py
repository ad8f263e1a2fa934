"""Payment intents as Stripe runs them with its test cards and boleto (boleto.py): `pay` charges an
intent, asks the card holder to authenticate (3-D Secure) or issues a boleto voucher; a declined
charge leaves it `requires_payment_method` with its `last_payment_error`. Paying an open invoice
(`pay_invoice`) charges its intent. The account has cards and (in `brl`) boleto enabled: what
automatic payment methods offer."""

import time
from typing import Any

import stripe
from localstripe.errors import UserError
from localstripe.resources import Customer, Invoice, PaymentIntent, PaymentMethod, Subscription

from tatame_devstack.stripe_emulator.boleto import (
    BOLETO,
    EXPIRES_AFTER_DAYS,
    allowed_types,
    create_boleto,
    is_boleto,
    issue_voucher,
    offered_types,
)
from tatame_devstack.stripe_emulator.charges import DECLINE, CardError, create_charge
from tatame_devstack.stripe_emulator.customers import customer_payment_method
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    as_bool,
    as_int,
    as_metadata,
    as_optional_str,
    as_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.payment_methods import test_card
from tatame_devstack.stripe_emulator.render import expanded, shape
from tatame_devstack.stripe_emulator.tax import calculation_of_hooks

PI = stripe.PaymentIntent
AUTHENTICATION_PAGES = "https://hooks.stripe-emulator.invalid/3d_secure_2/authenticate"
AUTHENTICATION_FAILURE = {
    "type": "invalid_request_error",
    "code": "payment_intent_authentication_failure",
    "message": "The provided PaymentMethod has failed authentication. You can provide "
    "payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
    "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
}
CONFIRMABLE = ("requires_payment_method", "requires_confirmation")
CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")
# The account's default payment method configuration, which automatic payment methods follow.
DEFAULT_CONFIGURATION = "pmc_emulator_default"


def three_d_secure(intent_id: str) -> dict[str, Any]:
    """The `next_action` of an intent waiting for the card holder's 3-D Secure answer."""
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {
            "type": "three_d_secure_redirect",
            "stripe_js": f"{AUTHENTICATION_PAGES}/{intent_id}",
        },
    }


def declined(payment_method: PaymentMethod, **charge: str) -> dict[str, Any]:
    """A `last_payment_error` (or `last_setup_error`) for a declined card, with the id of the
    declined `charge` if there is one."""
    return {"type": "card_error", **DECLINE, "payment_method": payment_method.id, **charge}


def payment_method_types(intent: PaymentIntent) -> list[str]:
    """What can pay `intent`: the account's methods for its currency, filtered by the types
    it allows (its `allowed_payment_method_types`, or its subscription's)."""
    return offered_types(intent.currency, getattr(intent, "_allowed_types", None))


def pay(intent: PaymentIntent, payment_method: PaymentMethod, *, authenticated: bool) -> str:
    """Confirm `intent` with `payment_method`, as Stripe does with its test cards and boleto,
    and return the new status: `succeeded` (charged; its invoice, if any, is paid),
    `requires_action` (the card asks for 3-D Secure unless `authenticated`, or a boleto voucher
    waits to be paid) or `requires_payment_method` (declined: the charge failed,
    `last_payment_error` says why). Sends the intent's and charge's events.

    Subscriptions and invoices charge through this too (see `extend_intents`)."""
    if payment_method.type not in payment_method_types(intent):
        raise UserError(
            400,
            f"The PaymentMethod provided ({payment_method.type}) is not allowed for this "
            "PaymentIntent. Please attach a PaymentMethod of one of the following types: "
            + ", ".join(payment_method_types(intent)),
            {"code": "payment_intent_invalid_parameter", "param": "payment_method"},
        )
    intent._last_error = None
    intent.payment_method = payment_method.id
    if is_boleto(payment_method):
        return issue_voucher(intent)
    if test_card(payment_method).requires_authentication and not authenticated:
        intent.next_action = three_d_secure(intent.id)
        send_event("payment_intent.requires_action", intent)
        return intent.status
    intent.next_action = None
    return charge_intent(intent, payment_method)


def charge_intent(intent: PaymentIntent, payment_method: PaymentMethod) -> str:
    """Charge `intent` with `payment_method`; its new status (see `pay`)."""
    charge = create_charge(
        amount=intent.amount,
        currency=intent.currency,
        customer=intent.customer,
        payment_method=payment_method,
        payment_intent=intent.id,
    )
    intent.latest_charge = charge
    if charge.status == "failed":
        intent._last_error = declined(payment_method, charge=charge.id)
        intent.payment_method = None
        send_event("payment_intent.payment_failed", intent)
    else:
        intent._on_success()  # localstripe's: the event, and the invoice is paid
    return intent.status


def _confirm_off_session(intent: PaymentIntent, on_failure_now: Any) -> None:
    """localstripe's `PaymentIntent._confirm`, as subscriptions and invoices call it."""
    status = pay(intent, PaymentMethod._api_retrieve(intent.payment_method), authenticated=False)
    if status == "requires_payment_method":
        on_failure_now()


def _on_session_failure(intent: PaymentIntent) -> CardError:
    """A client's confirmation was declined: its invoice learns it; the client gets a 402."""
    if intent.invoice:
        Invoice._api_retrieve(intent.invoice)._on_payment_failure_now()
    error = dict(intent._last_error)
    error["payment_method"] = PaymentMethod._api_retrieve(error["payment_method"])._export()
    return CardError({**error, "payment_intent": intent._export()})


def _confirm(
    intent: PaymentIntent, payment_method: Any, payment_method_data: Any = None
) -> PaymentIntent:
    """Confirm `intent` on the client's behalf, with a new `payment_method` (or one made from
    `payment_method_data`, a boleto) or the one it has."""
    if payment_method_data is not None:
        if payment_method is not None:
            raise param_error("payment_method_data", "Pass payment_method or payment_method_data.")
        payment_method = create_boleto("payment_method_data", payment_method_data).id
    if intent.status not in CONFIRMABLE or (payment_method, intent.payment_method) == (None, None):
        raise UserError(
            400,
            f"You cannot confirm this PaymentIntent because it has a status of {intent.status}.",
            {"code": "payment_intent_unexpected_state"},
        )
    if payment_method is not None:
        payment_method = as_str("payment_method", payment_method)
    card = PaymentMethod._api_retrieve(payment_method or intent.payment_method)
    if pay(intent, card, authenticated=False) == "requires_payment_method":
        raise _on_session_failure(intent)
    return intent


def confirm_payment_intent(
    id: str,
    payment_method: Any = None,
    payment_method_data: Any = None,
    return_url: Any = None,
    **unknown: Any,
) -> PaymentIntent:
    """`POST /v1/payment_intents/{id}/confirm`, also with the `payment_method` to pay with (such
    as `pm_card_visa`) or the `payment_method_data` of a boleto, as PaymentSheet confirms."""
    reject_unknown(unknown)
    as_optional_str("return_url", return_url)
    return _confirm(PaymentIntent._api_retrieve(id), payment_method, payment_method_data)


def create_payment_intent(
    amount: Any = None,
    currency: Any = None,
    customer: Any = None,
    description: Any = None,
    metadata: Any = None,
    payment_method: Any = None,
    allowed_payment_method_types: Any = None,
    automatic_payment_methods: Any = None,
    confirm: Any = False,
    hooks: Any = None,
    **unknown: Any,
) -> PaymentIntent:
    """`POST /v1/payment_intents`: the account's payment methods for the currency (dynamic
    payment methods), of `allowed_payment_method_types` if given; taxed by the Stripe Tax
    calculation of `hooks[inputs][tax][calculation]` (its total must be the amount)."""
    reject_unknown(unknown)
    for name, value in (("amount", amount), ("currency", currency)):
        if value is None:
            raise param_error(name, f"Missing required param: {name}.")
    allowed = allowed_types("allowed_payment_method_types", allowed_payment_method_types)
    automatic = True
    if automatic_payment_methods is not None:
        if not isinstance(automatic_payment_methods, dict):
            raise param_error("automatic_payment_methods", "Invalid hash")
        automatic = as_bool(
            "automatic_payment_methods[enabled]", automatic_payment_methods.get("enabled")
        )
    confirm = as_bool("confirm", confirm)
    amount = as_int("amount", amount, minimum=1)
    calculation = calculation_of_hooks(hooks, amount)
    intent = PaymentIntent(
        amount=amount,
        currency=as_str("currency", currency).lower(),
        customer=as_optional_str("customer", customer),
        metadata=as_metadata(metadata),
    )
    intent.description = as_optional_str("description", description)
    intent._automatic = automatic
    intent._tax_calculation = calculation
    intent._allowed_types = allowed
    send_event("payment_intent.created", intent)
    return _confirm(intent, payment_method) if confirm else intent


def authenticate_payment_intent(id: str, outcome: Any = None, **unknown: Any) -> PaymentIntent:
    """`POST /_testing/payment_intents/{id}/authenticate` (emulator only): the card holder's
    3-D Secure answer, `outcome=succeed` (the payment goes on) or `fail`."""
    reject_unknown(unknown)
    succeeds = as_str("outcome", outcome, choices=("succeed", "fail")) == "succeed"
    intent = PaymentIntent._api_retrieve(id)
    if intent.status != "requires_action":
        raise UserError(400, f"This PaymentIntent's status is {intent.status}.")
    card = PaymentMethod._api_retrieve(intent.payment_method)
    if succeeds:
        pay(intent, card, authenticated=True)
        return intent
    intent.next_action, intent.payment_method = None, None
    intent._last_error = {**AUTHENTICATION_FAILURE, "payment_method": card.id}
    send_event("payment_intent.payment_failed", intent)
    if intent.invoice:  # an attempt to pay the invoice failed
        send_event("invoice.payment_failed", Invoice._api_retrieve(intent.invoice))
    return intent


INVOICE_REQUIRES_ACTION = {
    "code": "invoice_payment_intent_requires_action",
    "message": "This payment requires additional user action before it can be completed "
    "successfully. Payment can be completed using the PaymentIntent associated with the invoice.",
    "doc_url": "https://stripe.com/docs/error-codes/invoice-payment-intent-requires-action",
}


def _invoice_payment_method(invoice: Invoice, intent: PaymentIntent) -> PaymentMethod | None:
    """What pays an invoice when the request names nothing: the card its intent waits on (to
    authenticate), else its subscription's default, else its customer's."""
    if intent.payment_method is not None:
        return PaymentMethod._api_retrieve(intent.payment_method)
    if invoice.subscription is not None:
        found: PaymentMethod | None = Subscription._api_retrieve(
            invoice.subscription
        )._payment_method()
        return found
    default: PaymentMethod | None = Customer._api_retrieve(
        invoice.customer
    )._get_default_payment_method_or_source()
    return default


def pay_invoice(
    id: str, payment_method: Any = None, off_session: Any = None, **unknown: Any
) -> Invoice:
    """`POST /v1/invoices/{id}/pay`: charge an open invoice's intent with `payment_method` (one
    of its customer's) or what pays it otherwise. A card asking for 3-D Secure leaves the intent
    `requires_action` (`invoice.payment_action_required`) and the answer is Stripe's 402
    `invoice_payment_intent_requires_action`; a decline is Stripe's 402 card error, the invoice
    stays open (`invoice.payment_failed`). The card holder is taken as present whatever
    `off_session` says (Stripe declines such a card off session, `authentication_required`)."""
    reject_unknown(unknown)
    if off_session is not None:
        as_bool("off_session", off_session)
    invoice = Invoice._api_retrieve(id)
    if invoice.status == "paid":
        raise UserError(400, "Invoice is already paid.")
    if invoice.status != "open" or invoice.payment_intent is None:
        raise UserError(400, f"You cannot pay this invoice: its status is {invoice.status}.")
    intent = PaymentIntent._api_retrieve(invoice.payment_intent)
    if payment_method is not None:
        card = customer_payment_method("payment_method", payment_method, invoice.customer)
    else:
        card = _invoice_payment_method(invoice, intent)
    if card is None:
        raise UserError(400, "The customer has no default payment method to pay the invoice with.")
    status = pay(intent, card, authenticated=False)
    if status == "requires_payment_method":
        raise _on_session_failure(intent)
    if status == "requires_action":
        send_event("invoice.payment_action_required", invoice)
        raise CardError({"type": "card_error", **INVOICE_REQUIRES_ACTION})
    return invoice


def cancel_payment_intent(
    id: str, cancellation_reason: Any = None, **unknown: Any
) -> PaymentIntent:
    """`POST /v1/payment_intents/{id}/cancel`, while it has not succeeded nor started to."""
    reject_unknown(unknown)
    reason = None
    if cancellation_reason is not None:
        reason = as_str("cancellation_reason", cancellation_reason, choices=CANCELLATION_REASONS)
    intent = PaymentIntent._api_retrieve(id)
    if intent.status not in (*CONFIRMABLE, "requires_action"):
        raise UserError(
            400,
            f"You cannot cancel this PaymentIntent because it has a status of {intent.status}.",
            {"code": "payment_intent_unexpected_state"},
        )
    intent._canceled, intent.next_action = True, None
    intent.canceled_at, intent.cancellation_reason = int(time.time()), reason
    send_event("payment_intent.canceled", intent)
    return intent


def _hooks(calculation: str | None) -> dict[str, Any] | None:
    if calculation is None:
        return None
    H = PI.Hooks
    tax = shape(H.Inputs.Tax, {"calculation": calculation})
    return shape(H, {"inputs": shape(H.Inputs, {"tax": tax})})


def render_payment_intent(intent: PaymentIntent, expand: Any = None) -> dict[str, Any]:
    """A payment intent at the pinned API version."""
    automatic = getattr(intent, "_automatic", False)
    error = getattr(intent, "_last_error", None)
    if error is not None:
        card = PaymentMethod._api_retrieve(error["payment_method"])
        error = shape(PI.LastPaymentError, {**error, "payment_method": card._export()})
    charge = intent.latest_charge
    status = intent.status
    types = payment_method_types(intent)
    options = {"card": shape(PI.PaymentMethodOptions.Card, {"request_three_d_secure": "automatic"})}
    if BOLETO in types:
        options[BOLETO] = shape(
            PI.PaymentMethodOptions.Boleto, {"expires_after_days": EXPIRES_AFTER_DAYS}
        )
    rendered = shape(
        PI,
        {
            "id": intent.id,
            "object": "payment_intent",
            "amount": intent.amount,
            "amount_capturable": 0,
            "amount_details": shape(PI.AmountDetails, {"tip": {}}),
            "allowed_payment_method_types": getattr(intent, "_allowed_types", None),
            "amount_received": intent.amount if status == "succeeded" else 0,
            "automatic_payment_methods": (
                shape(PI.AutomaticPaymentMethods, {"allow_redirects": "always", "enabled": True})
                if automatic
                else None
            ),
            "canceled_at": getattr(intent, "canceled_at", None),
            "hooks": _hooks(getattr(intent, "_tax_calculation", None)),
            "cancellation_reason": getattr(intent, "cancellation_reason", None),
            "capture_method": "automatic_async",
            "client_secret": intent.client_secret,
            "confirmation_method": "automatic",
            "created": intent.created,
            "currency": intent.currency,
            "customer": intent.customer,
            "description": getattr(intent, "description", None),
            "last_payment_error": error,
            "latest_charge": None if charge is None else charge.id,
            "livemode": False,
            "metadata": intent.metadata,
            "next_action": (
                None if intent.next_action is None else shape(PI.NextAction, intent.next_action)
            ),
            "payment_method": intent.payment_method,
            "payment_method_configuration_details": (
                shape(PI.PaymentMethodConfigurationDetails, {"id": DEFAULT_CONFIGURATION})
                if automatic
                else None
            ),
            "payment_method_options": shape(PI.PaymentMethodOptions, options),
            "payment_method_types": types,
            "status": status,
        },
    )
    return expanded(rendered, expand or ())


def extend_intents() -> None:
    """Payment intents on localstripe's class: created, confirmed (also by subscriptions and
    invoices, through `pay`) and rendered as Stripe does at the pinned API version."""
    PaymentIntent._api_create = classmethod(lambda cls, **params: create_payment_intent(**params))
    PaymentIntent._confirm = _confirm_off_session
    PaymentIntent._export = render_payment_intent
