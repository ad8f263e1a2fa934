"""The entitlement policy: which subscription statuses grant features, and until when."""

from datetime import UTC, datetime, timedelta

import pytest

from services.billing.entitlements import Access, Pause, access

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
GRACE = timedelta(days=7)


def verdict(status: str, **times: datetime | None) -> Access:
    return access(
        status=status,
        now=times.pop("now", None) or NOW,
        cancel_at=times.pop("cancel_at", None),
        past_due_since=times.pop("past_due_since", None),
        current_period_end=times.pop("current_period_end", NOW - timedelta(days=1)),
        grace=GRACE,
        trial_missing_payment_method=None,
        payment_method=False,
    )


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_active_and_trialing_grant_without_an_end(status: str) -> None:
    assert verdict(status) == Access(granted=True)


@pytest.mark.parametrize(
    "status", ["unpaid", "canceled", "incomplete", "incomplete_expired", "paused", "unknown"]
)
def test_other_statuses_grant_nothing(status: str) -> None:
    assert verdict(status) == Access(granted=False)


def test_past_due_grants_for_the_grace_period_from_when_it_became_past_due() -> None:
    since = NOW - timedelta(days=3)

    assert verdict("past_due", past_due_since=since) == Access(True, grace_end=since + GRACE)
    assert verdict("past_due", past_due_since=since, now=since + GRACE) == Access(False)


def test_past_due_of_unknown_start_counts_from_the_period_end() -> None:
    period_end = NOW - timedelta(days=6, hours=23)

    granted = verdict("past_due", current_period_end=period_end)
    ended = verdict("past_due", current_period_end=NOW - timedelta(days=8))

    assert granted == Access(True, grace_end=period_end + GRACE)
    assert ended == Access(False)


def test_past_due_with_no_time_to_count_from_grants_nothing() -> None:
    assert verdict("past_due", current_period_end=None) == Access(False)


def test_a_planned_cancellation_ends_access_even_before_its_event_arrives() -> None:
    ends = NOW + timedelta(days=2)

    assert verdict("active", cancel_at=ends) == Access(True)
    assert verdict("active", cancel_at=ends, now=ends) == Access(False)
    assert verdict("past_due", past_due_since=NOW, cancel_at=ends) == Access(True, grace_end=ends)


def trial(*, end_behavior: str | None, payment_method: bool) -> Access:
    return access(
        status="trialing",
        now=NOW,
        cancel_at=None,
        past_due_since=None,
        current_period_end=NOW + timedelta(days=20),
        grace=GRACE,
        trial_missing_payment_method=end_behavior,
        payment_method=payment_method,
    )


@pytest.mark.parametrize("end_behavior", ["cancel", "pause"])
def test_a_trial_that_ends_unpaid_without_a_card_grants_only_once_one_is_saved(
    end_behavior: str,
) -> None:
    assert trial(end_behavior=end_behavior, payment_method=False) == Access(granted=False)
    assert trial(end_behavior=end_behavior, payment_method=True) == Access(granted=True)


@pytest.mark.parametrize("end_behavior", ["create_invoice", None])
def test_a_trial_that_invoices_at_its_end_grants_without_a_card(end_behavior: str | None) -> None:
    assert trial(end_behavior=end_behavior, payment_method=False) == Access(granted=True)


def paused(behavior: str, *, period_voided: bool = False, **times: datetime | None) -> Access:
    """An active subscription's verdict while its collection is paused with `behavior`."""
    return access(
        status="active",
        now=times.pop("now", None) or NOW,
        cancel_at=None,
        past_due_since=None,
        current_period_end=None,
        grace=GRACE,
        trial_missing_payment_method=None,
        payment_method=True,
        pause=Pause(behavior, **times),
        period_voided=period_voided,
    )


def test_a_void_pause_keeps_the_period_paid_before_it_then_grants_nothing() -> None:
    end = NOW + timedelta(days=10)

    assert paused("void", access_end=end) == Access(True)
    assert paused("void", access_end=end, now=end) == Access(False)
    # The renewal in the pause came (by a test clock, say) and was voided: nothing.
    assert paused("void", access_end=end, period_voided=True) == Access(False)
    assert paused("void") == Access(False)  # no period known to keep


def test_a_void_pause_grants_again_at_its_resume_time_unless_the_period_went_unpaid() -> None:
    ended = NOW - timedelta(days=3)
    assert paused("void", access_end=ended, resumes_at=NOW + timedelta(days=1)) == Access(False)
    # Resumed: access again, unless the period in which it resumed had its invoice voided.
    assert paused("void", access_end=ended, resumes_at=NOW) == Access(True)
    assert paused("void", access_end=ended, resumes_at=NOW, period_voided=True) == Access(False)
    collecting = verdict("active")
    assert collecting == Access(True)


@pytest.mark.parametrize("behavior", ["keep_as_draft", "mark_uncollectible"])
def test_pauses_that_keep_invoices_to_collect_or_write_off_keep_access(behavior: str) -> None:
    assert paused(behavior, access_end=NOW - timedelta(days=40)) == Access(True)
