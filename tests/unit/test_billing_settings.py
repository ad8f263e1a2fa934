"""Billing's subscription settings (redirect origins, trial, grace, entitlement callers) and the
caller policy they shape."""

import secrets
from typing import Any

import pytest
from pydantic import ValidationError
from tatame.billing.v1 import billing_pb2

from services.billing.grpc_policy import (
    ADMIN_SERVICE_NAME,
    GATEWAY,
    OPS_CLI,
    SERVICE_NAME,
    WEBHOOKS_RELAY,
    method_policy,
)
from services.billing.settings import BillingRules, BillingSettings, OpsPageSettings


def settings(**overrides: object) -> BillingSettings:
    values: dict[str, Any] = {
        "tatame_env": "prod",
        "database_url": "postgresql://billing@db/tatame",
        "billing_service_secrets": (
            f"gateway={secrets.token_urlsafe(32)},classes={secrets.token_urlsafe(32)}"
        ),
        "stripe_secret_key": "sk_live_abc",
        "billing_webhooks_service_secret": secrets.token_urlsafe(32),
    }
    values.update(overrides)
    return BillingSettings(**values)


def test_defaults_give_a_30_day_trial_needing_a_card_7_days_of_grace_the_gateway() -> None:
    assert settings().rules == BillingRules(
        allowed_redirect_origins=frozenset(),
        trial_days=30,
        trial_requires_payment_method=True,
        past_due_grace_days=7,
        entitlement_callers=frozenset({"gateway"}),
    )


def test_stripe_tax_is_off_unless_turned_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings().rules.automatic_tax is False
    monkeypatch.setenv("BILLING_AUTOMATIC_TAX", "true")

    assert settings().rules.automatic_tax is True


def test_a_trial_without_a_card_can_be_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_TRIAL_REQUIRES_PAYMENT_METHOD", "false")

    assert settings().rules.trial_requires_payment_method is False


def test_comma_separated_values_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLING_ALLOWED_REDIRECT_ORIGINS", "https://app.example, tatame://app ,")
    monkeypatch.setenv("BILLING_ENTITLEMENT_CALLERS", "gateway,classes")
    monkeypatch.setenv("BILLING_TRIAL_DAYS", "14")

    rules = settings().rules

    assert rules.allowed_redirect_origins == {"https://app.example", "tatame://app"}
    assert rules.entitlement_callers == {"gateway", "classes"}
    assert rules.trial_days == 14


@pytest.mark.parametrize(
    "origins",
    ["*", "https://app.example/billing", "app.example", "https://", "https://a@b.example"],
)
def test_redirect_origins_must_be_explicit_origins(origins: str) -> None:
    with pytest.raises(ValidationError, match="BILLING_ALLOWED_REDIRECT_ORIGINS"):
        settings(billing_allowed_redirect_origins=origins)


def test_payment_methods_are_the_dashboards_unless_narrowed_to_stripe_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings().rules.payment_method_types == ()
    monkeypatch.setenv("BILLING_PAYMENT_METHOD_TYPES", "card, boleto,card,")

    assert settings().rules.payment_method_types == ("card", "boleto")


@pytest.mark.parametrize("types", ["Card", "boleto;pix", "card,pix code"])
def test_payment_methods_must_be_stripe_type_names(types: str) -> None:
    with pytest.raises(ValidationError, match="BILLING_PAYMENT_METHOD_TYPES"):
        settings(billing_payment_method_types=types)


def test_an_entitlement_caller_without_a_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="reporting"):
        settings(billing_entitlement_callers="classes,reporting")


def test_usage_callers_need_a_secret_and_the_sender_reads_its_settings() -> None:
    with pytest.raises(ValidationError, match="BILLING_USAGE_CALLERS names video"):
        settings(billing_usage_callers="classes,video")

    configured = settings(billing_usage_callers="classes", billing_usage_batch_size=50)

    assert configured.rules.usage_callers == {"classes"}
    assert configured.usage_sending is not None
    assert configured.usage_sending.batch_size == 50
    assert settings(billing_usage_sender=False).usage_sending is None


def test_the_app_pauses_with_void_only_unless_the_operator_offers_other_behaviors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings().rules.pause_behaviors == {"void"}
    monkeypatch.setenv("BILLING_PAUSE_BEHAVIORS", "void, keep_as_draft")

    assert settings().rules.pause_behaviors == {"void", "keep_as_draft"}
    assert settings(billing_pause_behaviors="").rules.pause_behaviors == frozenset()
    with pytest.raises(ValidationError, match="BILLING_PAUSE_BEHAVIORS: stop"):
        settings(billing_pause_behaviors="void,stop")


@pytest.mark.parametrize(
    ("name", "value"),
    [("billing_trial_days", -1), ("billing_trial_days", 731), ("billing_past_due_grace_days", 91)],
)
def test_days_out_of_range_are_refused(name: str, value: int) -> None:
    with pytest.raises(ValidationError):
        settings(**{name: value})


def test_every_billing_method_has_callers_and_the_configured_ones_are_used() -> None:
    methods = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].methods
    admin_methods = billing_pb2.DESCRIPTOR.services_by_name["BillingAdminService"].methods
    policy = dict(method_policy(frozenset({"classes"}), frozenset({"video"})))
    admin_policy = {
        f"/{ADMIN_SERVICE_NAME}/{method.name}": policy.pop(f"/{ADMIN_SERVICE_NAME}/{method.name}")
        for method in admin_methods
    }

    assert set(admin_policy.values()) == {frozenset({OPS_CLI})}
    assert set(policy) == {f"/{SERVICE_NAME}/{method.name}" for method in methods}
    assert policy[f"/{SERVICE_NAME}/CheckEntitlement"] == {GATEWAY, "classes"}
    assert policy[f"/{SERVICE_NAME}/ListEntitlements"] == {GATEWAY, "classes"}
    assert policy[f"/{SERVICE_NAME}/RecordUsage"] == {"video"}  # never the gateway
    relay_methods = ("ApplyStripeEvent", "ApplyStripeEvents")
    for method in relay_methods:
        assert policy[f"/{SERVICE_NAME}/{method}"] == {WEBHOOKS_RELAY}
    others = set(policy) - {
        f"/{SERVICE_NAME}/{m}"
        for m in ("CheckEntitlement", "ListEntitlements", "RecordUsage", *relay_methods)
    }
    assert {frozenset(policy[method]) for method in others} == {frozenset({GATEWAY})}


@pytest.mark.parametrize(
    ("environment", "key"),
    [("prod", "sk_test_abc"), ("dev", "sk_live_abc"), ("dev", "rk_live_abc")],
)
def test_test_clocks_are_refused_in_production_and_with_a_live_key(
    environment: str, key: str
) -> None:
    with pytest.raises(ValidationError, match="BILLING_STRIPE_TEST_CLOCKS"):
        settings(tatame_env=environment, stripe_secret_key=key, billing_stripe_test_clocks=True)


def test_test_clocks_in_test_mode_name_each_customers_clock_tatame() -> None:
    dev = settings(
        tatame_env="dev", stripe_secret_key="sk_test_abc", billing_stripe_test_clocks=True
    )
    assert dev.rules.test_clock_prefix == "tatame"
    assert settings().rules.test_clock_prefix is None


def test_production_needs_billings_credential_toward_the_inbox() -> None:
    with pytest.raises(ValidationError, match="BILLING_WEBHOOKS_SERVICE_SECRET is required"):
        settings(billing_webhooks_service_secret=None)
    with pytest.raises(ValidationError, match="BILLING_WEBHOOKS_SERVICE_SECRET must be"):
        settings(billing_webhooks_service_secret="short")
    assert settings(tatame_env="dev", billing_webhooks_service_secret=None)


def test_the_operators_page_needs_a_long_token() -> None:
    with pytest.raises(ValidationError, match="BILLING_OPS_TOKEN must be"):
        OpsPageSettings(database_url="postgresql://billing@db/tatame", billing_ops_token="short")
    page = OpsPageSettings(
        database_url="postgresql://billing@db/tatame", billing_ops_token=secrets.token_urlsafe(32)
    )
    assert (page.billing_ops_host, page.billing_ops_port) == ("127.0.0.1", 8090)
