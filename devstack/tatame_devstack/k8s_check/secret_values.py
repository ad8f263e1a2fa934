"""Test values for the Secrets the manifests reference (no secret value is ever in the repository)."""

from collections.abc import Mapping
from dataclasses import dataclass

from tatame_devstack.k8s_check.rendering import Rendered, Report

TEST_STRIPE_KEY = "sk_test_tatame_k8s_check"


@dataclass(frozen=True)
class SecretTestValues:
    """Values for the Secret keys the manifests reference: checks and the smoke test use these.

    DATABASE_URL comes from `database_urls`, by Secret name (`billing-secrets` -> role `billing`).
    """

    database_urls: Mapping[str, str]
    gateway_secret: str = "k8s-check-gateway-" + "g" * 32
    relay_secret: str = "k8s-check-relay-" + "r" * 32
    ops_secret: str = "k8s-check-ops-" + "o" * 32
    billing_secret: str = "k8s-check-billing-" + "b" * 32

    def value(self, secret: str, key: str) -> str | None:
        if key == "DATABASE_URL":
            return self.database_urls.get(secret)
        return {
            ("gateway-secrets", "GATEWAY_SERVICE_SECRET"): self.gateway_secret,
            # The smoke run's gateway uses the machine's Redis when one listens there, and
            # fails open to its own memory when none does (gateway/rate_limits.py).
            ("gateway-secrets", "RATE_LIMIT_STORAGE_URL"): "redis://127.0.0.1:6379/0",
            ("billing-secrets", "BILLING_SERVICE_SECRETS"): (
                f"gateway={self.gateway_secret},webhooks-relay={self.relay_secret}"
            ),
            ("billing-secrets", "STRIPE_SECRET_KEY"): TEST_STRIPE_KEY,
            ("webhooks-secrets", "STRIPE_SECRET_KEY"): TEST_STRIPE_KEY,
            ("webhooks-secrets", "STRIPE_WEBHOOK_SECRET"): "whsec_k8s_check_" + "w" * 24,
            ("webhooks-secrets", "WEBHOOKS_RELAY_SERVICE_SECRET"): self.relay_secret,
            ("billing-secrets", "BILLING_WEBHOOKS_SERVICE_SECRET"): self.billing_secret,
            ("webhooks-secrets", "WEBHOOKS_ADMIN_SERVICE_SECRETS"): (
                f"ops-cli={self.ops_secret},billing={self.billing_secret}"
            ),
            ("webhooks-secrets", "CLERK_WEBHOOK_SECRETS"): "whsec_" + "Y2xlcmstazhzLWNoZWNr" * 2,
            ("billing-ops-secrets", "BILLING_OPS_TOKEN"): "k8s-check-ops-page-" + "p" * 32,
            ("billing-notifier-secrets", "NOTIFY_SMTP_PASSWORD"): "k8s-check-smtp-" + "s" * 16,
            ("billing-notifier-secrets", "NOTIFY_EXPO_ACCESS_TOKEN"): "k8s-check-expo-" + "e" * 16,
        }.get((secret, key))


def database_role(secret: str) -> str:
    """The Postgres role (and schema) behind a Secret's DATABASE_URL: `billing-secrets` -> billing."""
    return secret.removesuffix("-secrets")


def placeholder_secrets(rendered: "Rendered") -> SecretTestValues:
    urls = {
        secret: f"postgresql://{database_role(secret)}@127.0.0.1:5432/tatame"
        for secret, key in rendered.secret_refs()
        if key == "DATABASE_URL"
    }
    return SecretTestValues(database_urls=urls)


# --- Rendering ----------------------------------------------------------------------------------


def check_no_secret_objects(rendered: Rendered, report: Report) -> None:
    """Secrets are created by operators (README), never rendered from the repository."""
    for obj in rendered.of_kind("Secret"):
        report.errors.append(
            f"Secret/{obj['metadata']['name']}: secret values must not be in the repository"
        )
