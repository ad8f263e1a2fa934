"""Reading Stripe events and objects into mirror rows: pure functions, no I/O."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.billing.catalog import entitlement_keys, price_row, product_row
from services.billing.customers import customer_row
from services.billing.errors import InvalidArgument
from services.billing.events import parse_event
from services.billing.invoices import invoice_row
from services.billing.payment_methods import payment_method_row
from services.billing.subscriptions import schedule_row, subscription_row
from tests import stripe_objects

T0 = stripe_objects.T0
PERIOD_END = T0 + 30 * 86_400


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def event(**fields: Any) -> dict[str, Any]:
    return {
        "id": "evt_1",
        "object": "event",
        "type": "customer.updated",
        "created": T0,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
        **fields,
    }


def parse(payload: dict[str, Any] | bytes, event_id: str = "evt_1", event_type: str = "") -> Any:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_event(event_id=event_id, event_type=event_type or "customer.updated", payload=raw)


def test_an_event_is_read_with_its_created_second_in_utc() -> None:
    parsed = parse(event())
    assert (parsed.id, parsed.type, parsed.created) == ("evt_1", "customer.updated", at(T0))
    assert parsed.object == {"id": "cus_1", "object": "customer"}


@pytest.mark.parametrize(
    ("payload", "event_id"),
    [
        (b"\xff\xfe not utf-8", "evt_1"),
        (b"null", "evt_1"),
        (event(), ""),
        (event(id="evt_2"), "evt_1"),
        (event(type="customer.deleted"), "evt_1"),
        (event(created=True), "evt_1"),
        (event(created=-1), "evt_1"),
        (event(created=10**20), "evt_1"),
        (event(data={"object": "cus_1"}), "evt_1"),
        (event(data=None), "evt_1"),
    ],
    ids=[
        "not JSON",
        "not an object",
        "no event id",
        "other id",
        "other type",
        "boolean created",
        "negative created",
        "created beyond year 9999",
        "object is a string",
        "no data",
    ],
)
def test_an_event_that_is_not_this_event_well_formed_is_invalid(payload, event_id) -> None:
    with pytest.raises(InvalidArgument):
        parse(payload, event_id=event_id)


def test_a_subscription_takes_price_quantity_and_period_from_its_item() -> None:
    row = subscription_row(
        stripe_objects.subscription(
            status="trialing",
            quantity=2,
            period=(T0, PERIOD_END),
            trial_start=T0,
            trial_end=PERIOD_END,
            metadata={"gym": "north"},
        )
    )
    assert row["stripe_customer_id"] == "cus_1"
    assert (row["price_id"], row["quantity"]) == ("price_1", 2)
    assert (row["current_period_start"], row["current_period_end"]) == (at(T0), at(PERIOD_END))
    assert (row["trial_start"], row["trial_end"]) == (at(T0), at(PERIOD_END))
    assert row["canceled_at"] is None
    assert row["metadata"] == {"gym": "north"}


def test_a_subscription_holds_the_change_waiting_for_its_payment_and_its_expiry() -> None:
    waiting = stripe_objects.subscription(quantity=1, period=(T0, PERIOD_END))
    waiting["pending_update"] = {
        "expires_at": T0 + 3600,
        "subscription_items": [
            {**waiting["items"]["data"][0], "price": {"id": "price_pro"}, "quantity": 3}
        ],
    }
    waiting["default_payment_method"] = "pm_1"

    row = subscription_row(waiting)

    assert (row["price_id"], row["quantity"]) == ("price_1", 1)
    assert (row["pending_price_id"], row["pending_quantity"]) == ("price_pro", 3)
    assert row["pending_update_expires_at"] == at(T0 + 3600)
    assert row["default_payment_method"] == "pm_1"
    assert subscription_row(stripe_objects.subscription())["pending_price_id"] is None


def test_a_subscription_of_an_older_api_with_its_period_on_itself_is_malformed() -> None:
    legacy = stripe_objects.subscription()
    [item] = legacy["items"]["data"]
    legacy["current_period_start"] = item.pop("current_period_start")
    legacy["current_period_end"] = item.pop("current_period_end")

    with pytest.raises(KeyError):
        subscription_row(legacy)


def test_an_invoice_names_its_subscription_under_parent() -> None:
    row = invoice_row(
        stripe_objects.invoice(
            subscription="sub_1", hosted_invoice_url="https://invoice.stripe.com/i/x"
        )
    )
    assert row["subscription_id"] == "sub_1"
    assert row["hosted_invoice_url"] == "https://invoice.stripe.com/i/x"
    assert (row["amount_due"], row["amount_remaining"]) == (1900, 1900)


def test_an_invoice_without_parent_bills_no_subscription() -> None:
    assert invoice_row(stripe_objects.invoice())["subscription_id"] is None
    # An older API version's top-level `subscription` is not read.
    legacy = {**stripe_objects.invoice(), "subscription": "sub_2"}
    assert invoice_row(legacy)["subscription_id"] is None


def test_an_invoice_amount_must_be_an_integer_of_minor_units() -> None:
    with pytest.raises(TypeError):
        invoice_row(stripe_objects.invoice(amount_due=19.0))


def test_a_detached_payment_method_has_no_customer() -> None:
    row = payment_method_row({"id": "pm_1", "type": "sepa_debit", "customer": None})
    assert (row["attached"], row["stripe_customer_id"], row["card_last4"]) == (False, None, None)


def test_a_customer_without_email_or_name_keeps_empty_contact_details() -> None:
    row = customer_row({"id": "cus_1", "email": None})
    assert (row["email"], row["name"], row["deleted_at"]) == ("", "", None)
    assert row["default_payment_method"] is None


def test_a_customer_pays_with_its_invoice_default_else_its_default_source() -> None:
    row = customer_row({"id": "cus_1", "invoice_settings": {"default_payment_method": "pm_1"}})
    assert row["default_payment_method"] == "pm_1"
    legacy = customer_row({"id": "cus_1", "invoice_settings": None, "default_source": "card_1"})
    assert legacy["default_payment_method"] == "card_1"


def test_a_price_without_unit_amount_is_free_and_one_time_without_recurring() -> None:
    row = price_row(
        {
            "id": "price_1",
            "product": "prod_1",
            "currency": "usd",
            "unit_amount": None,
            "active": True,
        }
    )
    assert (row["unit_amount"], row["type"], row["interval"]) == (0, "one_time", None)


def schedule(status: str = "active", current: dict[str, int] | None = None) -> dict[str, Any]:
    """A downgrade schedule: Pro until PERIOD_END, then one month of Basic."""
    phase = {"start_date": T0, "end_date": PERIOD_END}
    return stripe_objects.schedule(
        status=status,
        current_phase=phase if current is None else current,
        phases=[
            stripe_objects.schedule_phase(T0, PERIOD_END, ("price_pro", 1)),
            stripe_objects.schedule_phase(
                PERIOD_END, PERIOD_END + 30 * 86_400, (stripe_objects.price("price_basic"), 2)
            ),
        ],
    )


def test_a_schedule_row_holds_what_its_next_phase_changes_and_when() -> None:
    row = schedule_row(schedule())

    assert (row["next_price_id"], row["next_quantity"]) == ("price_basic", 2)
    assert row["next_phase_start"] == at(PERIOD_END)
    assert (row["subscription_id"], row["status"]) == ("sub_1", "active")


def test_a_schedule_in_its_last_phase_has_no_next_change() -> None:
    last = {"start_date": PERIOD_END, "end_date": PERIOD_END + 30 * 86_400}

    row = schedule_row(schedule(current=last))

    assert (row["next_price_id"], row["next_quantity"], row["next_phase_start"]) == (None,) * 3


def test_a_product_names_its_default_price_and_grants_its_metadata_features() -> None:
    product = {
        "id": "prod_1",
        "name": "Pro",
        "active": True,
        "default_price": {"id": "price_1", "object": "price"},
        "metadata": {"features": " video_library,belt_tracking,, video_library"},
    }

    row = product_row(product)

    assert row["default_price_id"] == "price_1"
    assert entitlement_keys(row["metadata"]) == ["video_library", "belt_tracking"]


def test_a_subscription_holds_its_paused_collection_and_none_while_collecting() -> None:
    paused = stripe_objects.subscription(
        pause_collection={"behavior": "void", "resumes_at": T0 + 3600}
    )
    open_ended = stripe_objects.subscription(pause_collection={"behavior": "keep_as_draft"})

    assert (
        subscription_row(paused)["pause_behavior"],
        subscription_row(paused)["pause_resumes_at"],
    ) == (
        "void",
        at(T0 + 3600),
    )
    assert subscription_row(open_ended)["pause_resumes_at"] is None
    collecting = subscription_row(stripe_objects.subscription(pause_collection=None))
    assert (collecting["pause_behavior"], collecting["pause_resumes_at"]) == (None, None)
