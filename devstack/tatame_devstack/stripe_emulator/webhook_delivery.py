"""Event delivery as Stripe makes it: every event goes to each registered endpoint that enables
its type, POSTed as JSON and signed with the endpoint's secret (`Stripe-Signature:
t=<time of the attempt>,v1=<HMAC-SHA256 of "t.payload">`); an attempt that is not answered 2xx
in time is retried later, with a growing delay. Stripe retries for up to three days in live mode
(a few times over hours in test mode); the emulator keeps the shape of that schedule in seconds,
so that a receiver that was briefly down or overloaded still gets every event, as it would from
Stripe. Deliveries are independent: a later event may arrive before an earlier one's retry.

localstripe sends each event once, an attempt that fails is lost; this replaces its sender.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable

import aiohttp
from localstripe import webhooks as localstripe_webhooks
from localstripe.resources import Event

logger = logging.getLogger(__name__)

# Before the first attempt: the request that made the event has answered by then (localstripe's).
FIRST_DELAY_SECONDS = 1.0
# Between an attempt that failed and the next; after the last, the delivery is given up.
RETRY_DELAYS_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
# How long an attempt waits for the endpoint's answer before it counts as failed.
ATTEMPT_TIMEOUT_SECONDS = 20.0


def signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """Stripe's `Stripe-Signature` of `payload` made with `secret` at `timestamp` (now)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), b"%d.%s" % (stamp, payload), hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


async def _attempt(session: aiohttp.ClientSession, url: str, secret: str, payload: bytes) -> str:
    """One POST of `payload`; what went wrong, or '' when the endpoint took it (2xx)."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signature_header(payload, secret),
    }
    try:
        async with session.post(url, data=payload, headers=headers) as answer:
            return "" if 200 <= answer.status < 300 else f"answered {answer.status}"
    except (aiohttp.ClientError, TimeoutError) as e:
        return f"failed ({type(e).__name__})"


async def _deliver(webhook: localstripe_webhooks.Webhook, event: Event, payload: bytes) -> None:
    timeout = aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS_SECONDS), start=1):
            await asyncio.sleep(delay)
            problem = await _attempt(session, webhook.url, webhook.secret, payload)
            if not problem:
                return
            logger.info("webhook %s (%s) attempt %d %s", event.id, event.type, attempt, problem)
    logger.warning("webhook %s (%s) given up after %d attempts", event.id, event.type, attempt)


async def send_event(event: Event) -> None:
    """Deliver `event` to every endpoint registered for its type (localstripe's registry)."""
    payload = json.dumps(event._export(), indent=2, sort_keys=True).encode()
    await asyncio.sleep(FIRST_DELAY_SECONDS)
    endpoints = [
        webhook
        for webhook in localstripe_webhooks._webhooks.values()
        if webhook.events is None or event.type in webhook.events
    ]
    await asyncio.gather(*(_deliver(webhook, event, payload) for webhook in endpoints))


def install(check: Callable[[Event], None] | None = None) -> None:
    """Send localstripe's events (its own as well as ours) this way; `check` sees each first."""

    async def sender(event: Event) -> None:
        if check is not None:
            check(event)
        await send_event(event)

    localstripe_webhooks._send_webhook = sender
