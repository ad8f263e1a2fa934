"""Emulator-only endpoints (`/_testing/*`) for what a customer, a test clock or the emulator
itself would do, where Stripe has a hosted page or the passing of time instead."""

import dataclasses
from typing import Any

from aiohttp import web
from localstripe import server as localstripe_server
from localstripe.errors import UserError
from localstripe.resources import Invoice, PaymentIntent, PaymentMethod, Subscription

from tatame_devstack.stripe_conformance import Violation
from tatame_devstack.stripe_emulator.boleto import EXPIRED, is_boleto, session_of
from tatame_devstack.stripe_emulator.checkout import CheckoutSession, EphemeralKey
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.intents import charge_intent
from tatame_devstack.stripe_emulator.params import as_str, reject_unknown
from tatame_devstack.stripe_emulator.render import Handler, error_response
from tatame_devstack.stripe_emulator.state import stored
from tatame_devstack.stripe_emulator.subscriptions import subscription_named


def _end_subscription_period(id: str, **unknown: Any) -> Subscription:
    """`POST /_testing/subscriptions/{id}/end_period`: the period (or trial) ends now."""
    reject_unknown(unknown)
    return subscription_named("id", id)._end_period()


def _settle_boleto(id: str, outcome: Any = None, **unknown: Any) -> PaymentIntent:
    """`POST /_testing/payment_intents/{id}/boleto` (emulator only): the voucher was paid at a
    bank (`outcome=pay`) or expired unpaid (`outcome=expire`); see boleto.py."""
    reject_unknown(unknown)
    paid = as_str("outcome", outcome, choices=("pay", "expire")) == "pay"
    intent = PaymentIntent._api_retrieve(id)
    boleto = intent.payment_method and PaymentMethod._api_retrieve(intent.payment_method)
    if intent.status != "requires_action" or not is_boleto(boleto):
        raise UserError(400, f"This PaymentIntent's status is {intent.status}: no boleto waits.")
    session = session_of(intent)
    intent.next_action = None
    if paid:
        charge_intent(intent, boleto)
        if session is not None:
            session.payment_status = "paid"
            send_event("checkout.session.async_payment_succeeded", session)
        return intent
    intent.payment_method = None
    intent._last_error = {**EXPIRED, "payment_method": boleto.id}
    send_event("payment_intent.payment_failed", intent)
    if intent.invoice:  # an attempt to pay the invoice failed
        send_event("invoice.payment_failed", Invoice._api_retrieve(intent.invoice))
    if session is not None:
        send_event("checkout.session.async_payment_failed", session)
    return intent


async def _ephemeral_key_version(request: web.Request) -> web.StreamResponse:
    """`GET /_testing/ephemeral_keys/{secret}`: the API version the key was made for."""
    secret = request.match_info["secret"]
    key = next((k for k in stored(EphemeralKey.object) if k.secret == secret), None)
    if key is None:
        raise UserError(404, "No such ephemeral key.")
    return web.json_response({"id": key.id, "stripe_version": key._stripe_version})


# Stripe's 429 bodies (docs.stripe.com/error-codes): its rate limiter's, and a lock timeout's
# (another request holds the object), which alone says Stripe-Should-Retry: true.
_TOO_MANY = {
    "rate_limit": (
        "Request rate limit exceeded. Learn more about rate limits here "
        "https://docs.stripe.com/rate-limits.",
        {},
    ),
    "lock_timeout": (
        "This object cannot be accessed right now because another API request or Stripe "
        "process is currently accessing it. If you see this error intermittently, retry the "
        "request. If you see this error frequently and are making multiple concurrent requests "
        "to a single object, make your requests serially or at a lower rate.",
        {"Stripe-Should-Retry": "true"},
    ),
}


@dataclasses.dataclass
class _RateLimit:
    remaining: int = 0
    code: str = "rate_limit"


_rate_limit = _RateLimit()


async def _set_rate_limit(request: web.Request) -> web.StreamResponse:
    """`POST /_testing/rate_limit` with `count=N` (`code=rate_limit|lock_timeout`): the next N
    API requests are answered 429 as Stripe answers them; `count=0` stops it."""
    params = await localstripe_server.get_post_data(request) or {}
    code = params.pop("code", "rate_limit")
    count = params.pop("count", None)
    reject_unknown(params)
    if code not in _TOO_MANY or count is None or not str(count).isdigit():
        raise UserError(400, "count (a whole number) and code (rate_limit|lock_timeout) expected")
    _rate_limit.remaining, _rate_limit.code = int(count), code
    return web.json_response(dataclasses.asdict(_rate_limit))


async def _get_rate_limit(_request: web.Request) -> web.StreamResponse:
    """`GET /_testing/rate_limit`: how many API requests are still to be answered 429."""
    return web.json_response(dataclasses.asdict(_rate_limit))


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer API requests 429 while `POST /_testing/rate_limit` says so."""
    if _rate_limit.remaining > 0 and request.path.startswith("/v1/"):
        _rate_limit.remaining -= 1
        message, headers = _TOO_MANY[_rate_limit.code]
        slug = _rate_limit.code.replace("_", "-")
        return error_response(
            429,
            {
                "code": _rate_limit.code,
                "doc_url": f"https://docs.stripe.com/error-codes/{slug}",
                "message": message,
                "type": "invalid_request_error",
            },
            headers=headers,
        )
    return await handler(request)


def add_routes(app: web.Application, violations: list[Violation] | None) -> None:
    """Add the `/_testing/*` endpoints to `app`; `GET /_testing/conformance` lists `violations`
    when the conformance check runs."""
    for method, path, func in (
        # Paying on the (absent) hosted page, with `payment_method=pm_card_…`.
        ("POST", "/_testing/checkout/sessions/{id}/complete", CheckoutSession._api_complete),
        ("POST", "/_testing/subscriptions/{id}/end_period", _end_subscription_period),
        # The customer pays the boleto at a bank, or lets it expire: `outcome=pay|expire`.
        ("POST", "/_testing/payment_intents/{id}/boleto", _settle_boleto),
    ):
        app.router.add_route(method, path, localstripe_server.api_extra(func, path))
    app.router.add_get("/_testing/ephemeral_keys/{secret}", _ephemeral_key_version)
    app.router.add_post("/_testing/rate_limit", _set_rate_limit)
    app.router.add_get("/_testing/rate_limit", _get_rate_limit)
    if violations is not None:

        async def conformance(request: web.Request) -> web.StreamResponse:
            listed = [dataclasses.asdict(violation) for violation in violations]
            return web.json_response({"violations": listed})

        app.router.add_get("/_testing/conformance", conformance)
