"""The gateway's app factory: the only public REST surface, translating REST to billing's gRPC."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from granian.utils.proxies import wrap_asgi_with_proxy_headers
from starlette.routing import Route

from gateway.billing_client import BillingClient
from gateway.caches import PlansCache, RenderedCustomers
from gateway.errors import install_error_handlers
from gateway.openapi import truthful_openapi
from gateway.rate_limits import ClientRateLimitMiddleware, RateLimiter
from gateway.routes import (
    billing,
    checkout,
    compat,
    customer,
    entitlements,
    health,
    me,
    notifications,
    pauses,
    payments,
    plans,
    stream,
    subscriptions,
    tax,
    usage,
)
from gateway.schemas import ErrorOut
from gateway.settings import GatewaySettings
from gateway.streams import Streams, close_on_termination
from services.auth.clerk import ClerkVerifier
from services.auth.service_credentials import ServiceCredentials
from services.common.http import RequestContextMiddleware
from services.common.logging import configure_logging
from services.common.telemetry import configure_tracing, instrument_fastapi

SERVICE_NAME = "gateway"
# On shutdown, how long the open billing streams get to end their responses.
_STREAMS_CLOSE_SECONDS = 2.0


def create_app(settings: GatewaySettings) -> FastAPI:
    """A gateway wired from `settings`; its clients open on startup and close on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=5.0) as http:
            app.state.verifier = ClerkVerifier(
                settings.clerk_issuer,
                jwks_url=settings.clerk_jwks_url,
                jwt_key=settings.clerk_jwt_key,
                authorized_parties=frozenset(settings.clerk_authorized_parties),
                per_organization=settings.billing_per_organization,
                http_client=http,
            )
            app.state.billing_managers = settings.billing_managers()
            app.state.billing = BillingClient(
                target=settings.billing_target,
                credentials=ServiceCredentials(
                    SERVICE_NAME,
                    settings.gateway_service_secret.get_secret_value(),
                    audience="billing",
                ),
                timeout=settings.gateway_rpc_timeout_seconds,
                tls=settings,
            )
            app.state.settings = settings
            app.state.streams = Streams(
                max_per_principal=settings.gateway_stream_max_per_principal,
                max_per_process=settings.gateway_stream_max_per_process,
            )
            close_on_termination(app.state.streams)
            app.state.plans_cache = PlansCache(settings.gateway_plans_cache_seconds)
            app.state.customer_cache = (
                RenderedCustomers(settings.gateway_customer_cache_seconds)
                if settings.gateway_customer_cache_seconds > 0
                else None
            )
            # What start-up allocated lives as long as the process: keep it out of the full
            # collections, which scanned it in 57-73 ms pauses every second or two under load
            # (gc.callbacks timing, wrk at 64 connections); none over 2 ms once frozen.
            gc.freeze()
            try:
                yield
            finally:
                # Streams first: each ends its response cleanly (the client reconnects to
                # another replica) while the server drains, then the channel they read closes.
                await app.state.streams.close(within=_STREAMS_CLOSE_SECONDS)
                await app.state.billing.close()

    app = FastAPI(
        title="Tatame Billing",
        version="1.0.0",
        description="Subscriptions and payments for the Tatame apps. Authenticate with a Clerk "
        "session token: `Authorization: Bearer <token>` or the `__session` cookie.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.openapi = lambda: truthful_openapi(app)  # type: ignore[method-assign]
    # Innermost of the middleware: a 429 still gets its request id and CORS headers.
    app.state.rate_limiter = _rate_limiter(settings)
    if app.state.rate_limiter is not None:
        app.add_middleware(ClientRateLimitMiddleware, limiter=app.state.rate_limiter)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_allowed_origins),
        allow_credentials=True,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Last-Event-ID"],
        expose_headers=["X-Request-ID"],
        max_age=600,
    )
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.gateway_max_body_bytes,
        body_timeout_seconds=settings.http_body_read_timeout_seconds,
    )
    if settings.gateway_trusted_proxies:
        # Outermost: the client address is the one these proxies name in X-Forwarded-For
        # (the rightmost address that is not one of them), for every layer below.
        app.add_middleware(
            wrap_asgi_with_proxy_headers, trusted_hosts=list(settings.gateway_trusted_proxies)
        )
    routers = [
        module.router
        for module in (
            health,
            plans,
            customer,
            checkout,
            subscriptions,
            pauses,
            payments,
            entitlements,
            usage,
            billing,
            me,
            notifications,
            stream,
            tax,
            compat,
        )
    ]
    for router in routers:
        # Every route but the probes may be refused 429 by the rate limits (gateway/rate_limits.py).
        limited = router is not health.router and settings.rate_limit_enabled
        app.include_router(router, responses=RATE_LIMITED_RESPONSE if limited else None)
    instrument_fastapi(app)
    # Every route with its full path, for a 405's `Allow` (FastAPI nests included routers).
    app.state.flat_routes = [
        *(route for route in app.router.routes if isinstance(route, Route)),
        *(route for router in routers for route in router.routes if isinstance(route, Route)),
    ]
    return app


RATE_LIMITED_RESPONSE: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorOut,
        "description": "A rate limit is spent (`rate_limited`); retry after `Retry-After` seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}


def _rate_limiter(settings: GatewaySettings) -> RateLimiter | None:
    if not settings.rate_limit_enabled:
        return None
    url = settings.rate_limit_storage_url
    return RateLimiter.from_settings(
        ip=settings.rate_limit_ip,
        read=settings.rate_limit_read,
        write=settings.rate_limit_write,
        storage_url=url.get_secret_value() if url is not None else None,
        storage_timeout=settings.rate_limit_storage_timeout_seconds,
    )


def create_app_from_environment() -> FastAPI:
    """Entry point for the ASGI server: settings from the environment, JSON logs."""
    settings = GatewaySettings()
    configure_logging(service=SERVICE_NAME, level=settings.log_level)
    configure_tracing(SERVICE_NAME)
    logging.getLogger(__name__).info(
        "gateway configured", extra={"fields": {"env": settings.tatame_env}}
    )
    return create_app(settings)
