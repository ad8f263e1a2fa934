"""The notifier: claims due notifications, sends each by every configured channel, records each
channel's result the moment the provider accepted it, retries failures with exponential backoff,
and parks a notification that keeps failing as dead (replayable by operators).

What is guaranteed (README, "Notifications"): a notification is written at most once per
(kind, Stripe object); it is claimed (state `sending`, a lease) in a commit of its own before any
send, and each channel's result is committed right after the provider accepted it. A notifier
that dies anywhere loses nothing (the lease runs out and another takes the row) and repeats at
most the one message it was handing over, with the same Message-ID (email) or notification id
in the push's data."""

import asyncio
import contextlib
import logging
from datetime import timedelta

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.notifications import devices, metrics, outbox
from services.billing.notifications.email import EmailChannel, EmailFailed
from services.billing.notifications.kinds import MANDATORY
from services.billing.notifications.messages import Message, render
from services.billing.notifications.push import DEVICE_NOT_REGISTERED, PushChannel, PushFailed
from services.billing.notifications.settings import NotifierSettings
from services.billing.notifications.tables import notifications, push_tickets
from services.common.db import DATABASE_FAILURES

log = logging.getLogger(__name__)

# How often the receipts of push tickets and the backlog gauges are read.
_HOUSEKEEPING_SECONDS = 30.0
# Expo keeps receipts a day: tickets older than this without one are dropped.
_TICKET_RETENTION = timedelta(days=1)


def backoff(attempts: int, *, base: float, cap: float) -> float:
    """Seconds before the next attempt after `attempts` failed ones: base * 2^(n-1), capped."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


class Sender:
    def __init__(
        self, *, engine: AsyncEngine, settings: NotifierSettings, http: httpx.AsyncClient
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._email = EmailChannel(settings) if settings.notify_smtp_host else None
        self._push = PushChannel(settings, http) if settings.notify_expo_push else None

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; the notification under way is finished, not abandoned."""
        loop = asyncio.get_running_loop()
        housekept = 0.0
        while not stop.is_set():
            try:
                handled = await self.send_due()
                if loop.time() - housekept >= _HOUSEKEEPING_SECONDS:
                    housekept = loop.time()
                    await self.check_receipts()
                    await self.measure_backlog()
            except Exception:  # the database or Expo away: logged, tried again after a pause
                log.exception("notifier round failed")
                handled = 0
            if handled < self._settings.notify_batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.notify_poll_seconds)

    async def send_due(self) -> int:
        """Claim one batch of due notifications and deliver each; how many were claimed."""
        claimed = await outbox.claim(
            self._engine,
            limit=self._settings.notify_batch_size,
            lease_seconds=self._settings.notify_lease_seconds,
        )
        for item in claimed:
            await self._deliver(item)
        return len(claimed)

    async def _deliver(self, item: outbox.Claimed) -> None:
        lease = self._settings.notify_lease_seconds
        if not await outbox.renew(self._engine, item, lease_seconds=lease):
            return  # this sender was too slow: another took the notification
        if item.attempts > self._settings.notify_max_attempts:  # notifiers died holding it
            await self._failed(item, "claim", "claimed more than NOTIFY_MAX_ATTEMPTS times", True)
            return
        channel = "email"
        try:
            off = set()
            if item.principal is not None:
                off = set(await devices.disabled_kinds(self._engine, item.principal)) - MANDATORY
            wanted = item.kind not in off
            message = render(kind=item.kind, data=item.data, name=item.name, preferred=item.locales)
            if item.email_result is None:
                result = "off" if not wanted else await self._send_email(item, message)
                await outbox.record_channel(self._engine, item, channel="email", result=result)
                metrics.SENT.labels("email", result).inc()
            channel = "push"
            if item.push_result is None:
                result = "off" if not wanted else await self._send_push(item, message)
                await outbox.record_channel(self._engine, item, channel="push", result=result)
                metrics.SENT.labels("push", result).inc()
        except (EmailFailed, PushFailed) as e:
            await self._failed(item, channel, str(e), False)
            return
        except DATABASE_FAILURES:
            raise  # the round fails; the lease runs out and the notification is taken again
        except Exception as e:  # the message cannot be made (a template, a header): no retry helps
            log.exception("notification cannot be sent", extra={"fields": {"id": str(item.id)}})
            await self._failed(item, channel, f"{type(e).__name__}: {e}", True)
            return
        await outbox.finish(self._engine, item)

    async def _failed(
        self, item: outbox.Claimed, channel: str, error: str, permanent: bool
    ) -> None:
        """Pending again after a backoff, or dead (after the last attempt, or `permanent`)."""
        metrics.FAILED.labels(channel).inc()
        dead = permanent or item.attempts >= self._settings.notify_max_attempts
        delay = None
        if dead:
            metrics.DEAD_LETTERED.inc()
        else:
            delay = backoff(
                item.attempts,
                base=self._settings.notify_backoff_base_seconds,
                cap=self._settings.notify_backoff_max_seconds,
            )
        log.warning(
            "notification not sent",
            extra={
                "fields": {
                    "notification": str(item.id),
                    "channel": channel,
                    "attempts": item.attempts,
                    "dead": dead,
                    "error": error[:200],
                }
            },
        )
        await outbox.retry(self._engine, item, error=f"{channel}: {error}", delay_seconds=delay)

    async def _send_email(self, item: outbox.Claimed, message: Message) -> str:
        if self._email is None:
            return "not_configured"
        if not item.email:
            return "no_address"
        email = self._email.build(
            notification_id=item.id, to=item.email, name=item.name, message=message
        )
        await self._email.send(email)
        return "sent"

    async def _send_push(self, item: outbox.Claimed, message: Message) -> str:
        if self._push is None:
            return "not_configured"
        tokens = (
            [] if item.principal is None else await devices.tokens_of(self._engine, item.principal)
        )
        if not tokens:
            return "no_devices"
        tickets = await self._push.send(
            notification_id=item.id, kind=item.kind, tokens=tokens, message=message
        )
        gone = [t.token for t in tickets if t.error == DEVICE_NOT_REGISTERED]
        taken = [t for t in tickets if t.ticket_id is not None]
        if taken:
            async with self._engine.begin() as conn:
                await conn.execute(
                    push_tickets.insert(),
                    [{"ticket_id": t.ticket_id, "token": t.token} for t in taken],
                )
        await devices.remove_tokens(self._engine, gone)
        metrics.TOKENS_REMOVED.labels("ticket").inc(len(gone))
        if taken:
            return "sent"
        if len(gone) == len(tickets):
            return "no_devices"
        errors = sorted({t.error or "" for t in tickets if t.token not in gone})
        raise PushFailed(f"Expo refused every message: {', '.join(errors)}")

    async def check_receipts(self) -> None:
        """Read the receipts of tickets old enough; forget devices that are not registered."""
        if self._push is None:
            return
        delay = timedelta(seconds=self._settings.notify_receipt_delay_seconds)
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(push_tickets).where(
                    push_tickets.c.created_at < func.now() - _TICKET_RETENTION
                )
            )
            due = (
                await conn.execute(
                    select(push_tickets.c.ticket_id, push_tickets.c.token)
                    .where(push_tickets.c.created_at <= func.now() - delay)
                    .order_by(push_tickets.c.created_at)
                    .limit(1000)
                )
            ).all()
        if not due:
            return
        receipts = await self._push.receipts([ticket_id for ticket_id, _ in due])
        gone = [
            token
            for ticket_id, token in due
            if receipts.get(ticket_id, "") == DEVICE_NOT_REGISTERED
        ]
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(push_tickets).where(push_tickets.c.ticket_id.in_(list(receipts)))
            )
        await devices.remove_tokens(self._engine, gone)
        metrics.TOKENS_REMOVED.labels("receipt").inc(len(gone))

    async def measure_backlog(self) -> None:
        async with self._engine.connect() as conn:
            counts: dict[str, int] = dict(
                (
                    await conn.execute(
                        select(notifications.c.state, func.count())
                        .where(notifications.c.state.in_(["pending", "sending", "dead"]))
                        .group_by(notifications.c.state)
                    )
                ).all()
            )
        for state in ("pending", "sending", "dead"):
            metrics.BACKLOG.labels(state).set(counts.get(state, 0))
