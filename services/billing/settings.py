"""Billing service settings, read once from the environment and validated at start."""

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from services.auth.service_credentials import MIN_SECRET_LENGTH, parse_service_secrets
from services.billing.usage.sender import UsageSending
from services.common.grpc_tls import GrpcTlsSettings
from services.common.metrics import MetricsSettings
from services.common.settings import (
    CommaList,
    DatabaseSettings,
    HttpServerSettings,
    StripeSettings,
    split_commas,
)

# Stripe's behaviors of a paused collection (pause_collection.behavior).
PAUSE_BEHAVIORS = ("void", "keep_as_draft", "mark_uncollectible")

# What a dispute on a subscription's payment does to its access: `keep` it (the dispute is logged
# and counted), or `suspend` it until the dispute is won.
DisputePolicy = Literal["keep", "suspend"]


@dataclass(frozen=True, slots=True)
class BillingRules:
    """The choices of the billing domain that settings make (defaults are the settings')."""

    # Checkout success/cancel and Billing Portal return URLs must be on one of these origins.
    allowed_redirect_origins: frozenset[str] = frozenset()
    # Length of the free trial of a principal's first subscription (0: no trial).
    trial_days: int = 30
    # A trial grants access only once a payment method Stripe would charge at its end is saved;
    # until then it neither grants nor blocks a new start, and Stripe cancels it at its end.
    trial_requires_payment_method: bool = True
    # How long a past_due subscription keeps its entitlements.
    past_due_grace_days: int = 7
    # Services besides the gateway that may ask ListEntitlements and CheckEntitlement.
    entitlement_callers: frozenset[str] = frozenset({"gateway"})
    # Internal services that may report usage (RecordUsage).
    usage_callers: frozenset[str] = frozenset()
    # Stripe test mode only: each new customer gets its own test clock named with this prefix
    # and the principal, so that time can be advanced through its trials and renewals.
    test_clock_prefix: str | None = None
    dispute_policy: DisputePolicy = "keep"
    # Stripe Tax: subscriptions, Checkout and one-time payments taxed by the customer's location
    # (services/billing/tax.py).
    automatic_tax: bool = False
    # Stripe's payment method types the app may offer (`card`, `boleto`, `pix`, …); empty:
    # every method enabled in the Stripe dashboard that fits the payment (dynamic payment
    # methods). Sent as the filter `allowed_payment_method_types` (PaymentIntents, SetupIntents,
    # Checkout) and as a subscription's `payment_settings.payment_method_types`.
    payment_method_types: tuple[str, ...] = ()
    # The pause_collection behaviors the app may ask for (POST /v1/subscriptions/{id}/pause):
    # `void` stops the service; the others keep access while unpaid (an operator's grace).
    pause_behaviors: frozenset[str] = frozenset({"void"})


_DEFAULTS = BillingRules()


def url_origin(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute URL, lower case; None for anything else, including
    URLs with user info (`https://app.example@evil.example`)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class CatalogSyncSettings(DatabaseSettings, StripeSettings):
    """`python -m services.billing sync-catalog`: the database and Stripe, nothing else."""


class BillingSettings(CatalogSyncSettings, MetricsSettings, GrpcTlsSettings):
    """Environment variables of the billing service (names are the field names, upper case)."""

    billing_grpc_address: str = "127.0.0.1:50051"
    billing_db_pool_size: int = Field(default=10, ge=1, le=100)
    billing_shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # "gateway=<secret>,webhooks-relay=<secret>": who may call billing, with the key each signs with.
    billing_service_secrets: SecretStr
    # "https://app.tatame.example,https://admin.tatame.example": where Checkout and the Billing
    # Portal may send the customer back to.
    billing_allowed_redirect_origins: CommaList = ()
    billing_trial_days: int = Field(default=_DEFAULTS.trial_days, ge=0, le=730)
    billing_trial_requires_payment_method: bool = _DEFAULTS.trial_requires_payment_method
    billing_past_due_grace_days: int = Field(default=_DEFAULTS.past_due_grace_days, ge=0, le=90)
    # "reporting,classes": internal services (besides the gateway) that may read entitlements.
    billing_entitlement_callers: CommaList = tuple(_DEFAULTS.entitlement_callers)
    # "classes,video": internal services that may report usage (RecordUsage); none by default.
    billing_usage_callers: CommaList = ()
    # The usage sender (a loop in each billing server): whether it runs, how many records it
    # claims per batch and sends at once, how often it looks when idle, and its retry backoff.
    billing_usage_sender: bool = True
    billing_usage_batch_size: int = Field(default=100, ge=1, le=1000)
    billing_usage_concurrency: int = Field(default=8, ge=1, le=64)
    billing_usage_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    billing_usage_backoff_base_seconds: float = Field(default=2.0, gt=0)
    billing_usage_backoff_max_seconds: float = Field(default=600.0, gt=0)
    # Test mode only (refused in production and with a live key): new customers on test clocks.
    billing_stripe_test_clocks: bool = False
    # keep | suspend: whether a dispute on a subscription's payment suspends its entitlements.
    billing_dispute_policy: DisputePolicy = _DEFAULTS.dispute_policy
    # Stripe Tax on (enable it in the Stripe dashboard first: origin address, registrations).
    billing_automatic_tax: bool = _DEFAULTS.automatic_tax
    # "card,boleto": restrict the payment methods offered; unset: the dashboard's (dynamic).
    billing_payment_method_types: CommaList = _DEFAULTS.payment_method_types
    # "void[,keep_as_draft,mark_uncollectible]": the pause behaviors the app may ask for.
    billing_pause_behaviors: CommaList = tuple(_DEFAULTS.pause_behaviors)
    # The webhooks inbox's privacy API (served by the relay beside its admin API), for erasures
    # and exports, and billing's credential toward it (WEBHOOKS_ADMIN_SERVICE_SECRETS lists it as
    # `billing=<secret>`). Without the secret, erasure and export answer UNAVAILABLE; required in
    # production.
    billing_webhooks_target: str = "127.0.0.1:50052"
    billing_webhooks_service_secret: SecretStr | None = None
    # How often the billing server recomputes the revenue gauges (billing_mrr_minor, …) that it
    # exports on METRICS_PORT; 0 turns them off. One query of the live subscriptions each time.
    billing_revenue_refresh_seconds: float = Field(default=60.0, ge=0, le=3600)

    @field_validator(
        "billing_allowed_redirect_origins",
        "billing_entitlement_callers",
        "billing_payment_method_types",
        "billing_usage_callers",
        "billing_pause_behaviors",
        mode="before",
    )
    @classmethod
    def _split(cls, value: object) -> object:
        return split_commas(value)

    @field_validator("billing_allowed_redirect_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin == "*":
                raise ValueError("BILLING_ALLOWED_REDIRECT_ORIGINS takes explicit origins, not '*'")
            if url_origin(origin) != origin.lower():
                raise ValueError(
                    f"BILLING_ALLOWED_REDIRECT_ORIGINS: {origin!r} is not an origin "
                    "(scheme://host[:port], no path)"
                )
        return value

    @field_validator("billing_payment_method_types")
    @classmethod
    def _payment_method_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for method in value:
            if not method.replace("_", "").isalpha() or method != method.lower():
                raise ValueError(
                    f"BILLING_PAYMENT_METHOD_TYPES: {method!r} is not a Stripe payment method "
                    "type (card, boleto, pix, …)"
                )
        return tuple(dict.fromkeys(value))

    @field_validator("billing_pause_behaviors")
    @classmethod
    def _pause_behaviors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - set(PAUSE_BEHAVIORS)
        if unknown:
            raise ValueError(
                f"BILLING_PAUSE_BEHAVIORS: {', '.join(sorted(unknown))} is not one of "
                f"{', '.join(PAUSE_BEHAVIORS)}"
            )
        return value

    @field_validator("billing_service_secrets")
    @classmethod
    def _secrets_parse(cls, value: SecretStr) -> SecretStr:
        parse_service_secrets(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _entitlement_callers_are_known(self) -> "BillingSettings":
        for name, callers in (
            ("BILLING_ENTITLEMENT_CALLERS", self.billing_entitlement_callers),
            ("BILLING_USAGE_CALLERS", self.billing_usage_callers),
        ):
            unknown = set(callers) - set(self.service_secrets)
            if unknown:
                raise ValueError(
                    f"{name} names {', '.join(sorted(unknown))}, "
                    "which BILLING_SERVICE_SECRETS has no secret for"
                )
        return self

    @model_validator(mode="after")
    def _test_clocks_only_in_test_mode(self) -> "BillingSettings":
        if self.billing_stripe_test_clocks and (
            self.is_production
            or self.stripe_secret_key.get_secret_value().startswith(("sk_live_", "rk_live_"))
        ):
            raise ValueError(
                "BILLING_STRIPE_TEST_CLOCKS is for Stripe test mode: refused in production "
                "and with a live key"
            )
        return self

    @model_validator(mode="after")
    def _inbox_credential_in_production(self) -> "BillingSettings":
        secret = self.billing_webhooks_service_secret
        if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"BILLING_WEBHOOKS_SERVICE_SECRET must be ≥ {MIN_SECRET_LENGTH} characters"
            )
        if self.is_production and secret is None:
            raise ValueError(
                "BILLING_WEBHOOKS_SERVICE_SECRET is required in production: erasures and exports "
                "ask the webhooks inbox"
            )
        return self

    @property
    def service_secrets(self) -> dict[str, str]:
        return parse_service_secrets(self.billing_service_secrets.get_secret_value())

    @property
    def rules(self) -> BillingRules:
        return BillingRules(
            allowed_redirect_origins=frozenset(
                o.lower() for o in self.billing_allowed_redirect_origins
            ),
            trial_days=self.billing_trial_days,
            trial_requires_payment_method=self.billing_trial_requires_payment_method,
            past_due_grace_days=self.billing_past_due_grace_days,
            entitlement_callers=frozenset(self.billing_entitlement_callers),
            usage_callers=frozenset(self.billing_usage_callers),
            test_clock_prefix="tatame" if self.billing_stripe_test_clocks else None,
            dispute_policy=self.billing_dispute_policy,
            automatic_tax=self.billing_automatic_tax,
            payment_method_types=self.billing_payment_method_types,
            pause_behaviors=frozenset(self.billing_pause_behaviors),
        )

    @property
    def usage_sending(self) -> UsageSending | None:
        """The usage sender's settings; None when BILLING_USAGE_SENDER=false."""
        if not self.billing_usage_sender:
            return None
        return UsageSending(
            batch_size=self.billing_usage_batch_size,
            concurrency=self.billing_usage_concurrency,
            poll_seconds=self.billing_usage_poll_seconds,
            backoff_base_seconds=self.billing_usage_backoff_base_seconds,
            backoff_max_seconds=self.billing_usage_backoff_max_seconds,
        )


class AdminClientSettings(GrpcTlsSettings):
    """`python -m services.billing refund …`: the operators' command line over
    BillingAdminService (billing lists the client in BILLING_SERVICE_SECRETS)."""

    billing_target: str = "127.0.0.1:50051"
    billing_admin_client_secret: SecretStr
    billing_admin_client_name: str = "ops-cli"


class OpsPageSettings(DatabaseSettings, HttpServerSettings, MetricsSettings):
    """`python -m services.billing ops-page`: the operators' revenue page (its own Deployment,
    never behind the public ingress), reading billing's own schema."""

    billing_ops_host: str = "127.0.0.1"
    billing_ops_port: int = Field(default=8090, ge=0, le=65535)
    billing_ops_shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # The operators' secret: `Authorization: Bearer <token>`, or a browser's Basic login with
    # the token as its password (any user name).
    billing_ops_token: SecretStr

    @field_validator("billing_ops_token")
    @classmethod
    def _token_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"BILLING_OPS_TOKEN must be ≥ {MIN_SECRET_LENGTH} characters")
        return value
