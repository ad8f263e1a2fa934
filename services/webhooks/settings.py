"""Settings of the webhooks processes: receiver, relay (with the admin API), backstop, retention."""

from pydantic import Field, SecretStr, field_validator

from services.auth.service_credentials import MIN_SECRET_LENGTH, parse_service_secrets
from services.common.grpc_tls import GrpcTlsSettings
from services.common.metrics import MetricsSettings
from services.common.settings import (
    DatabaseSettings,
    HttpServerSettings,
    StripeSettings,
)
from services.webhooks.clerk_events import clerk_webhooks


def webhook_secrets(value: str) -> tuple[str, ...]:
    """`whsec_a,whsec_b`: every secret accepted during a rotation."""
    secrets = tuple(part.strip() for part in value.split(",") if part.strip())
    if not secrets:
        raise ValueError("STRIPE_WEBHOOK_SECRET is required: signatures are never skipped")
    for secret in secrets:
        if not secret.startswith("whsec_") or len(secret) < 16:
            raise ValueError("each STRIPE_WEBHOOK_SECRET entry must be a whsec_… signing secret")
    return secrets


def _commas(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


class ReceiverSettings(DatabaseSettings, HttpServerSettings, MetricsSettings):
    """`python -m services.webhooks receiver`: Stripe's door."""

    # One or more signing secrets, comma-separated, all accepted (rotation).
    stripe_webhook_secret: SecretStr
    # Events whose livemode differs are refused.
    stripe_livemode: bool = False
    webhooks_receiver_host: str = "127.0.0.1"
    webhooks_receiver_port: int = Field(default=8081, ge=0, le=65535)
    webhooks_receiver_workers: int = Field(default=1, ge=1, le=64)
    webhooks_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    webhooks_signature_tolerance_seconds: int = Field(default=300, ge=1)
    webhooks_batch_max_events: int = Field(default=256, ge=1, le=5000)
    webhooks_db_pool_size: int = Field(default=4, ge=1, le=50)
    # While the inbox database is down, how long an event waits for a connection before its
    # request is answered 503 (Stripe then retries on its own schedule), and how long opening a
    # connection may take.
    webhooks_db_wait_seconds: float = Field(default=2.0, gt=0, le=30)
    webhooks_db_connect_timeout_seconds: int = Field(default=2, ge=1, le=30)
    webhooks_shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # Clerk's Svix signing secrets, comma-separated (whsec_…, all accepted: rotation). Unset: no
    # Clerk endpoint; never an endpoint that skips the check.
    clerk_webhook_secrets: SecretStr | None = None

    @field_validator("stripe_webhook_secret")
    @classmethod
    def _secrets_parse(cls, value: SecretStr) -> SecretStr:
        webhook_secrets(value.get_secret_value())
        return value

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        return webhook_secrets(self.stripe_webhook_secret.get_secret_value())

    @field_validator("clerk_webhook_secrets")
    @classmethod
    def _clerk_secrets_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            clerk_webhooks(_commas(value.get_secret_value()))
        return value

    @property
    def clerk_signing_secrets(self) -> tuple[str, ...]:
        """Empty: no Clerk endpoint (POST /webhooks/clerk answers 404)."""
        if self.clerk_webhook_secrets is None:
            return ()
        return _commas(self.clerk_webhook_secrets.get_secret_value())


class RelaySettings(DatabaseSettings, MetricsSettings, GrpcTlsSettings):
    """`python -m services.webhooks relay`: delivers stored events to billing; serves the admin API."""

    billing_target: str = "127.0.0.1:50051"
    # The relay's credential toward billing (billing lists it as `webhooks-relay=…`).
    webhooks_relay_service_secret: SecretStr
    # Batches in flight per relay process, and events per batch (at most one per Stripe customer,
    # applied by one ApplyStripeEvents call): at most batches * batch size events in flight.
    # Measured (2026-12-01, an instant billing stand-in, medians of 3 drains of 3,000 events on a
    # loaded 2-core machine): the relay's CPU per event falls from ~1,000 us at 4x8 to ~140 us at
    # 4x64 (per-batch round trips dominate), and 4x64 drained ~10x faster than 4x8; 8x32 was
    # slower than 4x64. With today's billing (the devstack, customer.updated, load ~9) billing is
    # the bound: 76 / 83 / 115 ev/s at 4x8 / 4x64 / 2x64, relay CPU ~820 / ~370 / ~290 us per
    # event. A faster billing (one transaction per batch) favours larger batches more; keep 4
    # batches so that claims and records overlap billing's work.
    relay_batches: int = Field(default=4, ge=1, le=64)
    relay_batch_size: int = Field(default=64, ge=1, le=256)
    relay_max_attempts: int = Field(default=12, ge=1)
    relay_backoff_base_seconds: float = Field(default=1.0, gt=0)
    relay_backoff_max_seconds: float = Field(default=600.0, gt=0)
    relay_poll_interval_seconds: float = Field(default=5.0, gt=0)
    relay_delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    # gRPC: tatame.webhooks.v1.WebhooksAdminService plus the health service (probes).
    webhooks_admin_grpc_address: str = "127.0.0.1:50052"
    # Who may use the admin API: `ops-cli=<secret>`.
    webhooks_admin_service_secrets: SecretStr
    relay_shutdown_grace_seconds: float = Field(default=15.0, ge=0)

    @field_validator("webhooks_relay_service_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"WEBHOOKS_RELAY_SERVICE_SECRET must be ≥ {MIN_SECRET_LENGTH} characters"
            )
        return value

    @field_validator("webhooks_admin_service_secrets")
    @classmethod
    def _admin_secrets_parse(cls, value: SecretStr) -> SecretStr:
        parse_service_secrets(value.get_secret_value())
        return value


class BackstopSettings(DatabaseSettings, StripeSettings):
    """`python -m services.webhooks backstop`: copies events Stripe has but the inbox lacks."""

    stripe_livemode: bool = False
    # How far back a first run (no cursor yet) looks; Stripe keeps events for 30 days.
    backstop_initial_lookback_seconds: int = Field(default=3 * 24 * 3600, ge=60)
    # Re-read this much before the cursor, for events Stripe lists late.
    backstop_overlap_seconds: int = Field(default=600, ge=0)


class RetentionSettings(DatabaseSettings):
    """`python -m services.webhooks retention`: drops payloads of old delivered events."""

    webhooks_retention_days: int = Field(default=30, ge=1)


class AdminClientSettings(GrpcTlsSettings):
    """`python -m services.webhooks events …`: the operators' command line."""

    webhooks_admin_target: str = "127.0.0.1:50052"
    webhooks_admin_client_secret: SecretStr
    webhooks_admin_client_name: str = "ops-cli"
