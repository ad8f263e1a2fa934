"""The emulator renders objects with exactly the fields of stripe-python's pinned API version."""

import pytest
import stripe
from tatame_devstack.stripe_emulator.render import RenderError, expanded_under, fields, shape


def required_subscription_fields() -> dict[str, object]:
    return {
        name: f"value of {name}"
        for name, optional in fields(stripe.Subscription).items()
        if not optional
    }


def test_a_field_the_pinned_version_dropped_is_refused() -> None:
    with pytest.raises(RenderError, match="no field plan"):
        shape(stripe.Subscription, {**required_subscription_fields(), "plan": {"id": "price_1"}})


def test_a_missing_required_field_is_refused() -> None:
    values = required_subscription_fields()
    del values["billing_mode"]

    with pytest.raises(RenderError, match="needs field billing_mode"):
        shape(stripe.Subscription, values)


def test_optional_fields_not_given_are_null() -> None:
    shaped = shape(stripe.Invoice.StatusTransitions, {"paid_at": 1_700_000_000})

    assert shaped == {
        "finalized_at": None,
        "marked_uncollectible_at": None,
        "paid_at": 1_700_000_000,
        "voided_at": None,
    }


def test_id_and_object_come_first() -> None:
    shaped = shape(stripe.Subscription, required_subscription_fields())

    assert list(shaped)[:2] == ["id", "object"]


def test_an_includable_field_is_sent_only_when_expanded() -> None:
    invoice = {
        **{name: None for name, optional in fields(stripe.Invoice).items() if optional},
        **{
            name: f"value of {name}"
            for name, optional in fields(stripe.Invoice).items()
            if not optional
        },
        "confirmation_secret": {"client_secret": "pi_1_secret_2", "type": "payment_intent"},
    }

    assert "confirmation_secret" not in shape(stripe.Invoice, invoice)
    assert "confirmation_secret" not in shape(stripe.Invoice, invoice, expand=["payments"])
    expanded = shape(stripe.Invoice, invoice, expand=["confirmation_secret"])
    assert expanded["confirmation_secret"] == invoice["confirmation_secret"]


def test_deleted_is_sent_only_by_a_deleted_object() -> None:
    invoice = {name: "v" for name, optional in fields(stripe.Invoice).items() if not optional}

    assert "deleted" not in shape(stripe.Invoice, invoice)
    assert shape(stripe.Invoice, {**invoice, "deleted": True})["deleted"] is True


def test_fields_use_the_wire_name_of_python_keywords() -> None:
    countries = fields(stripe.tax.Registration.CountryOptions)

    assert "in" in countries
    assert "is" in countries
    assert "in_" not in countries


def test_expand_paths_are_passed_on_relative_to_the_field() -> None:
    expand = ["latest_invoice.confirmation_secret", "customer", "latest_invoice"]

    assert expanded_under(expand, "latest_invoice") == ["confirmation_secret"]
    assert expanded_under(["data.confirmation_secret"], "data") == ["confirmation_secret"]
