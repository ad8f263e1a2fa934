"""The one-live-subscription rule and the trial decision, without Stripe or a database."""

import pytest

from services.billing.subscription_rules import blocking_subscription, trial_days


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
