"""The catalog mirror: products and prices copied from Stripe, served from Postgres."""

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

import stripe
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing.mirror import (
    Mirror,
    Row,
    boolean,
    integer,
    mapping,
    optional,
    reference,
    string,
    string_map,
    upsert,
)
from services.billing.models import prices, products
from services.billing.stripe_client import translated_stripe_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PriceRecord:
    id: str
    lookup_key: str | None
    unit_amount: int
    currency: str
    interval: str
    interval_count: int


@dataclass(frozen=True, slots=True)
class PlanRecord:
    product_id: str
    name: str
    description: str
    features: list[str]
    prices: list[PriceRecord]


@dataclass(frozen=True, slots=True)
class SyncResult:
    products: int
    prices: int
    deactivated: int


def product_row(product: dict[str, Any]) -> dict[str, Any]:
    """The `billing.products` row for a Stripe product object."""
    features = [f["name"] for f in product.get("marketing_features") or [] if f.get("name")]
    return {
        "id": string(product["id"]),
        "name": string(product["name"]),
        "description": optional(string, product.get("description")) or "",
        "features": [string(name) for name in features],
        "active": boolean(product["active"]),
        "metadata": string_map(product.get("metadata")),
    }


def price_row(price: dict[str, Any]) -> dict[str, Any]:
    """The `billing.prices` row for a Stripe price object (product expanded or not)."""
    recurring = optional(mapping, price.get("recurring"))
    return {
        "id": string(price["id"]),
        "product_id": reference(price["product"]),
        "lookup_key": optional(string, price.get("lookup_key")),
        "unit_amount": optional(integer, price["unit_amount"]) or 0,
        "currency": string(price["currency"]),
        "type": "recurring" if recurring else "one_time",
        "interval": string(recurring["interval"]) if recurring else None,
        "interval_count": integer(recurring.get("interval_count") or 1) if recurring else None,
        "active": boolean(price["active"]),
    }


async def upsert_product(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Insert or refresh one product row."""
    await upsert(conn, row, table=products, touched="synced_at")


async def upsert_price(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Insert or refresh one price row; a lookup key moves to it from any other price."""
    if row["lookup_key"] is not None:
        await conn.execute(
            update(prices)
            .where(prices.c.lookup_key == row["lookup_key"], prices.c.id != row["id"])
            .values(lookup_key=None)
        )
    await upsert(conn, row, table=prices, touched="synced_at")


def _inactive(row: Row, deleted_at: datetime) -> Row:
    """A product or price that Stripe deleted stays in the mirror, inactive."""
    return {**row, "active": False}


PRODUCTS = Mirror(
    object_type="product",
    table=products,
    key=products.c.id,
    row=product_row,
    service=attrgetter("v1.products"),
    write=upsert_product,
    retire=_inactive,
)
PRICES = Mirror(
    object_type="price",
    table=prices,
    key=prices.c.id,
    row=price_row,
    service=attrgetter("v1.prices"),
    write=upsert_price,
    retire=_inactive,
)


async def sync_catalog(*, engine: AsyncEngine, stripe_client: stripe.StripeClient) -> SyncResult:
    """Copy every Stripe product and price into the mirror; what Stripe no longer has goes inactive."""
    async with translated_stripe_errors("list the catalog"):
        product_rows = [
            product_row(p.to_dict())
            async for p in (
                await stripe_client.v1.products.list_async(params={"limit": 100})
            ).auto_paging_iter()
        ]
        price_rows = [
            price_row(p.to_dict())
            async for p in (
                await stripe_client.v1.prices.list_async(params={"limit": 100})
            ).auto_paging_iter()
        ]
    async with engine.begin() as conn:
        # Fetched state, maybe newer than events still on their way: those will fetch again.
        for row in product_rows:
            await upsert_product(conn, {**row, "refetched": True})
        for row in price_rows:
            await upsert_price(conn, {**row, "refetched": True})
        gone_products = await conn.execute(
            update(products)
            .where(products.c.id.not_in([r["id"] for r in product_rows]), products.c.active)
            .values(active=False)
        )
        gone_prices = await conn.execute(
            update(prices)
            .where(prices.c.id.not_in([r["id"] for r in price_rows]), prices.c.active)
            .values(active=False)
        )
    result = SyncResult(
        products=len(product_rows),
        prices=len(price_rows),
        deactivated=gone_products.rowcount + gone_prices.rowcount,
    )
    log.info("catalog synced", extra={"fields": asdict(result)})
    return result


async def list_plans(*, engine: AsyncEngine) -> list[PlanRecord]:
    """Active products that have at least one active recurring price, cheapest first."""
    query = (
        select(
            products.c.id,
            products.c.name,
            products.c.description,
            products.c.features,
            prices.c.id.label("price_id"),
            prices.c.lookup_key,
            prices.c.unit_amount,
            prices.c.currency,
            prices.c.interval,
            prices.c.interval_count,
        )
        .join(prices, prices.c.product_id == products.c.id)
        .where(products.c.active, prices.c.active, prices.c.type == "recurring")
        .order_by(products.c.name, prices.c.unit_amount, prices.c.id)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    plans: dict[str, PlanRecord] = {}
    for r in rows:
        plan = plans.get(r.id)
        if plan is None:
            plan = plans[r.id] = PlanRecord(r.id, r.name, r.description, list(r.features), [])
        plan.prices.append(
            PriceRecord(
                r.price_id, r.lookup_key, r.unit_amount, r.currency, r.interval, r.interval_count
            )
        )
    return sorted(plans.values(), key=lambda p: min(x.unit_amount for x in p.prices))
