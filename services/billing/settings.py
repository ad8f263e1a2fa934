"""Billing service settings, read once from the environment and validated at start."""

from pydantic import Field, SecretStr, field_validator

from services.auth.service_credentials import parse_service_secrets
from services.common.settings import DatabaseSettings, StripeSettings


class CatalogSyncSettings(DatabaseSettings, StripeSettings):
    """`python -m services.billing sync-catalog`: the database and Stripe, nothing else."""


class BillingSettings(CatalogSyncSettings):
    """Environment variables of the billing service (names are the field names, upper case)."""

    billing_grpc_address: str = "127.0.0.1:50051"
    billing_db_pool_size: int = Field(default=10, ge=1, le=100)
    billing_shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # "gateway=<secret>,webhooks-relay=<secret>": who may call billing, with the key each signs with.
    billing_service_secrets: SecretStr

    @field_validator("billing_service_secrets")
    @classmethod
    def _secrets_parse(cls, value: SecretStr) -> SecretStr:
        parse_service_secrets(value.get_secret_value())
        return value

    @property
    def service_secrets(self) -> dict[str, str]:
        return parse_service_secrets(self.billing_service_secrets.get_secret_value())
