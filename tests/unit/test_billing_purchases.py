"""What a purchase's refunds and disputes make of it, what it grants and for how long, and the
key that makes an operator's refund happen once."""

from datetime import UTC, datetime, timedelta

import pytest

from services.billing.entitlements import Access, purchase_access, purchase_duration
from services.billing.errors import InvalidArgument
from services.billing.purchases import purchase_status
from services.billing.refunds import refund_idempotency_key

PAID = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("refunded", "dispute", "status"),
    [
        (0, None, "succeeded"),
        (1, None, "partially_refunded"),
        (2499, None, "partially_refunded"),
        (2500, None, "refunded"),
        (0, "needs_response", "disputed"),
        (0, "under_review", "disputed"),
        (0, "warning_needs_response", "disputed"),
        (1000, "needs_response", "disputed"),
        (0, "lost", "lost"),
        (0, "won", "succeeded"),
        (0, "warning_closed", "succeeded"),
        (500, "won", "partially_refunded"),
    ],
)
def test_a_purchase_status_says_what_became_of_its_payment(
    refunded: int, dispute: str | None, status: str
) -> None:
    assert purchase_status(amount=2500, amount_refunded=refunded, dispute_status=dispute) == status


@pytest.mark.parametrize("status", ["succeeded", "partially_refunded"])
def test_a_paid_purchase_grants_for_good_without_a_duration(status: str) -> None:
    now = PAID + timedelta(days=3650)

    assert purchase_access(status=status, now=now, paid_at=PAID, duration=None) == Access(True)


@pytest.mark.parametrize("status", ["refunded", "disputed", "lost"])
def test_a_refunded_or_disputed_purchase_grants_nothing(status: str) -> None:
    assert purchase_access(status=status, now=PAID, paid_at=PAID, duration=None) == Access(False)


def test_a_purchase_with_a_duration_grants_until_it_ends() -> None:
    month = timedelta(days=30)

    before = purchase_access(
        status="succeeded", now=PAID + month - timedelta(seconds=1), paid_at=PAID, duration=month
    )
    after = purchase_access(status="succeeded", now=PAID + month, paid_at=PAID, duration=month)

    assert before == Access(True, expires=PAID + month)
    assert after == Access(False)


def test_duration_days_is_a_whole_number_of_days_or_nothing() -> None:
    assert purchase_duration({}) is None
    assert purchase_duration({"duration_days": " "}) is None
    assert purchase_duration({"duration_days": "30"}) == timedelta(days=30)
    for malformed in ("0", "-1", "1.5", "a month"):
        with pytest.raises(ValueError, match="duration_days"):
            purchase_duration({"duration_days": malformed})


def test_a_refund_key_is_derived_from_the_request_unless_given() -> None:
    def key(amount: int | None = None, reason: str | None = None, given: str | None = None):
        return refund_idempotency_key(
            payment_intent_id="pi_1", amount=amount, reason=reason, given=given
        )

    assert key() == key()
    assert len({key(), key(amount=500), key(reason="duplicate"), key(amount=500, given="k")}) == 4
    assert key(given="ticket-42") == "ticket-42"
    with pytest.raises(InvalidArgument):
        key(given="has spaces")
