"""Stripe errors translated once into billing's domain errors."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import stripe

from services.billing.errors import Conflict, StripeRejected, StripeUnavailable
from services.common.errors import ErrorReason
from services.common.stripe_sdk import StripeBackingOff

T = TypeVar("T")

# Stripe's refusal of a second currency for a customer (a 400 with no `code` of its own).
_MIXED_CURRENCIES = "You cannot combine currencies on a single customer."


@asynccontextmanager
async def translated_stripe_errors(action: str) -> AsyncIterator[None]:
    """Turn SDK exceptions raised inside the block into billing's domain errors."""
    try:
        yield
    except StripeBackingOff as e:
        raise StripeUnavailable(
            f"Stripe is rate limiting us ({action}); try again",
            reason=ErrorReason.RATE_LIMITED,
            retry_after=e.retry_after,
        ) from e
    except stripe.RateLimitError as e:  # one object busy (a lock timeout), still after retries
        raise StripeUnavailable(f"Stripe is busy ({action}); try again", retry_after=1) from e
    except (stripe.APIConnectionError, stripe.APIError) as e:
        raise StripeUnavailable(f"Stripe is unavailable ({action}); try again") from e
    except stripe.IdempotencyError as e:
        raise StripeUnavailable(f"a concurrent {action} is in progress; try again") from e
    except (stripe.AuthenticationError, stripe.PermissionError):
        raise  # our key is wrong: an operator's problem, reported as an internal error
    except stripe.StripeError as e:
        if e.code == ErrorReason.CUSTOMER_TAX_LOCATION_INVALID:
            raise Conflict(
                f"Stripe Tax cannot locate the customer ({action}): send the billing address "
                "first (a country; in the US a ZIP code, in Canada a province or postal code)",
                reason=ErrorReason.CUSTOMER_TAX_LOCATION_INVALID,
            ) from e
        if (e.user_message or "").startswith(_MIXED_CURRENCIES):
            raise StripeRejected(
                f"Stripe refused to {action}: {e.user_message}",
                reason=ErrorReason.CUSTOMER_CURRENCY_MISMATCH,
            ) from e
        raise StripeRejected(
            f"Stripe refused to {action}: {e.user_message or 'invalid request'}"
        ) from e


async def retrieve_or_none(
    retrieve: Callable[..., Awaitable[T]], object_id: str, *, action: str, **params: Any
) -> T | None:
    """`retrieve(object_id, params=…)` of a Stripe service; None where Stripe has no such object."""
    async with translated_stripe_errors(action):
        try:
            return await retrieve(object_id, params=params or None)
        except stripe.InvalidRequestError as e:
            if e.http_status != 404:
                raise
            return None
