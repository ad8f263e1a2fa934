"""Settings shared by every deployable: the environment name and the rules that come with it."""

from enum import StrEnum

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class BaseServiceSettings(BaseSettings):
    """Fields every service reads; production is the default so that nothing dev-only is implied."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

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
