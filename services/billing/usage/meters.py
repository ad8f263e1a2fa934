"""The meters mirror: Stripe's Billing Meters, copied by the catalog sync (sync-catalog), so that
RecordUsage resolves a meter and GET /v1/usage aggregates by its formula without asking Stripe."""

from typing import Any

import stripe
from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.mirror import mapping, string
from services.billing.usage.tables import meters


def meter_row(meter: dict[str, Any]) -> dict[str, Any]:
    """The `billing.meters` row for a Stripe billing.meter object."""
    return {
        "id": string(meter["id"]),
        "event_name": string(meter["event_name"]),
        "display_name": string(meter["display_name"]),
        "formula": string(mapping(meter["default_aggregation"])["formula"]),
        "customer_payload_key": string(mapping(meter["customer_mapping"])["event_payload_key"]),
        "value_payload_key": string(mapping(meter["value_settings"])["event_payload_key"]),
        "status": string(meter["status"]),
    }


async def fetch_meter_rows(stripe_client: stripe.StripeClient) -> list[dict[str, Any]]:
    """Every meter of the Stripe account, as rows (the caller translates Stripe's errors)."""
    listed = await stripe_client.v1.billing.meters.list_async(params={"limit": 100})
    return [meter_row(m.to_dict()) async for m in listed.auto_paging_iter()]


async def write_meters(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    """Insert or refresh meter rows; a meter Stripe no longer lists goes inactive. How many
    went inactive."""
    if rows:
        statement = insert(meters).values(rows)
        columns = {name: statement.excluded[name] for name in rows[0] if name != "id"}
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[meters.c.id], set_={**columns, "synced_at": func.now()}
            )
        )
    gone = await conn.execute(
        update(meters)
        .where(meters.c.id.not_in([row["id"] for row in rows]), meters.c.status == "active")
        .values(status="inactive", synced_at=func.now())
    )
    return gone.rowcount
