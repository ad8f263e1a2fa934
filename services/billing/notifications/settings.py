"""The notifier's settings (`python -m services.billing notifier`), read once at start.

Each channel is optional: email when NOTIFY_SMTP_HOST is set, push when NOTIFY_EXPO_PUSH is true.
Production refuses the local sinks of `make run`: an SMTP host on loopback, a plain-text SMTP
connection, an Expo URL that is not https."""

import ipaddress
from email.utils import parseaddr
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from services.common.metrics import MetricsSettings
from services.common.settings import DatabaseSettings

SmtpSecurity = Literal["starttls", "tls", "none"]
EXPO_PUSH_URL = "https://exp.host/--/api/v2/push/send"
EXPO_RECEIPTS_URL = "https://exp.host/--/api/v2/push/getReceipts"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NotifierSettings(DatabaseSettings, MetricsSettings):
    """Environment variables of the notifier (names are the field names, upper case)."""

    notify_smtp_host: str | None = None
    notify_smtp_port: int = Field(default=587, ge=1, le=65535)
    # starttls (port 587), tls (implicit TLS, port 465), none (the local sink only).
    notify_smtp_security: SmtpSecurity = "starttls"
    notify_smtp_username: str | None = None
    notify_smtp_password: SecretStr | None = None
    notify_smtp_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    # The From header, e.g. "Tatame <billing@tatame.example>"; its domain names Message-IDs.
    notify_email_from: str = "Tatame <billing@tatame.invalid>"
    notify_expo_push: bool = False
    notify_expo_push_url: str = EXPO_PUSH_URL
    notify_expo_receipts_url: str = EXPO_RECEIPTS_URL
    notify_expo_access_token: SecretStr | None = None
    notify_expo_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    notify_batch_size: int = Field(default=20, ge=1, le=100)
    notify_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # How long a claimed notification is this sender's; a sender that died loses it after this.
    notify_lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    notify_max_attempts: int = Field(default=8, ge=1, le=50)
    notify_backoff_base_seconds: float = Field(default=30.0, ge=0, le=3600)
    notify_backoff_max_seconds: float = Field(default=3600.0, ge=0, le=86400)
    # Expo's receipts are read this long after their tickets (Expo: within 30 minutes).
    notify_receipt_delay_seconds: float = Field(default=900.0, ge=0, le=86400)

    @model_validator(mode="after")
    def _production_refuses_local_sinks(self) -> "NotifierSettings":
        if not self.is_production:
            return self
        if self.notify_smtp_host is not None:
            if _is_loopback(self.notify_smtp_host):
                raise ValueError(
                    "NOTIFY_SMTP_HOST is on loopback (the local sink); refused in prod"
                )
            if self.notify_smtp_security == "none":
                raise ValueError("NOTIFY_SMTP_SECURITY=none sends in clear text; refused in prod")
            if "invalid" in self.message_id_domain.split("."):
                raise ValueError("NOTIFY_EMAIL_FROM must be a real address in prod")
        if self.notify_expo_push:
            for name, url in (
                ("NOTIFY_EXPO_PUSH_URL", self.notify_expo_push_url),
                ("NOTIFY_EXPO_RECEIPTS_URL", self.notify_expo_receipts_url),
            ):
                parts = urlsplit(url)
                if parts.scheme != "https" or _is_loopback(parts.hostname or ""):
                    raise ValueError(f"{name} must be an https URL of a real host in prod")
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> "NotifierSettings":
        # A notification's lease is renewed right before its sends; were they to outlast it,
        # another notifier could take it and send it again.
        if self.notify_lease_seconds <= (
            self.notify_smtp_timeout_seconds + self.notify_expo_timeout_seconds
        ):
            raise ValueError(
                "NOTIFY_LEASE_SECONDS must exceed NOTIFY_SMTP_TIMEOUT_SECONDS + "
                "NOTIFY_EXPO_TIMEOUT_SECONDS (the longest one notification's sends can take)"
            )
        return self

    @model_validator(mode="after")
    def _from_is_an_address(self) -> "NotifierSettings":
        if "@" not in parseaddr(self.notify_email_from)[1]:
            raise ValueError("NOTIFY_EMAIL_FROM must hold an email address")
        return self

    @property
    def message_id_domain(self) -> str:
        return parseaddr(self.notify_email_from)[1].rsplit("@", 1)[1]
