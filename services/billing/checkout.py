"""The web flows: Stripe Checkout (subscription mode) and the Billing Portal.

Redirect URLs must be on an origin of `BILLING_ALLOWED_REDIRECT_ORIGINS`, so Checkout can never
send a customer (and the session id) to a site of someone else's choosing.
"""

from dataclasses import dataclass

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from stripe.params.checkout import SessionCreateParams, SessionCreateParamsSubscriptionData

from services.auth.principal import Principal
from services.billing.currencies import payable_price
from services.billing.customers import customer_for_purchase, require_customer
from services.billing.errors import InvalidArgument, NotFound
from services.billing.idempotency import RequestKey, request_metadata, stripe_options
from services.billing.ownership import owned
from services.billing.settings import BillingRules, url_origin
from services.billing.starts import cancel_unfinished, starting
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscribe import recurring_price
from services.billing.subscriptions import SubscriptionRecord, write_through
from services.billing.tax import checkout_tax_params

MAX_URL_LENGTH = 2048
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"


def checked_redirect(url: str, *, field: str, rules: BillingRules) -> str:
    """`url` when it is an absolute URL on an allowed origin; InvalidArgument otherwise."""
    if not url:
        raise InvalidArgument(f"{field} is required")
    if len(url) > MAX_URL_LENGTH or url_origin(url) not in rules.allowed_redirect_origins:
        raise InvalidArgument(f"{field} must be a URL on an allowed origin")
    return url


def with_session_id(success_url: str) -> str:
    """The success URL with Checkout's `{CHECKOUT_SESSION_ID}` (as `session_id`) if it lacks it."""
    if SESSION_ID_PLACEHOLDER in success_url:
        return success_url
    base, hash_mark, fragment = success_url.partition("#")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}session_id={SESSION_ID_PLACEHOLDER}{hash_mark}{fragment}"


@dataclass(frozen=True, slots=True)
class CheckoutSessionRecord:
    id: str
    url: str


async def create_checkout_session(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    principal: Principal,
    price: str,
    success_url: str,
    cancel_url: str,
    email: str,
    name: str,
    currency: str = "",
    idempotency: RequestKey | None = None,
) -> CheckoutSessionRecord:
    """A subscription-mode Checkout Session for the principal (its first one with the trial),
    in `currency` (see currencies.payable_price), collecting what Stripe Tax needs when it is on
    (services/billing/tax.py)."""
    success_url = with_session_id(checked_redirect(success_url, field="success_url", rules=rules))
    cancel_url = checked_redirect(cancel_url, field="cancel_url", rules=rules)
    price_record = await recurring_price(engine=engine, price=price)
    customer = await customer_for_purchase(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        email=email,
        name=name,
        test_clock_prefix=rules.test_clock_prefix,
    )
    price_record = payable_price(price_record, requested=currency, customer=customer)
    metadata = {"tatame_principal": principal.key}
    subscription_data: SessionCreateParamsSubscriptionData = {"metadata": metadata}
    session_metadata = {**metadata, **request_metadata(idempotency)}
    async with starting(
        engine=engine,
        stripe_client=stripe_client,
        rules=rules,
        principal=principal,
        customer=customer,
        idempotency=idempotency,
    ) as start:
        await cancel_unfinished(
            start, engine=engine, stripe_client=stripe_client, principal=principal
        )
        if start.trial_days is not None:
            subscription_data["trial_period_days"] = start.trial_days
        params: SessionCreateParams = {
            "mode": "subscription",
            "customer": customer.stripe_customer_id,
            "client_reference_id": principal.key,
            "metadata": session_metadata,
            "line_items": [{"price": price_record.id, "quantity": 1}],
            "currency": price_record.currency,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "allow_promotion_codes": True,
            "subscription_data": subscription_data,
            **checkout_tax_params(rules),
        }
        # Dynamic payment methods (the dashboard's), unless the operator narrowed them.
        if rules.payment_method_types:
            params["allowed_payment_method_types"] = list(rules.payment_method_types)
        async with translated_stripe_errors("create the checkout session"):
            session = await stripe_client.v1.checkout.sessions.create_async(
                params=params, options=stripe_options(idempotency, "checkout-session")
            )
    return CheckoutSessionRecord(id=session.id, url=session.url or "")


@dataclass(frozen=True, slots=True)
class ConfirmedCheckout:
    status: str  # Stripe's: open, complete or expired
    subscription: SubscriptionRecord | None
    # Stripe's: paid, no_payment_required, or unpaid (a boleto's voucher waits to be paid:
    # `checkout.session.async_payment_succeeded|failed` say how it ends).
    payment_status: str = ""


async def confirm_checkout_session(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    session_id: str,
) -> ConfirmedCheckout:
    """The principal's Checkout Session and, once complete, its subscription synced from Stripe.

    The sync writes through the mirror's rule, so the webhook that follows finds it applied.
    """
    confirmed = await owned(
        stripe_client.v1.checkout.sessions.retrieve_async,
        session_id,
        engine=engine,
        principal=principal,
        kind="checkout session",
        id_field="session_id",
        expand=["subscription"],
    )
    session, found = confirmed.answer, confirmed.data
    if found.get("client_reference_id") != principal.key:  # the customer's, not the principal's
        raise NotFound(f"no checkout session {session_id!r} for this account")
    subscription = found.get("subscription")
    payment_status = found.get("payment_status") or ""
    if found.get("status") != "complete" or not isinstance(subscription, dict):
        return ConfirmedCheckout(
            status=found.get("status") or "", subscription=None, payment_status=payment_status
        )
    async with engine.begin() as conn:
        record = await write_through(
            conn,
            stripe_client=stripe_client,
            principal=principal,
            answer=session,
            subscription=subscription,
        )
    return ConfirmedCheckout(status="complete", subscription=record, payment_status=payment_status)


async def create_portal_session(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    principal: Principal,
    return_url: str,
    idempotency: RequestKey | None = None,
) -> str:
    """The URL of a Billing Portal session for the principal's customer."""
    return_url = checked_redirect(return_url, field="return_url", rules=rules)
    customer = await require_customer(engine=engine, principal=principal)
    async with translated_stripe_errors("create the billing portal session"):
        session = await stripe_client.v1.billing_portal.sessions.create_async(
            params={"customer": customer.stripe_customer_id, "return_url": return_url},
            options=stripe_options(idempotency, "portal-session"),
        )
    return session.url
