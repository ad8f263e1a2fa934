"""Notifications' pure rules: which event is which fact, the user's language, amounts, backoff,
and the production settings that refuse the local sinks."""

from typing import Any

import pytest
from pydantic import ValidationError

from services.billing.mirror import Outcome
from services.billing.notifications.kinds import Kind, fact_of
from services.billing.notifications.messages import format_amount, locale_for, render
from services.billing.notifications.sender import backoff
from services.billing.notifications.settings import NotifierSettings

SUBSCRIPTION = {"id": "sub_1", "customer": "cus_1", "status": "active", "trial_end": None}
INVOICE = {
    "id": "in_1",
    "customer": "cus_1",
    "amount_due": 1990,
    "amount_paid": 1990,
    "currency": "brl",
    "number": "A-1",
    "hosted_invoice_url": "https://invoice.stripe.com/i/1",
}


def fact(event_type: str, obj: dict[str, Any], outcome: Outcome = Outcome.APPLIED, **previous):
    return fact_of(event_type=event_type, obj=obj, previous=previous, outcome=outcome)


def test_a_subscription_starts_when_created_active_or_when_its_first_payment_activates_it() -> None:
    started = fact("customer.subscription.created", SUBSCRIPTION)
    assert started is not None
    assert (started.kind, started.object_id, started.customer) == (
        Kind.SUBSCRIPTION_STARTED,
        "sub_1",
        "cus_1",
    )
    incomplete = {**SUBSCRIPTION, "status": "incomplete"}
    assert fact("customer.subscription.created", incomplete) is None
    activated = fact("customer.subscription.updated", SUBSCRIPTION, status="incomplete")
    assert activated is not None
    assert activated.kind is Kind.SUBSCRIPTION_STARTED
    # Any other update of a live subscription (renewal, plan change) is no welcome.
    assert fact("customer.subscription.updated", SUBSCRIPTION, status="past_due") is None
    assert fact("customer.subscription.updated", SUBSCRIPTION, quantity=2) is None


def test_a_trial_waiting_for_its_card_starts_when_the_card_is_saved() -> None:
    waiting = {
        **SUBSCRIPTION,
        "status": "trialing",
        "trial_settings": {"end_behavior": {"missing_payment_method": "cancel"}},
        "default_payment_method": None,
    }
    assert fact("customer.subscription.created", waiting) is None
    saved = {**waiting, "default_payment_method": "pm_1"}
    started = fact("customer.subscription.updated", saved, default_payment_method=None)
    assert started is not None
    assert started.kind is Kind.SUBSCRIPTION_STARTED
    # A card changed later is no new start; nor is a trial Stripe invoices anyway a wait.
    assert fact("customer.subscription.updated", saved, default_payment_method="pm_0") is None
    invoiced = {
        **waiting,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
    }
    assert fact("customer.subscription.created", invoiced) is not None


def test_receipts_are_for_money_received_and_stale_failures_are_not_told() -> None:
    receipt = fact("invoice.paid", INVOICE)
    assert receipt is not None
    assert receipt.data == {
        "amount": 1990,
        "currency": "brl",
        "number": "A-1",
        "url": "https://invoice.stripe.com/i/1",
    }
    assert fact("invoice.paid", {**INVOICE, "amount_paid": 0}) is None  # a trial's invoice
    failed = fact("invoice.payment_failed", INVOICE, Outcome.STALE)
    assert failed is None  # newer state (paid, say) arrived first
    late_trial_notice = fact("customer.subscription.trial_will_end", SUBSCRIPTION, Outcome.STALE)
    assert late_trial_notice is not None  # the fact still happened
    assert fact("invoice.paid", INVOICE, Outcome.DUPLICATE) is None
    assert fact("invoice.paid", INVOICE, Outcome.IGNORED) is None


def test_a_refund_is_told_once_it_succeeded_and_names_its_charge() -> None:
    refund = {"id": "re_1", "amount": 500, "currency": "usd", "charge": "ch_1"}
    assert fact("refund.created", {**refund, "status": "pending"}) is None
    told = fact("refund.updated", {**refund, "status": "succeeded"})
    assert told is not None
    assert (told.kind, told.customer, told.charge_id) == (Kind.REFUND_ISSUED, None, "ch_1")


def test_a_malformed_object_tells_nothing() -> None:
    assert fact("invoice.paid", {"id": "in_1"}) is None


def test_the_language_is_the_first_preferred_locale_there_are_templates_for() -> None:
    assert locale_for([]) == "en"
    assert locale_for(["de", "pt"]) == "pt-BR"
    assert locale_for(["PT-br"]) == "pt-BR"
    assert locale_for(["fr-FR"]) == "en"


def test_amounts_are_minor_units_written_for_the_locale() -> None:
    assert format_amount(123456, "usd", "en") == "1,234.56 USD"
    assert format_amount(123456, "brl", "pt-BR") == "1.234,56 BRL"
    assert format_amount(500, "jpy", "en") == "500 JPY"


def test_html_is_autoescaped_and_every_kind_renders_in_every_locale() -> None:
    for locale in (["en"], ["pt-BR"]):
        for kind in Kind:
            message = render(
                kind=kind.value,
                data={"amount": 1, "currency": "usd", "url": None, "trial_end": 1_800_000_000},
                name="<b>Ana</b>",
                preferred=locale,
            )
            assert message.subject
            assert "&lt;b&gt;Ana&lt;/b&gt;" in message.html
            assert "<b>Ana</b>" in message.text
            assert message.push_body


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, base=30, cap=100) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]


def notifier(**values: object) -> NotifierSettings:
    return NotifierSettings.model_validate(
        {"tatame_env": "prod", "database_url": "postgresql://billing@db/tatame"} | values
    )


@pytest.mark.parametrize(
    "values",
    [
        {"notify_smtp_host": "127.0.0.1", "notify_email_from": "Tatame <b@tatame.example>"},
        {"notify_smtp_host": "localhost", "notify_email_from": "Tatame <b@tatame.example>"},
        {
            "notify_smtp_host": "smtp.resend.com",
            "notify_smtp_security": "none",
            "notify_email_from": "Tatame <b@tatame.example>",
        },
        {"notify_smtp_host": "smtp.resend.com"},  # the placeholder sender (.invalid)
        {"notify_expo_push": True, "notify_expo_push_url": "http://127.0.0.1:9/send"},
        {"notify_expo_push": True, "notify_expo_receipts_url": "http://exp.host/receipts"},
    ],
)
def test_production_refuses_the_local_sinks(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        notifier(**values)


def test_production_takes_a_real_relay_and_expo() -> None:
    settings = notifier(
        notify_smtp_host="smtp.resend.com",
        notify_email_from="Tatame <billing@tatame.example>",
        notify_expo_push=True,
    )
    assert settings.message_id_domain == "tatame.example"


def test_a_lease_that_one_notifications_sends_could_outlast_is_refused() -> None:
    with pytest.raises(ValidationError, match="NOTIFY_LEASE_SECONDS"):
        notifier(
            notify_lease_seconds=20,
            notify_smtp_timeout_seconds=15,
            notify_expo_timeout_seconds=15,
        )
