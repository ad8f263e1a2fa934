"""Settings shared by every deployable: the environment name and the rules that come with it."""

from enum import StrEnum
from typing import Annotated

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class BaseServiceSettings(BaseSettings):
    """Fields every service reads; production is the default so that nothing dev-only is implied."""

    # hide_input_in_errors: a start-up error names the variable and the rule, never the value read
    # (pydantic would echo it, and a model-level rule echoes every variable, secrets included).
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    tatame_env: Environment = Field(default=Environment.PROD)
    log_level: str = Field(default="INFO")

    @property
    def is_production(self) -> bool:
        return self.tatame_env is Environment.PROD


# The issuer of the dev-only token issuer (`make token`). `.invalid` can never be a real host, and
# production settings refuse it, so dev tokens cannot be accepted by a production deployment.
DEV_ISSUER = "https://dev-issuer.tatame.invalid"


class DatabaseSettings(BaseServiceSettings):
    """A service's own database; each service connects as its own role to its own schema."""

    database_url: SecretStr


# The first line of the dev issuer's public key PEM (text before a PEM block is allowed and
# ignored by parsers); production settings refuse a CLERK_JWT_KEY that carries it.
DEV_KEY_MARKER = "tatame dev issuer key: never valid in production"


class StripeSettings(BaseServiceSettings):
    """Access to Stripe with the official SDK."""

    stripe_secret_key: SecretStr
    # Only for the local Stripe emulator; refused in production.
    stripe_api_base: str | None = None
    stripe_max_network_retries: int = Field(default=2, ge=0, le=5)
    # After Stripe's rate limit answers 429, send it nothing for this long (doubling while 429s
    # continue, up to the max); calls meanwhile answer UNAVAILABLE with the time left.
    stripe_rate_limit_backoff_seconds: float = Field(default=1.0, gt=0, le=60)
    stripe_rate_limit_backoff_max_seconds: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _stripe_production_rules(self) -> "StripeSettings":
        if self.is_production:
            if self.stripe_api_base is not None:
                raise ValueError("STRIPE_API_BASE points at a Stripe emulator; refused in prod")
            key = self.stripe_secret_key.get_secret_value()
            if not key.startswith(("sk_live_", "rk_live_", "sk_test_", "rk_test_")):
                raise ValueError("STRIPE_SECRET_KEY is not a Stripe secret or restricted key")
        return self


# A comma-separated environment variable read as a tuple of its non-empty, stripped parts
# (NoDecode: pydantic-settings hands the raw string to `split_commas` instead of parsing JSON).
CommaList = Annotated[tuple[str, ...], NoDecode]


def split_commas(value: object) -> object:
    """`"a, b,,c"` as `("a", "b", "c")`, for a `mode="before"` validator of a CommaList field."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class HttpServerSettings(BaseServiceSettings):
    """Limits of an HTTP deployable's server (the gateway, the webhooks receiver): see README,
    "Limits and timeouts at the HTTP edge"."""

    # A request's line and headers must arrive within this time of the connection opening or of
    # the previous response: slow senders and idle keep-alive connections are disconnected.
    # Keep the ingress controller's upstream-keepalive-timeout below it.
    http_header_read_timeout_seconds: int = Field(default=20, ge=1, le=600)
    # A request's body must arrive within this time of its headers (else 408).
    http_body_read_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    # The request line and headers together (else 431; more than 100 headers is 431 as well).
    http_max_header_bytes: int = Field(default=64 * 1024, ge=8 * 1024, le=1024 * 1024)
