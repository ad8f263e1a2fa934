"""The backstop: reads Stripe's Events API from a stored cursor and inserts what the receiver
never got, through the same idempotent insert."""

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import stripe
from psycopg import AsyncConnection

from services.webhooks import inbox
from services.webhooks.metrics import RECEIVED
from services.webhooks.stripe_events import MalformedEvent, event_from_dict

log = logging.getLogger(__name__)

CURSOR = "stripe-events-backstop"


@dataclass(frozen=True, slots=True)
class BackstopResult:
    seen: int
    inserted: int


async def poll_stripe_events(
    *,
    conn: AsyncConnection,
    stripe_client: stripe.StripeClient,
    livemode: bool,
    initial_lookback: timedelta,
    overlap: timedelta,
) -> BackstopResult:
    """Insert every Stripe event since the cursor (minus `overlap`); advance the cursor."""
    cursor = await inbox.read_cursor(conn, CURSOR)
    since = (cursor - overlap) if cursor else datetime.now(UTC) - initial_lookback
    listing = await stripe_client.v1.events.list_async(
        params={"created": {"gte": int(since.timestamp())}, "limit": 100}
    )
    events, newest = [], cursor
    async for stripe_event in listing.auto_paging_iter():
        raw = stripe_event.to_dict()
        try:
            # `default=str`: the SDK turns Stripe's *_decimal strings into Decimal; back to their text.
            event = event_from_dict(raw, json.dumps(raw, default=str))
        except MalformedEvent:
            log.warning("skipping a malformed event from Stripe's list", exc_info=True)
            continue
        if event.livemode is not livemode:
            continue
        events.append(event)
        created = datetime.fromtimestamp(event.created, UTC)
        newest = created if newest is None or created > newest else newest
    inserted: set[str] = set()
    for start in range(0, len(events), 500):
        inserted |= await inbox.insert_events(conn, events[start : start + 500], source="backstop")
    if newest is not None:
        async with conn.transaction():
            await inbox.write_cursor(conn, CURSOR, newest)
    RECEIVED.labels("backstop").inc(len(inserted))
    if inserted:
        log.warning(
            "backstop found events the receiver never stored",
            extra={"fields": {"count": len(inserted)}},
        )
    return BackstopResult(seen=len(events), inserted=len(inserted))
