"""The email channel: one message per notification over SMTP (aiosmtplib), with a Message-ID
derived from the notification id, so a repeat after a crash is recognisably the same message."""

from email.message import EmailMessage
from email.utils import formataddr, formatdate
from uuid import UUID

import aiosmtplib

from services.billing.notifications.messages import Message
from services.billing.notifications.settings import NotifierSettings


class EmailFailed(Exception):
    """The SMTP server refused the message or could not be reached."""


def message_id(notification_id: UUID, domain: str) -> str:
    """`<notification-id@domain>`: the same for every attempt at one notification."""
    return f"<{notification_id}@{domain}>"


class EmailChannel:
    def __init__(self, settings: NotifierSettings) -> None:
        assert settings.notify_smtp_host is not None
        self._settings = settings
        self._host = settings.notify_smtp_host

    def build(self, *, notification_id: UUID, to: str, name: str, message: Message) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self._settings.notify_email_from
        email["To"] = formataddr((name, to)) if name else to
        email["Subject"] = message.subject
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = message_id(notification_id, self._settings.message_id_domain)
        email["Content-Language"] = message.locale
        email.set_content(message.text)
        email.add_alternative(message.html, subtype="html")
        return email

    async def send(self, email: EmailMessage) -> None:
        """Hand the message to the SMTP server; EmailFailed when it was not accepted."""
        s = self._settings
        password = None if s.notify_smtp_password is None else s.notify_smtp_password
        try:
            await aiosmtplib.send(
                email,
                hostname=self._host,
                port=s.notify_smtp_port,
                username=s.notify_smtp_username,
                password=None if password is None else password.get_secret_value(),
                use_tls=s.notify_smtp_security == "tls",
                start_tls=s.notify_smtp_security == "starttls",
                timeout=s.notify_smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as e:
            raise EmailFailed(f"{type(e).__name__}: {e}") from e
