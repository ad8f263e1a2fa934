"""The one-live-subscription rule and the trial decision, without Stripe or a database."""

import pytest

from services.billing.subscription_rules import (
    awaits_payment_method,
    blocking_subscription,
    continued_trial_days,
    trial_days,
)


@pytest.mark.parametrize("status", ["trialing", "active", "past_due", "unpaid", "paused"])
def test_a_live_subscription_blocks_a_new_start(status: str) -> None:
    assert blocking_subscription({"sub_1": status}, own_id=None) == "sub_1"


@pytest.mark.parametrize("status", ["canceled", "incomplete_expired", "incomplete"])
def test_ended_and_never_paid_subscriptions_do_not_block(status: str) -> None:
    assert blocking_subscription({"sub_1": status}, own_id=None) is None


def test_the_subscription_this_request_made_earlier_does_not_block_its_retry() -> None:
    assert blocking_subscription({"sub_1": "active"}, own_id="sub_1") is None
    assert blocking_subscription({"sub_1": "active", "sub_2": "active"}, own_id="sub_1") == "sub_2"


def test_the_first_blocking_subscription_by_id_is_named() -> None:
    assert blocking_subscription({"sub_b": "active", "sub_a": "past_due"}, own_id=None) == "sub_a"


def test_the_first_subscription_ever_gets_the_configured_trial() -> None:
    assert trial_days(configured_days=30, ever_subscribed=False) == 30


def test_a_principal_who_ever_subscribed_gets_no_trial_even_after_canceling() -> None:
    assert trial_days(configured_days=30, ever_subscribed=True) is None


def test_zero_configured_days_is_no_trial() -> None:
    assert trial_days(configured_days=0, ever_subscribed=False) is None


def test_an_unfinished_trial_does_not_block_a_new_start() -> None:
    statuses = {"sub_1": "trialing", "sub_2": "canceled"}

    assert blocking_subscription(statuses, own_id=None, unfinished={"sub_1"}) is None
    assert blocking_subscription(statuses, own_id=None) == "sub_1"


@pytest.mark.parametrize(
    ("status", "end_behavior", "payment_method", "awaits"),
    [
        ("trialing", "cancel", False, True),
        ("trialing", "pause", False, True),
        ("trialing", "cancel", True, False),
        ("trialing", "create_invoice", False, False),
        ("trialing", None, False, False),
        ("active", "cancel", False, False),
        ("canceled", "cancel", False, False),
    ],
)
def test_a_trial_awaits_a_payment_method_when_it_would_end_unpaid_without_one(
    status: str, end_behavior: str | None, payment_method: bool, awaits: bool
) -> None:
    found = awaits_payment_method(
        status=status, trial_missing_payment_method=end_behavior, payment_method=payment_method
    )

    assert found is awaits


def test_a_replacement_trial_keeps_what_is_left_of_the_one_it_replaces_in_whole_days() -> None:
    now = 1_800_000_000
    day = 86_400

    assert continued_trial_days(now + 30 * day - 3600, now=now) == 30
    assert continued_trial_days(now + 2 * day, now=now) == 2
    assert continued_trial_days(now + 1, now=now) == 1
    assert continued_trial_days(now, now=now) is None
    assert continued_trial_days(now - day, now=now) is None
