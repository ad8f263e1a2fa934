"""Settings refuse what must never reach production."""

import secrets
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from services.billing.settings import BillingSettings
from services.common.settings import DEV_ISSUER, DEV_KEY_MARKER

PEM = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"


def gateway(**overrides: object) -> GatewaySettings:
    values: dict[str, Any] = {
        "tatame_env": "prod",
        "gateway_service_secret": secrets.token_urlsafe(32),
        "clerk_issuer": "https://clerk.tatame.example",
        "clerk_jwks_url": "https://clerk.tatame.example/.well-known/jwks.json",
    }
    values.update(overrides)
    return GatewaySettings(**values)


def billing(**overrides: object) -> BillingSettings:
    values: dict[str, Any] = {
        "tatame_env": "prod",
        "database_url": "postgresql://billing@db/tatame",
        "billing_service_secrets": f"gateway={secrets.token_urlsafe(32)}",
        "stripe_secret_key": "sk_live_abc",
        "billing_webhooks_service_secret": secrets.token_urlsafe(32),
    }
    values.update(overrides)
    return BillingSettings(**values)


def test_production_is_the_default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TATAME_ENV", raising=False)
    values: dict[str, Any] = {
        "gateway_service_secret": "s" * 32,
        "clerk_issuer": "https://c.example",
        "clerk_jwt_key": PEM,
    }
    assert GatewaySettings(**values).is_production


def test_gateway_accepts_a_real_clerk_configuration() -> None:
    assert gateway().clerk_issuer == "https://clerk.tatame.example"


def test_production_refuses_the_dev_issuer() -> None:
    with pytest.raises(ValidationError, match="dev token issuer"):
        gateway(clerk_issuer=DEV_ISSUER, clerk_jwks_url=None, clerk_jwt_key=PEM)


def test_production_refuses_the_dev_key() -> None:
    with pytest.raises(ValidationError, match="dev issuer's key"):
        gateway(clerk_jwks_url=None, clerk_jwt_key=f"{DEV_KEY_MARKER}\n{PEM}")


def test_dev_accepts_the_dev_issuer_and_key() -> None:
    settings = gateway(
        tatame_env="dev",
        clerk_issuer=DEV_ISSUER,
        clerk_jwks_url=None,
        clerk_jwt_key=f"{DEV_KEY_MARKER}\n{PEM}",
    )
    assert not settings.is_production


def test_an_issuer_is_required() -> None:
    with pytest.raises(ValidationError, match="clerk_issuer"):
        GatewaySettings(gateway_service_secret="s" * 32, clerk_jwt_key=PEM)


def test_production_refuses_a_plain_http_issuer() -> None:
    with pytest.raises(ValidationError, match="https"):
        gateway(clerk_issuer="http://clerk.tatame.example")


def test_exactly_one_key_source() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        gateway(clerk_jwt_key=PEM)
    with pytest.raises(ValidationError, match="exactly one"):
        gateway(clerk_jwks_url=None)


def test_short_service_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        gateway(gateway_service_secret="short")


def test_wildcard_cors_is_refused_and_lists_are_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    assert gateway().cors_allowed_origins == ("https://a.example", "https://b.example")
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "*")
    with pytest.raises(ValidationError, match="explicit origins"):
        gateway()


def test_billing_refuses_the_stripe_emulator_in_production() -> None:
    with pytest.raises(ValidationError, match="emulator"):
        billing(stripe_api_base="http://127.0.0.1:8420")
    assert billing(tatame_env="dev", stripe_api_base="http://127.0.0.1:8420").stripe_api_base


def test_billing_refuses_a_key_that_is_not_a_stripe_secret_key() -> None:
    with pytest.raises(ValidationError, match="not a Stripe secret"):
        billing(stripe_secret_key="pk_live_publishable")


def test_billing_refuses_malformed_service_secrets() -> None:
    with pytest.raises(ValidationError):
        billing(billing_service_secrets="gateway")
