"""Gateway settings, read once from the environment and validated at start."""

import ipaddress
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.rate_limits import REDIS_SCHEMES, parse_limits
from services.auth.org_roles import DEFAULT_MANAGER_ROLES, BillingManagers
from services.auth.service_credentials import check_secret
from services.common.grpc_tls import GrpcTlsSettings
from services.common.metrics import MetricsSettings
from services.common.settings import (
    DEV_ISSUER,
    DEV_KEY_MARKER,
    CommaList,
    HttpServerSettings,
    split_commas,
)


class GatewaySettings(HttpServerSettings, MetricsSettings, GrpcTlsSettings):
    """Environment variables of the gateway (names are the field names, upper case)."""

    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8080, ge=0, le=65535)
    gateway_workers: int = Field(default=1, ge=1, le=64)
    gateway_rpc_timeout_seconds: float = Field(default=5.0, gt=0)
    gateway_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    gateway_plans_cache_seconds: float = Field(default=30.0, ge=0)
    # Each process reuses a principal's customer for this long (0: off). Creation through this
    # process refreshes it at once; changes made elsewhere show within this many seconds.
    gateway_customer_cache_seconds: float = Field(default=5.0, ge=0)
    gateway_shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # GET /v1/billing/stream: open streams allowed per principal and per worker process (past
    # either, 429 / 503), and the seconds between heartbeats (SSE comments) on an idle stream.
    gateway_stream_max_per_principal: int = Field(default=5, ge=1, le=1000)
    gateway_stream_max_per_process: int = Field(default=2_000, ge=1, le=100_000)
    gateway_stream_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    # Origins allowed to call from a browser, comma-separated ("https://app.tatame.example").
    cors_allowed_origins: CommaList = ()
    billing_target: str = "127.0.0.1:50051"
    # The gateway's own credential toward billing (billing knows it as "gateway=<secret>").
    gateway_service_secret: SecretStr
    clerk_issuer: str
    clerk_jwks_url: str | None = None
    clerk_jwt_key: str | None = None
    clerk_authorized_parties: CommaList = ()
    billing_per_organization: bool = False
    # With billing per organization: the members who may change it (subscribe, pay, cards, …),
    # by Clerk role or permission; the other members only read.
    billing_org_manager_roles: CommaList = tuple(DEFAULT_MANAGER_ROLES)
    billing_org_manager_permissions: CommaList = ()

    # Rate limits (gateway/rate_limits.py), in the `limits` string syntax ("30/minute",
    # "5/second;100/minute"): per client IP on every route but the probes; per principal on
    # authenticated routes, WRITE where billing calls Stripe, READ elsewhere.
    rate_limit_enabled: bool = True
    rate_limit_ip: str = "600/minute"
    rate_limit_read: str = "300/minute"
    rate_limit_write: str = "30/minute"
    # redis:// or rediss:// (one budget for every replica); unset: each process's memory (dev).
    rate_limit_storage_url: SecretStr | None = None
    rate_limit_storage_timeout_seconds: float = Field(default=0.25, gt=0, le=5)
    # Peers (IPs or CIDRs: the Ingress controller's pods) whose X-Forwarded-For names the client.
    gateway_trusted_proxies: CommaList = ()

    @field_validator(
        "cors_allowed_origins",
        "clerk_authorized_parties",
        "billing_org_manager_roles",
        "billing_org_manager_permissions",
        "gateway_trusted_proxies",
        mode="before",
    )
    @classmethod
    def _split(cls, value: object) -> object:
        return split_commas(value)

    @field_validator("cors_allowed_origins")
    @classmethod
    def _no_wildcard(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in value:
            raise ValueError("CORS_ALLOWED_ORIGINS takes explicit origins, not '*'")
        return value

    @field_validator("rate_limit_ip", "rate_limit_read", "rate_limit_write")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_limits(value)
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlparse(value.get_secret_value()).scheme not in REDIS_SCHEMES:
            raise ValueError("RATE_LIMIT_STORAGE_URL must be a redis:// or rediss:// URL")
        return value

    @field_validator("gateway_trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as e:
                raise ValueError(
                    "GATEWAY_TRUSTED_PROXIES takes IP addresses and CIDR networks"
                ) from e
        return value

    @model_validator(mode="after")
    def _key_source_and_production_rules(self) -> "GatewaySettings":
        if (self.clerk_jwks_url is None) == (self.clerk_jwt_key is None):
            raise ValueError("set exactly one of CLERK_JWKS_URL and CLERK_JWT_KEY")
        check_secret("GATEWAY_SERVICE_SECRET", self.gateway_service_secret.get_secret_value())
        self.billing_managers()  # refuses an empty or unprefixed role and permission list
        if self.is_production:
            if self.clerk_issuer == DEV_ISSUER:
                raise ValueError("CLERK_ISSUER is the dev token issuer; refused in prod")
            if self.clerk_jwt_key is not None and DEV_KEY_MARKER in self.clerk_jwt_key:
                raise ValueError("CLERK_JWT_KEY is the dev issuer's key; refused in prod")
            if self.rate_limit_enabled and self.rate_limit_storage_url is None:
                raise ValueError(
                    "RATE_LIMIT_STORAGE_URL is required in prod (replicas share one budget)"
                )
            if urlparse(self.clerk_issuer).scheme != "https":
                raise ValueError("CLERK_ISSUER must be an https URL in prod")
            if self.clerk_jwks_url is not None and urlparse(self.clerk_jwks_url).scheme != "https":
                raise ValueError("CLERK_JWKS_URL must be an https URL in prod")
        return self

    def billing_managers(self) -> BillingManagers:
        """BILLING_ORG_MANAGER_ROLES and BILLING_ORG_MANAGER_PERMISSIONS as the rule."""
        return BillingManagers(
            roles=frozenset(self.billing_org_manager_roles),
            permissions=frozenset(self.billing_org_manager_permissions),
        )
