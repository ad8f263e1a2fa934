"""Stripe errors translated once into billing's domain errors."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe

from services.billing.errors import StripeRejected, StripeUnavailable


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
