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
        "rate_limit_storage_url": "redis://redis:6379/0",
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
        "rate_limit_storage_url": "redis://redis:6379/0",
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


def test_production_refuses_rate_limits_in_process_memory() -> None:
    with pytest.raises(ValidationError, match="RATE_LIMIT_STORAGE_URL is required"):
        gateway(rate_limit_storage_url=None)
    assert gateway(rate_limit_storage_url=None, rate_limit_enabled=False).is_production
    assert gateway(tatame_env="dev", rate_limit_storage_url=None).rate_limit_enabled


@pytest.mark.parametrize("field", ["rate_limit_ip", "rate_limit_read", "rate_limit_write"])
@pytest.mark.parametrize("value", ["", "lots", "10 per fortnight", "-1/minute"])
def test_rate_limits_must_be_in_the_limits_syntax(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match="rate limit such as"):
        gateway(**{field: value})


def test_rate_limits_take_several_windows() -> None:
    assert gateway(rate_limit_write="5/second;100/minute").rate_limit_write == "5/second;100/minute"


@pytest.mark.parametrize("url", ["memory://", "http://redis:6379", "redis-sentinel://r:26379"])
def test_rate_limit_storage_is_redis(url: str) -> None:
    with pytest.raises(ValidationError, match=r"redis:// or rediss://"):
        gateway(rate_limit_storage_url=url)


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = gateway(gateway_trusted_proxies="10.0.0.0/8, 192.0.2.7, fd00::/8")
    assert settings.gateway_trusted_proxies == ("10.0.0.0/8", "192.0.2.7", "fd00::/8")
    for refused in ("*", "ingress-nginx", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match="IP addresses and CIDR networks"):
            gateway(gateway_trusted_proxies=refused)
