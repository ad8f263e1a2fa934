"""The official Stripe SDK, configured one way for every service: one pinned API version."""

import stripe

from services.common.settings import StripeSettings

# Every request names this version, so Stripe's answers keep one shape whatever the account default.
STRIPE_API_VERSION = "2026-10-28.endive"


def create_stripe_client(
    *, secret_key: str, api_base: str | None, max_network_retries: int
) -> stripe.StripeClient:
    """A client for async calls; `api_base` redirects it to the local emulator in dev and tests."""
    return stripe.StripeClient(
        secret_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=max_network_retries,
        http_client=stripe.HTTPXClient(timeout=20),
    )


def stripe_client_from(settings: StripeSettings) -> stripe.StripeClient:
    """The client `settings` describe."""
    return create_stripe_client(
        secret_key=settings.stripe_secret_key.get_secret_value(),
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
    )
