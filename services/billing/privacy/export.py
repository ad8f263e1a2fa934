"""Everything billing and the webhooks inbox hold about a principal, as one JSON document: its
customer, the mirror's rows of its Stripe customers (the current one and any erased), its
usage records, its erasures, and the inbox's events about it with their payloads."""

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.auth.principal import Principal
from services.billing.privacy.inbox import InboxClient, InboxUnavailable, Subjects
from services.common.timestamps import optional_datetime

# The document's sections of mirror rows, each the rows of a table about the principal's Stripe
# customers (`:customers`) or the principal itself (`:principal`), oldest first. The one place
# to add a section.
_SECTIONS: Sequence[tuple[str, str]] = (
    (
        "subscriptions",
        "SELECT * FROM billing.subscriptions"
        " WHERE stripe_customer_id = ANY(CAST(:customers AS text[])) ORDER BY created, id",
    ),
    (
        "invoices",
        "SELECT * FROM billing.invoices"
        " WHERE stripe_customer_id = ANY(CAST(:customers AS text[])) ORDER BY created, id",
    ),
    (
        "purchases",
        "SELECT * FROM billing.purchases"
        " WHERE stripe_customer_id = ANY(CAST(:customers AS text[])) ORDER BY created, id",
    ),
    (
        "charges",
        "SELECT * FROM billing.charges"
        " WHERE stripe_customer_id = ANY(CAST(:customers AS text[])) ORDER BY created, id",
    ),
    (
        "payment_methods",
        "SELECT id, stripe_customer_id, type, card_brand, card_last4, card_exp_month,"
        " card_exp_year, attached, updated_at FROM billing.payment_methods"
        " WHERE stripe_customer_id = ANY(CAST(:customers AS text[]))"
        " OR id = ANY(CAST(:payment_methods AS text[])) ORDER BY id",
    ),
    (
        "notifications",
        "SELECT id, kind, object_id, stripe_customer_id, event_id, data, state, attempts,"
        " email_result, push_result, created_at, sent_at FROM billing.notifications"
        " WHERE stripe_customer_id = ANY(CAST(:customers AS text[])) ORDER BY created_at, id",
    ),
    (
        "devices",
        "SELECT token, platform, created_at FROM billing.notification_devices"
        " WHERE principal = :principal ORDER BY created_at, token",
    ),
    (
        "notification_preferences",
        "SELECT disabled_kinds, updated_at FROM billing.notification_preferences"
        " WHERE principal = :principal",
    ),
    (
        "usage_records",
        "SELECT identifier, event_name, meter_id, value, occurred_at, recorded_by, recorded_at,"
        " state, sent_at FROM billing.usage_records"
        " WHERE principal = :principal ORDER BY occurred_at, id",
    ),
)


def _plain(value: Any) -> Any:
    """A column's value as JSON (times in ISO 8601, UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None
    if isinstance(value, UUID):
        return str(value)
    return value


async def _rows(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    result = await conn.execute(text(sql), params)
    return [{k: _plain(v) for k, v in row._mapping.items()} for row in result]


async def export_account(
    *, engine: AsyncEngine, inbox: InboxClient | None, principal: Principal
) -> str:
    """The export document of `principal` (JSON text)."""
    if inbox is None:
        raise InboxUnavailable(
            "billing has no credential for the webhooks inbox (BILLING_WEBHOOKS_SERVICE_SECRET)"
        )
    key = {"principal": principal.key}
    async with engine.connect() as conn:
        customer = await _rows(
            conn,
            "SELECT stripe_customer_id, email, name, created_at, deleted_at"
            " FROM billing.customers WHERE principal = :principal",
            key,
        )
        erasures = await _rows(
            conn,
            "SELECT requested_by, requested_at, completed_at, state, stripe_customer_id,"
            " canceled_subscription_ids, payment_method_ids, inbox_events_scrubbed"
            " FROM billing.erasures WHERE principal = :principal ORDER BY requested_at, id",
            key,
        )
        customers = [
            c["stripe_customer_id"] for c in customer + erasures if c["stripe_customer_id"]
        ]
        payment_methods = [pm for e in erasures for pm in e["payment_method_ids"]]
        params = {
            "customers": customers,
            "payment_methods": payment_methods,
            "principal": principal.key,
        }
        document: dict[str, Any] = {
            "principal": principal.key,
            "exported_at": datetime.now(UTC).isoformat(),
            "customer": customer[0] if customer else None,
        }
        for name, sql in _SECTIONS:
            document[name] = await _rows(conn, sql, params)
    document["erasures"] = erasures
    known_payment_methods = sorted({pm["id"] for pm in document["payment_methods"]})
    events = await inbox.events(
        Subjects(stripe_ids=customers + known_payment_methods, clerk_ids=[principal.id])
    )
    document["events"] = [
        {
            "id": event.id,
            "provider": event.provider,
            "type": event.type,
            "created": _plain(optional_datetime(event, "create_time")),
            "received_at": _plain(optional_datetime(event, "receive_time")),
            "payload": json.loads(event.payload) if event.payload else None,
        }
        for event in events
    ]
    return json.dumps(document, separators=(",", ":"))
