"""Emulator-only endpoints (`/_testing/*`) for what a customer, a test clock or the emulator
itself would do, where Stripe has a hosted page or the passing of time instead."""

import dataclasses
from typing import Any

from aiohttp import web
from localstripe import server as localstripe_server
from localstripe.errors import UserError
from localstripe.resources import Subscription

from tatame_devstack.stripe_conformance import Violation
from tatame_devstack.stripe_emulator.checkout import CheckoutSession, EphemeralKey
from tatame_devstack.stripe_emulator.params import reject_unknown
from tatame_devstack.stripe_emulator.state import stored
from tatame_devstack.stripe_emulator.subscriptions import subscription_named


def _end_subscription_period(id: str, **unknown: Any) -> Subscription:
    """`POST /_testing/subscriptions/{id}/end_period`: the period (or trial) ends now."""
    reject_unknown(unknown)
    return subscription_named("id", id)._end_period()


async def _ephemeral_key_version(request: web.Request) -> web.StreamResponse:
    """`GET /_testing/ephemeral_keys/{secret}`: the API version the key was made for."""
    secret = request.match_info["secret"]
    key = next((k for k in stored(EphemeralKey.object) if k.secret == secret), None)
    if key is None:
        raise UserError(404, "No such ephemeral key.")
    return web.json_response({"id": key.id, "stripe_version": key._stripe_version})


def add_routes(app: web.Application, violations: list[Violation] | None) -> None:
    """Add the `/_testing/*` endpoints to `app`; `GET /_testing/conformance` lists `violations`
    when the conformance check runs."""
    for method, path, func in (
        # Paying on the (absent) hosted page, with `payment_method=pm_card_…`.
        ("POST", "/_testing/checkout/sessions/{id}/complete", CheckoutSession._api_complete),
        ("POST", "/_testing/subscriptions/{id}/end_period", _end_subscription_period),
    ):
        app.router.add_route(method, path, localstripe_server.api_extra(func, path))
    app.router.add_get("/_testing/ephemeral_keys/{secret}", _ephemeral_key_version)
    if violations is not None:

        async def conformance(request: web.Request) -> web.StreamResponse:
            listed = [dataclasses.asdict(violation) for violation in violations]
            return web.json_response({"violations": listed})

        app.router.add_get("/_testing/conformance", conformance)
