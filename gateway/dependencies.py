"""FastAPI dependencies, named for what they give."""

from typing import Annotated

from fastapi import Depends, Header, Request

from gateway.billing_client import BillingCalls, BillingClient
from gateway.caches import PlansCache, RenderedCustomers
from gateway.rate_limits import RateLimiter, route_budget
from gateway.validation import PRINTABLE_PATTERN
from services.auth.clerk import Carrier, ClerkVerifier, Session
from services.auth.errors import AuthError, AuthReason
from services.auth.org_roles import BillingManagers
from services.common.errors import ErrorReason
from services.common.http import ApiError
from services.common.idempotency import INVALID_KEY_MESSAGE, valid_idempotency_key

SESSION_COOKIE = "__session"


def bearer_or_cookie(request: Request) -> tuple[str, Carrier]:
    """The Clerk session token and where it was: `Authorization: Bearer …`, else the
    `__session` cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(AuthReason.MALFORMED_TOKEN, "Authorization must be 'Bearer <token>'")
        return token.strip(), "header"
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise AuthError(AuthReason.MISSING_TOKEN, "a session token is required")
    return cookie, "cookie"


async def current_session(request: Request) -> Session:
    """The verified Clerk session of the caller (async: no thread hop per request), once its
    principal's rate limit allows the request (429 `rate_limited` when it does not)."""
    verifier: ClerkVerifier = request.app.state.verifier
    token, carrier = bearer_or_cookie(request)
    session = await verifier.verify(token, carrier=carrier)
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        budget = route_budget(request.method, request.scope["route"].path)
        await limiter.check(budget, session.principal.key)
    return session


async def billing_client(request: Request) -> BillingClient:
    billing: BillingClient = request.app.state.billing
    return billing


CurrentSession = Annotated[Session, Depends(current_session)]
Billing = Annotated[BillingClient, Depends(billing_client)]


async def billing_for_caller(session: CurrentSession, billing: Billing) -> BillingCalls:
    """Billing acting for the verified caller's principal (never an id the client sent)."""
    return billing.acting_for(session.principal)


async def billing_manager_session(request: Request, session: CurrentSession) -> Session:
    """The caller's session, when it may change its principal's billing: 403
    `org_role_required` for an organization member without BILLING_ORG_MANAGER_ROLES (or
    _PERMISSIONS); a user billed as themself always may."""
    managers: BillingManagers = request.app.state.billing_managers
    managers.check(session)
    return session


ManagerSession = Annotated[Session, Depends(billing_manager_session)]


async def billing_for_manager(session: ManagerSession, billing: Billing) -> BillingCalls:
    """Billing acting for the caller's principal, for a route that changes it (every POST, PUT,
    PATCH and DELETE route): subscribe, change, cancel, pay, manage cards, …"""
    return billing.acting_for(session.principal)


async def billing_for_anyone(billing: Billing) -> BillingCalls:
    """Billing acting for nobody: public data only (the plans)."""
    return billing.acting_for(None)


ForCaller = Annotated[BillingCalls, Depends(billing_for_caller)]
ForManager = Annotated[BillingCalls, Depends(billing_for_manager)]
PublicBilling = Annotated[BillingCalls, Depends(billing_for_anyone)]


async def plans_cache(request: Request) -> PlansCache:
    """The cache of `GATEWAY_PLANS_CACHE_SECONDS`."""
    cache: PlansCache = request.app.state.plans_cache
    return cache


async def customer_cache(request: Request) -> RenderedCustomers | None:
    """The cache of `GATEWAY_CUSTOMER_CACHE_SECONDS` (None: off)."""
    cache: RenderedCustomers | None = request.app.state.customer_cache
    return cache


Plans = Annotated[PlansCache, Depends(plans_cache)]
CustomerCache = Annotated[RenderedCustomers | None, Depends(customer_cache)]


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes this request safe to retry: a retry with the same key and the "
            "same body within 24 hours gets the first answer and creates nothing twice. Use a "
            "new key (e.g. a UUID) for each new request; the same key with another body is 409 "
            "`idempotency_key_reused`, and while the first request still runs 409 "
            "`idempotency_request_in_progress`. Keys are per user. 1 to 255 visible ASCII "
            "characters (else 400 `invalid_idempotency_key`).",
        ),
    ] = None,
) -> str | None:
    """The client's `Idempotency-Key`, when it sent one; 400 when it is malformed."""
    if key is not None and not valid_idempotency_key(key):
        raise ApiError(400, ErrorReason.INVALID_IDEMPOTENCY_KEY, INVALID_KEY_MESSAGE)
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]

# The mobile SDK's API version, sent as Stripe sends it (for ephemeral keys).
StripeVersionHeader = Annotated[
    str | None, Header(alias="Stripe-Version", max_length=64, pattern=PRINTABLE_PATTERN)
]
