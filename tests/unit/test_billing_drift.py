"""What reconcile counts as drift between Stripe's object and the mirror's row (pure logic; the
integration tests inject drift in a real mirror)."""

from datetime import UTC, datetime, timedelta

from services.billing.resync.reconcile import CHANGED, MISSING, drift_of
from services.billing.resync.sources import SOURCES, Scope
from services.billing.subscriptions import subscription_row
from tests import stripe_objects

SOURCE = {source.name: source for source in SOURCES}
ANSWERED = datetime(2026, 12, 1, 12, tzinfo=UTC)


def stored(obj: dict, *, created: datetime | None) -> dict:
    return {**subscription_row(obj), "source_event_created": created, "refetched": False}


def test_a_row_equal_to_stripes_object_is_no_drift() -> None:
    obj = stripe_objects.subscription()
    row = stored(obj, created=ANSWERED - timedelta(seconds=5))
    assert drift_of(SOURCE["subscriptions"], obj, row, ANSWERED) is None


def test_a_row_that_differs_is_changed_unless_an_event_wrote_it_after_the_answer() -> None:
    obj = stripe_objects.subscription()
    row = {**stored(obj, created=ANSWERED), "status": "past_due"}
    assert drift_of(SOURCE["subscriptions"], obj, row, ANSWERED) == CHANGED
    newer = {**row, "source_event_created": ANSWERED + timedelta(seconds=1)}
    assert drift_of(SOURCE["subscriptions"], obj, newer, ANSWERED) is None


def test_only_customers_billing_made_are_missing() -> None:
    ours = {"id": "cus_1", "object": "customer", "metadata": {"tatame_principal": "user:u1"}}
    other = {"id": "cus_2", "object": "customer", "metadata": {}}
    assert drift_of(SOURCE["customers"], ours, None, ANSWERED) == MISSING
    assert drift_of(SOURCE["customers"], other, None, ANSWERED) is None
    assert drift_of(SOURCE["invoices"], stripe_objects.invoice(), None, ANSWERED) == MISSING


def test_a_runs_cursor_is_named_by_what_it_covers() -> None:
    assert Scope().key == "all"
    since = datetime(2026, 11, 1, tzinfo=UTC).date()
    assert Scope(customer="cus_1", since=since).key == "customer=cus_1;since=2026-11-01"
    assert not Scope(customer="cus_1").covers(SOURCE["prices"])
    assert Scope(customer="cus_1").covers(SOURCE["charges"])
