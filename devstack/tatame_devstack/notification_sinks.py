"""Dev and test only: where the notifier's email and pushes go on loopback.

- An SMTP sink (aiosmtpd) that keeps every message it accepted, in memory and, given a folder,
  in a Maildir there (one file per message: `ls`, or any mail reader).
- A stand-in for Expo's push API (`/--/api/v2/push/send`, `/--/api/v2/push/getReceipts`): it
  records every push, answers one ticket per message, and answers `DeviceNotRegistered` for the
  tokens marked so (`unregistered` at once, in the ticket; `unregistered_later` in the receipt).
- `GET /mail` and `GET /pushes` on the same HTTP port: what was received, as JSON.

Tests use `stall(...)` to hold the SMTP conversation at a point (before the message is handed
over, or after it was stored and before the reply) so that a sender can be killed there.

`python -m tatame_devstack.notification_sinks [--maildir DIR]` runs both on free ports and prints
`notification-sinks smtp 127.0.0.1:<port> http http://127.0.0.1:<port>`.
"""

import argparse
import asyncio
import contextlib
import email
import email.policy
import mailbox
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

PUSH_PATH = "/--/api/v2/push/send"
RECEIPTS_PATH = "/--/api/v2/push/getReceipts"
Stall = Literal["before_data", "after_store"]


@dataclass
class Mail:
    message_id: str
    to: list[str]
    subject: str
    raw: bytes

    def part(self, content_type: str) -> str:
        message = email.message_from_bytes(self.raw, policy=email.policy.default)
        body = message.get_body(preferencelist=(content_type.split("/")[1],))
        return "" if body is None else str(body.get_content())


@dataclass
class Sinks:
    """What the sinks received, and the behaviour tests ask of them."""

    maildir: Path | None = None
    mail: list[Mail] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    unregistered: set[str] = field(default_factory=set)
    unregistered_later: set[str] = field(default_factory=set)
    tickets: dict[str, str] = field(default_factory=dict)  # ticket id → token
    receipt_requests: int = 0
    _stall: tuple[Stall, int] | None = None  # where, and at which message (1-based)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _conversations: int = 0
    _holding: int = 0
    smtp_port: int = 0
    http_port: int = 0
    _servers: list[Any] = field(default_factory=list)

    # --- SMTP -----------------------------------------------------------------------------

    def stall(self, where: Stall, *, at_message: int) -> None:
        """Hold the conversation of the `at_message`-th message (counted from now) at `where`,
        until `release()`: before its data is sent, or after it was stored (no reply yet)."""
        self._stall = (where, self._conversations + at_message)
        self._released = asyncio.Event()

    def release(self) -> None:
        self._stall = None
        self._released.set()

    @property
    def stalled(self) -> bool:
        """Whether a conversation is being held now."""
        return self._holding > 0

    async def _hold(self, where: Stall, conversation: int) -> None:
        if self._stall == (where, conversation):
            self._holding += 1
            try:
                await self._released.wait()
            finally:
                self._holding -= 1

    async def handle_MAIL(
        self, _server: SMTP, session: Session, envelope: Envelope, address: str, _options: list[str]
    ) -> str:
        self._conversations += 1
        session.conversation = self._conversations  # type: ignore[attr-defined]
        envelope.mail_from = address
        await self._hold("before_data", self._conversations)
        return "250 OK"

    async def handle_DATA(self, _server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.mail.append(
            Mail(
                message_id=str(message.get("Message-ID", "")),
                to=list(envelope.rcpt_tos),
                subject=str(message.get("Subject", "")),
                raw=raw,
            )
        )
        if self.maildir is not None:
            mailbox.Maildir(self.maildir, create=True).add(raw)
        await self._hold("after_store", session.conversation)  # type: ignore[attr-defined]
        return "250 Message accepted for delivery"

    def count(self, message_id: str) -> int:
        return sum(1 for m in self.mail if m.message_id == message_id)

    # --- Expo -------------------------------------------------------------------------------

    async def _push(self, request: web.Request) -> web.Response:
        body = await request.json()
        messages = body if isinstance(body, list) else [body]
        data = []
        for message in messages:
            token = message.get("to")
            self.pushes.append({**message, "authorization": request.headers.get("Authorization")})
            if token in self.unregistered:
                data.append(
                    {
                        "status": "error",
                        "message": f'"{token}" is not a registered push notification recipient',
                        "details": {"error": "DeviceNotRegistered", "expoPushToken": token},
                    }
                )
                continue
            ticket = secrets.token_hex(8)
            self.tickets[ticket] = token
            data.append({"status": "ok", "id": ticket})
        return web.json_response({"data": data})

    async def _receipts(self, request: web.Request) -> web.Response:
        self.receipt_requests += 1
        ids = (await request.json()).get("ids", [])
        data: dict[str, Any] = {}
        for ticket in ids:
            token = self.tickets.get(ticket)
            if token is None:
                continue
            if token in self.unregistered_later:
                data[ticket] = {
                    "status": "error",
                    "message": "The device cannot receive push notifications anymore",
                    "details": {"error": "DeviceNotRegistered"},
                }
            else:
                data[ticket] = {"status": "ok"}
        return web.json_response({"data": data})

    async def _list_mail(self, _request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "message_id": m.message_id,
                    "to": m.to,
                    "subject": m.subject,
                    "text": m.part("text/plain"),
                }
                for m in self.mail
            ]
        )

    async def _list_pushes(self, _request: web.Request) -> web.Response:
        return web.json_response(
            [{k: v for k, v in p.items() if k != "authorization"} for p in self.pushes]
        )

    @property
    def push_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}{PUSH_PATH}"

    @property
    def receipts_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}{RECEIPTS_PATH}"

    # --- running ------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        smtp = await loop.create_server(
            lambda: SMTP(self, hostname="tatame-smtp-sink", ident="tatame smtp sink"),
            host="127.0.0.1",
            port=0,
        )
        self.smtp_port = smtp.sockets[0].getsockname()[1]
        app = web.Application()
        app.router.add_post(PUSH_PATH, self._push)
        app.router.add_post(RECEIPTS_PATH, self._receipts)
        app.router.add_get("/mail", self._list_mail)
        app.router.add_get("/pushes", self._list_pushes)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._servers = [smtp, runner]

    async def stop(self) -> None:
        self.release()
        smtp, runner = self._servers
        smtp.close()
        await runner.cleanup()
        with contextlib.suppress(Exception):
            await smtp.wait_closed()


async def _main(maildir: Path | None) -> None:
    sinks = Sinks(maildir=maildir)
    await sinks.start()
    print(
        f"notification-sinks smtp 127.0.0.1:{sinks.smtp_port} "
        f"http http://127.0.0.1:{sinks.http_port}",
        flush=True,
    )
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await sinks.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tatame_devstack.notification_sinks")
    parser.add_argument("--maildir", type=Path, help="also keep each email in this Maildir")
    asyncio.run(_main(parser.parse_args().maildir))


if __name__ == "__main__":
    main()
