"""The Stripe adapter: the official SDK pinned to one API version, errors translated once."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe

from services.billing.errors import StripeRejected, StripeUnavailable

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


@asynccontextmanager
async def translated_stripe_errors(action: str) -> AsyncIterator[None]:
    """Turn SDK exceptions raised inside the block into billing's domain errors."""
    try:
        yield
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as e:
        raise StripeUnavailable(f"Stripe is unavailable ({action}); try again") from e
    except stripe.IdempotencyError as e:
        raise StripeUnavailable(f"a concurrent {action} is in progress; try again") from e
    except (stripe.AuthenticationError, stripe.PermissionError):
        raise  # our key is wrong: an operator's problem, reported as an internal error
    except stripe.StripeError as e:
        raise StripeRejected(
            f"Stripe refused to {action}: {e.user_message or 'invalid request'}"
        ) from e
