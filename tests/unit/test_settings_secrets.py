"""A settings error names the variable and the rule, never a secret's value.

Each case feeds one deployable's settings class a bad secret (or a bad value beside good secrets,
which a model-level rule would echo together) and looks for every secret in the message that a
start-up failure prints.
"""

import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from gateway.settings import GatewaySettings
from services.billing.settings import BillingSettings, CatalogSyncSettings
from services.webhooks.settings import (
    BackstopSettings,
    ReceiverSettings,
    RelaySettings,
    RetentionSettings,
)


def secret(prefix: str = "") -> str:
    """A value that can only appear in a message if the message echoes it (`leak` + random hex)."""
    return prefix + "leak" + secrets.token_hex(20)


def database_url() -> str:
    return f"postgresql://svc:{secret()}@db/tatame"


Case = Callable[[], tuple[type[BaseSettings], dict[str, Any]]]

CASES: dict[str, Case] = {
    "gateway: short service secret": lambda: (
        GatewaySettings,
        {
            "gateway_service_secret": secret()[:20],
            "clerk_issuer": "https://clerk.tatame.example",
            "clerk_jwks_url": "https://clerk.tatame.example/.well-known/jwks.json",
        },
    ),
    "gateway: a bad issuer beside a good secret": lambda: (
        GatewaySettings,
        {
            "gateway_service_secret": secret(),
            "clerk_issuer": "http://clerk.tatame.example",
            "clerk_jwks_url": "https://clerk.tatame.example/.well-known/jwks.json",
        },
    ),
    "billing: a secret=name entry": lambda: (
        BillingSettings,
        {
            "database_url": database_url(),
            "billing_service_secrets": f"{secret()}=gateway",
            "stripe_secret_key": secret("sk_live_"),
        },
    ),
    "billing: an entry without a name": lambda: (
        BillingSettings,
        {
            "database_url": database_url(),
            "billing_service_secrets": secret(),
            "stripe_secret_key": secret("sk_live_"),
        },
    ),
    "billing: a publishable key for the secret key": lambda: (
        BillingSettings,
        {
            "database_url": database_url(),
            "billing_service_secrets": f"gateway={secret()}",
            "stripe_secret_key": secret("pk_live_"),
        },
    ),
    "catalog sync: a publishable key for the secret key": lambda: (
        CatalogSyncSettings,
        {"database_url": database_url(), "stripe_secret_key": secret("pk_live_")},
    ),
    "receiver: a malformed webhook secret": lambda: (
        ReceiverSettings,
        {"database_url": database_url(), "stripe_webhook_secret": secret("whsek_")},
    ),
    "receiver: one malformed entry of two": lambda: (
        ReceiverSettings,
        {
            "database_url": database_url(),
            "stripe_webhook_secret": f"{secret('whsec_')},{secret('wh_')}",
        },
    ),
    "relay: short relay secret": lambda: (
        RelaySettings,
        {
            "database_url": database_url(),
            "webhooks_relay_service_secret": secret()[:20],
            "webhooks_admin_service_secrets": f"ops-cli={secret()}",
        },
    ),
    "relay: a secret=name admin entry": lambda: (
        RelaySettings,
        {
            "database_url": database_url(),
            "webhooks_relay_service_secret": secret(),
            "webhooks_admin_service_secrets": f"{secret()}=ops-cli",
        },
    ),
    "backstop: an emulator base beside good secrets": lambda: (
        BackstopSettings,
        {
            "database_url": database_url(),
            "stripe_secret_key": secret("sk_live_"),
            "stripe_api_base": "http://127.0.0.1:8420",
        },
    ),
    "retention: a bad retention beside the database password": lambda: (
        RetentionSettings,
        {"database_url": database_url(), "webhooks_retention_days": "0"},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_settings_error_never_prints_a_secret_value(case: Case) -> None:
    settings_class, values = case()
    with pytest.raises(ValidationError) as excinfo:
        settings_class(tatame_env="prod", **values)
    message = str(excinfo.value)
    planted = [
        token for value in values.values() for token in re.findall(r"leak([0-9a-f]+)", value)
    ]
    assert planted
    # Any 8 characters of a planted secret count: pydantic shortens long values with an ellipsis.
    shown = [
        token
        for token in planted
        if any(token[i : i + 8] in message for i in range(len(token) - 7))
    ]
    assert not shown, message
