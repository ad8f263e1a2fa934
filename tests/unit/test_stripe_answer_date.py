"""`mirror.answered_at`: when Stripe answered, from the answer's own `Date` header."""

from datetime import UTC, datetime

import pytest
import stripe
from stripe._stripe_response import StripeResponse

from services.billing.mirror import answered_at


def answer(headers: dict[str, str]) -> stripe.Subscription:
    obj = stripe.Subscription.construct_from({"id": "sub_123", "object": "subscription"}, "sk")
    obj._last_response = StripeResponse('{"id": "sub_123"}', 200, headers)
    return obj


def test_an_answer_is_dated_by_its_date_header_in_utc() -> None:
    dated = answer({"Date": "Tue, 01 Dec 2026 12:00:05 GMT"})
    assert answered_at(dated) == datetime(2026, 12, 1, 12, 0, 5, tzinfo=UTC)


def test_an_answer_without_a_date_header_is_a_value_error_naming_the_object() -> None:
    with pytest.raises(ValueError, match="sub_123 carries no Date header"):
        answered_at(answer({}))


def test_an_object_built_without_a_response_is_a_value_error_naming_the_object() -> None:
    built = stripe.Subscription.construct_from({"id": "sub_123", "object": "subscription"}, "sk")
    with pytest.raises(ValueError, match="sub_123 carries no Date header"):
        answered_at(built)
