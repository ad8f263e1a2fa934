"""The emulator's aiohttp application: localstripe's, extended; `serve` and `main`."""

import argparse
import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from aiohttp import web
from localstripe import server as localstripe_server
from localstripe.resources import Event, Invoice, StripeObject, Subscription, store

from tatame_devstack.stripe_conformance import Violation, check_response, conformance_middleware
from tatame_devstack.stripe_emulator.catalog import CatalogProduct, Price
from tatame_devstack.stripe_emulator.charges import extend_charges
from tatame_devstack.stripe_emulator.checkout import (
    BillingPortalSession,
    CheckoutSession,
    create_ephemeral_key,
)
from tatame_devstack.stripe_emulator.customer_deletion import delete_customer
from tatame_devstack.stripe_emulator.customers import (
    ClockCustomer,
    customer_payment_methods,
    extend_customers,
    update_customer,
)
from tatame_devstack.stripe_emulator.discounts import PromotionCode, PromotionCoupon
from tatame_devstack.stripe_emulator.disputes import add_routes as add_dispute_routes
from tatame_devstack.stripe_emulator.events import extend_events
from tatame_devstack.stripe_emulator.idempotency import IdempotencyLayer
from tatame_devstack.stripe_emulator.intents import (
    authenticate_payment_intent,
    cancel_payment_intent,
    confirm_payment_intent,
    extend_intents,
    pay_invoice,
)
from tatame_devstack.stripe_emulator.invoices import (
    extend_invoices,
    list_invoice_payments,
    retrieve_invoice_payment,
)
from tatame_devstack.stripe_emulator.list_filters import extend_list_filters
from tatame_devstack.stripe_emulator.meters import add_routes as add_meter_routes
from tatame_devstack.stripe_emulator.pauses import extend_invoice_statuses
from tatame_devstack.stripe_emulator.payment_methods import (
    attach_payment_method,
    detach_payment_method,
    extend_payment_methods,
)
from tatame_devstack.stripe_emulator.previews import preview_invoice
from tatame_devstack.stripe_emulator.refunds import extend_refunds
from tatame_devstack.stripe_emulator.render import (
    Handler,
    dict_handler,
    error_response,
    extend_lists,
    list_newest_first,
)
from tatame_devstack.stripe_emulator.schedules import SubscriptionSchedule, cancel_subscription
from tatame_devstack.stripe_emulator.setup_intents import (
    authenticate_setup_intent,
    confirm_setup_intent,
    extend_setup_intents,
)
from tatame_devstack.stripe_emulator.state import MemoryStore, StateFile
from tatame_devstack.stripe_emulator.subscription_render import extend_subscription_items
from tatame_devstack.stripe_emulator.subscriptions import PriceSubscription
from tatame_devstack.stripe_emulator.tax import TaxCalculation
from tatame_devstack.stripe_emulator.test_clocks import add_routes as add_test_clock_routes
from tatame_devstack.stripe_emulator.testing import add_routes as add_testing_routes
from tatame_devstack.stripe_emulator.testing import rate_limit_middleware
from tatame_devstack.stripe_emulator.webhook_delivery import install as install_webhook_delivery
from tatame_devstack.stripe_emulator.webhook_endpoints import (
    add_routes as add_webhook_endpoint_routes,
)
from tatame_devstack.stripe_emulator.webhook_endpoints import register_stored_endpoints

logger = logging.getLogger(__name__)

Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

LISTENING_MESSAGE = "stripe-emulator listening on {url}"


@web.middleware
async def stripe_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer unknown routes and unexpected failures in Stripe's error shape."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        return error_response(
            404,
            {
                "type": "invalid_request_error",
                "message": f"Unrecognized request URL ({request.method}: {request.path}).",
            },
        )
    except web.HTTPException:
        raise
    except Exception:
        logger.exception("unexpected failure on %s %s", request.method, request.path)
        return error_response(
            500,
            {"type": "api_error", "message": "The Stripe emulator failed; see its log."},
            headers={"Stripe-Should-Retry": "false"},
        )


def _override_middleware(overrides: Mapping[tuple[str, str], Handler]) -> Middleware:
    """Serve some of localstripe's routes (by method and path pattern) with other handlers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if resource is not None:
            handler = overrides.get((request.method, resource.canonical), handler)
        return await handler(request)

    return middleware


def build_app(
    idempotency: IdempotencyLayer, state_file: StateFile | None, *, conformance: bool = False
) -> web.Application:
    """Extend localstripe's (process-wide) application in place and return it; call once.

    With `conformance`, every request and response is checked against stripe-python's types
    (a request Stripe would refuse is refused as Stripe does); what departs is logged and
    listed by `GET /_testing/conformance`.
    """
    store.__class__ = MemoryStore  # the one Store instance that localstripe's modules share
    extend_invoices()
    extend_invoice_statuses()
    for extend in (
        extend_charges,
        extend_customers,
        extend_events,
        extend_intents,
        extend_lists,
        extend_payment_methods,
        extend_refunds,
        extend_setup_intents,
        extend_subscription_items,
    ):
        extend()
    list_newest_first(Event, Invoice, Subscription)
    extend_list_filters()
    app = localstripe_server.app

    prices = "/v1/prices"
    app.router.add_post(prices, localstripe_server.api_create(Price, prices))
    app.router.add_get(prices, localstripe_server.api_list_all(Price, prices))
    price = prices + "/{id}"
    app.router.add_get(price, localstripe_server.api_retrieve(Price, price))
    app.router.add_post(price, localstripe_server.api_update(Price, price))

    async def flush_all(request: web.Request) -> web.StreamResponse:
        response = await localstripe_server.flush_store(request)
        idempotency.clear()
        return response

    for cls, collection in (
        (PromotionCode, "/v1/promotion_codes"),
        (CheckoutSession, "/v1/checkout/sessions"),
        (SubscriptionSchedule, "/v1/subscription_schedules"),
    ):
        one = collection + "/{id}"
        app.router.add_post(collection, localstripe_server.api_create(cls, collection))
        app.router.add_get(collection, localstripe_server.api_list_all(cls, collection))
        app.router.add_get(one, localstripe_server.api_retrieve(cls, one))
        app.router.add_post(one, localstripe_server.api_update(cls, one))
    calculations = "/v1/tax/calculations"  # created and retrieved only, as Stripe's
    app.router.add_post(calculations, localstripe_server.api_create(TaxCalculation, calculations))
    one_calculation = calculations + "/{id}"
    app.router.add_get(
        one_calculation, localstripe_server.api_retrieve(TaxCalculation, one_calculation)
    )
    app.router.add_get("/v1/invoice_payments", list_invoice_payments)
    app.router.add_get("/v1/invoice_payments/{id}", retrieve_invoice_payment)
    portal = "/v1/billing_portal/sessions"
    app.router.add_post(portal, localstripe_server.api_create(BillingPortalSession, portal))
    app.router.add_post("/v1/ephemeral_keys", create_ephemeral_key)
    for method, path, func in (
        ("POST", "/v1/checkout/sessions/{id}/expire", CheckoutSession._api_expire),
        ("POST", "/v1/subscription_schedules/{id}/release", SubscriptionSchedule._api_release),
        ("GET", "/v1/customers/{id}/payment_methods", customer_payment_methods),
        # The card holder's answer to 3-D Secure, `outcome=succeed|fail` (emulator only).
        ("POST", "/_testing/payment_intents/{id}/authenticate", authenticate_payment_intent),
        ("POST", "/_testing/setup_intents/{id}/authenticate", authenticate_setup_intent),
    ):
        app.router.add_route(method, path, localstripe_server.api_extra(func, path))
    violations: list[Violation] | None = [] if conformance else None
    add_testing_routes(app, violations)
    add_webhook_endpoint_routes(app)
    add_dispute_routes(app)
    add_meter_routes(app)
    add_test_clock_routes(app)

    overrides: dict[tuple[str, str], Handler] = {
        ("DELETE", "/_config/data"): flush_all,
        ("POST", "/v1/customers"): localstripe_server.api_create(ClockCustomer, "/v1/customers"),
    }
    replaced: tuple[tuple[type[StripeObject], str], ...] = (
        (CatalogProduct, "/v1/products"),
        (PriceSubscription, "/v1/subscriptions"),
        (PromotionCoupon, "/v1/coupons"),
    )
    for resource, collection in replaced:
        one = collection + "/{id}"
        overrides["POST", collection] = localstripe_server.api_create(resource, collection)
        overrides["POST", one] = localstripe_server.api_update(resource, one)
    for method, path, func in (
        ("DELETE", "/v1/subscriptions/{id}", cancel_subscription),
        ("DELETE", "/v1/customers/{id}", delete_customer),
        ("POST", "/v1/customers/{id}", update_customer),
        ("POST", "/v1/payment_methods/{id}/attach", attach_payment_method),
        ("POST", "/v1/payment_methods/{id}/detach", detach_payment_method),
        ("POST", "/v1/payment_intents/{id}/confirm", confirm_payment_intent),
        ("POST", "/v1/payment_intents/{id}/cancel", cancel_payment_intent),
        ("POST", "/v1/invoices/{id}/pay", pay_invoice),
        ("POST", "/v1/setup_intents/{id}/confirm", confirm_setup_intent),
    ):
        overrides[method, path] = localstripe_server.api_extra(func, path)
    overrides["POST", "/v1/invoices/create_preview"] = dict_handler(preview_invoice)
    # Outermost first; localstripe's own are: errors, auth, its store dump.
    app.middlewares.insert(0, stripe_error_middleware)
    if violations is not None:
        # Inside the error middleware: it sees refusals (UserError) as the Stripe errors sent.
        app.middlewares.insert(1, conformance_middleware(_recorder(violations)))
    install_webhook_delivery(None if violations is None else _delivery_check(violations))
    if state_file is not None:
        app.middlewares.insert(0, state_file.middleware)
    app.middlewares.extend(
        [rate_limit_middleware, idempotency.middleware, _override_middleware(overrides)]
    )
    return app


def _recorder(violations: list[Violation]) -> Callable[[Violation], None]:
    def record(violation: Violation) -> None:
        logger.warning("departs from Stripe's API: %s", violation)
        violations.append(violation)

    return record


def _delivery_check(violations: list[Violation]) -> Callable[[Event], None]:
    """Check every event as it is sent to a webhook endpoint, too (not only when listed)."""
    record = _recorder(violations)

    def check(event: Event) -> None:
        for violation in check_response("POST", "(webhook delivery)", 200, event._export()):
            record(violation)

    return check


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(
    host: str, port: int, state_path: Path | None, *, conformance: bool = False
) -> None:
    """Serve until SIGTERM or SIGINT; with `state_path`, load it first and save it on the way."""
    idempotency = IdempotencyLayer()
    state_file = None if state_path is None else StateFile(state_path, idempotency)
    app = build_app(idempotency, state_file, conformance=conformance)
    if state_file is not None:
        try:
            state_file.load()
        except ValueError as error:
            raise SystemExit(f"stripe-emulator: {error}") from error
        register_stored_endpoints()
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            raise SystemExit(f"stripe-emulator: cannot listen on {host}:{port}: {error}") from error
        bound_port = runner.addresses[0][1]
        print(LISTENING_MESSAGE.format(url=_base_url(host, bound_port)), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        if state_file is not None:
            state_file.save()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tatame_devstack.stripe_emulator",
        description="Local Stripe emulator for development and tests (never production).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8420, help="port, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        help="load the state from this file and save it there (default: memory only)",
    )
    parser.add_argument(
        "--conformance",
        action="store_true",
        help="check every request and response against stripe-python's types; "
        "GET /_testing/conformance lists what departed",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args.host, args.port, args.state_file, conformance=args.conformance))
