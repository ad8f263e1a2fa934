"""Billing service settings, read once from the environment and validated at start."""

from pydantic import Field, SecretStr, field_validator, model_validator

from services.auth.service_credentials import parse_service_secrets
from services.common.settings import DatabaseSettings


class BillingSettings(DatabaseSettings):
    """Environment variables of the billing service (names are the field names, upper case)."""

    billing_grpc_address: str = "127.0.0.1:50051"
    billing_db_pool_size: int = Field(default=10, ge=1, le=100)
    billing_shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # "gateway=<secret>,webhooks-relay=<secret>": who may call billing, with the key each signs with.
    billing_service_secrets: SecretStr
    stripe_secret_key: SecretStr
    # Only for the local Stripe emulator; refused in production.
    stripe_api_base: str | None = None
    stripe_max_network_retries: int = Field(default=2, ge=0, le=5)

    @field_validator("billing_service_secrets")
    @classmethod
    def _secrets_parse(cls, value: SecretStr) -> SecretStr:
        parse_service_secrets(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _production_rules(self) -> "BillingSettings":
        if self.is_production:
            if self.stripe_api_base is not None:
                raise ValueError("STRIPE_API_BASE points at a Stripe emulator; refused in prod")
            if not self.stripe_secret_key.get_secret_value().startswith(
                ("sk_live_", "rk_live_", "sk_test_", "rk_test_")
            ):
                raise ValueError("STRIPE_SECRET_KEY is not a Stripe secret or restricted key")
        return self

    @property
    def service_secrets(self) -> dict[str, str]:
        return parse_service_secrets(self.billing_service_secrets.get_secret_value())
