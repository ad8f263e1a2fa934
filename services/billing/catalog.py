"""The catalog mirror: products and prices copied from Stripe, served from Postgres."""

import logging
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import Any

import stripe
from sqlalchemy import or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing.errors import InvalidArgument
from services.billing.mirror import (
    Mirror,
    Row,
    boolean,
    integer,
    lock_objects,
    mapping,
    optional,
    reference,
    string,
    string_map,
    upsert,
)
from services.billing.models import prices, products
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.usage.meters import fetch_meter_rows, write_meters
from services.common.db import fetch_all, retried_on_conflict

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PriceRecord:
    id: str
    product_id: str
    lookup_key: str | None
    unit_amount: int  # per unit (a metered price's: per unit of its meter); 0 if tiered or chosen
    currency: str
    type: str  # "recurring" or "one_time"
    interval: str | None
    interval_count: int | None
    billing_scheme: str  # "per_unit" or "tiered"
    usage_type: str | None  # "licensed" or "metered" (recurring prices)
    meter: str | None
    tiers_mode: str | None  # "graduated" or "volume" (tiered prices)
    tiers: list[dict[str, Any]] | None  # [{up_to, unit_amount, flat_amount}], up_to null: no limit
    custom_unit_amount: dict[str, Any] | None  # {minimum, maximum, preset}: customer chooses
    # The price in other currencies: {currency: {unit_amount, tax_behavior}} (Stripe's
    # `currency_options` without the price's own currency).
    currency_options: dict[str, dict[str, Any]]

    @property
    def currencies(self) -> list[str]:
        """Every currency the price can be paid in: the one it is shown in first, then the
        others."""
        return [self.currency, *sorted(self.currency_options)]

    def in_currency(self, currency: str) -> "PriceRecord | None":
        """The price as billed in `currency` (its own, or an option's amount); None when it
        has no such option."""
        if currency == self.currency:
            return self
        option = self.currency_options.get(currency)
        if option is None or option.get("unit_amount") is None:
            return None
        # The price's own currency becomes an option of the price as shown.
        own = {"unit_amount": self.unit_amount, "tax_behavior": None}
        others = {key: value for key, value in self.currency_options.items() if key != currency}
        return replace(
            self,
            currency=currency,
            unit_amount=option["unit_amount"],
            currency_options={**others, self.currency: own},
        )

    @property
    def fixed_amount(self) -> bool:
        """Whether the price bills `unit_amount` times the quantity, known in advance: not tiered, not
        metered, not an amount the customer chooses. The app subscribes to (and buys) only
        these."""
        return (
            self.billing_scheme == "per_unit"
            and self.usage_type != "metered"
            and self.custom_unit_amount is None
        )


@dataclass(frozen=True, slots=True)
class PlanRecord:
    product_id: str
    name: str
    description: str
    features: list[str]
    prices: list[PriceRecord]
    default_price_id: str | None
    metadata: dict[str, str]
    entitlements: list[str]


@dataclass(frozen=True, slots=True)
class SyncResult:
    products: int
    prices: int
    deactivated: int
    meters: int = 0


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
        "default_price_id": optional(reference, product.get("default_price")),
    }


def entitlement_keys(metadata: dict[str, str]) -> list[str]:
    """The features a product grants: its metadata `features`, comma-separated keys."""
    keys = (key.strip() for key in metadata.get("features", "").split(","))
    return list(dict.fromkeys(key for key in keys if key))


def _tier(tier: dict[str, Any]) -> dict[str, Any]:
    return {
        "up_to": optional(integer, tier.get("up_to")),
        "unit_amount": optional(integer, tier.get("unit_amount")),
        "flat_amount": optional(integer, tier.get("flat_amount")),
    }


def _custom_unit_amount(custom: dict[str, Any]) -> dict[str, Any]:
    return {name: optional(integer, custom.get(name)) for name in ("minimum", "maximum", "preset")}


def _tiers(price: dict[str, Any]) -> dict[str, Any]:
    """The `tiers` column, when the object says: Stripe sends a price's tiers only when they
    are expanded (the catalog sync asks; an event's price has none), so a price without them
    keeps the tiers the mirror holds."""
    if price.get("billing_scheme") != "tiered":
        return {"tiers": None}
    if price.get("tiers") is None:
        return {}
    return {"tiers": [_tier(mapping(tier)) for tier in price["tiers"]]}


def _currency_options(price: dict[str, Any]) -> dict[str, Any]:
    """The `currency_options` column, when the object says: Stripe sends them only when they
    are expanded (the catalog sync and the fetch of a price's event ask)."""
    options = price.get("currency_options")
    if options is None:
        return {}
    others = {c: mapping(o) for c, o in mapping(options).items() if c != price["currency"]}
    read = {"unit_amount": integer, "tax_behavior": string}
    return {
        "currency_options": {
            string(c): {name: optional(how, o.get(name)) for name, how in read.items()}
            for c, o in others.items()
        }
    }


def price_row(price: dict[str, Any]) -> dict[str, Any]:
    """The `billing.prices` row for a Stripe price object (product expanded or not); what is
    not a fixed amount per unit is stored as it is (tiers, usage type and meter, the customer's
    choice), with `unit_amount` 0 where Stripe has none."""
    recurring = optional(mapping, price.get("recurring"))
    custom = optional(mapping, price.get("custom_unit_amount"))
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
        "billing_scheme": optional(string, price.get("billing_scheme")) or "per_unit",
        "usage_type": optional(string, recurring.get("usage_type")) if recurring else None,
        "meter": optional(string, recurring.get("meter")) if recurring else None,
        "tiers_mode": optional(string, price.get("tiers_mode")),
        "custom_unit_amount": None if custom is None else _custom_unit_amount(custom),
        **_tiers(price),
        **_currency_options(price),
    }


async def upsert_product(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert or refresh product rows."""
    await upsert(conn, rows, table=products, touched="synced_at")


async def upsert_price(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert or refresh price rows, in order; a lookup key moves to each from any other price."""
    for row in rows:
        if row["lookup_key"] is not None:
            await conn.execute(
                update(prices)
                .where(prices.c.lookup_key == row["lookup_key"], prices.c.id != row["id"])
                .values(lookup_key=None)
            )
        await upsert(conn, [row], table=prices, touched="synced_at")


def _inactive(row: Row, _deleted_at: datetime) -> Row:
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
    # An event's price lacks them: each price event fetches the price (mirror.ruling).
    expand=("currency_options", "tiers"),
)


async def sync_catalog(*, engine: AsyncEngine, stripe_client: stripe.StripeClient) -> SyncResult:
    """Copy every Stripe product, price and billing meter into the mirror; what Stripe no longer
    has goes inactive."""
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
                await stripe_client.v1.prices.list_async(
                    params={"limit": 100, "expand": [f"data.{f}" for f in PRICES.expand]}
                )
            ).auto_paging_iter()
        ]
        meter_rows = await fetch_meter_rows(stripe_client)
    known = [(PRODUCTS, row["id"]) for row in product_rows] + [
        (PRICES, row["id"]) for row in price_rows
    ]

    async def write() -> int:
        async with engine.begin() as conn:
            # Held first, in the one order of every writer of many objects (a batch of events).
            await lock_objects(conn, known)
            gone_meters = await write_meters(conn, meter_rows)
            # Fetched state, maybe newer than events still on their way: those will fetch again.
            await upsert_product(conn, [{**row, "refetched": True} for row in product_rows])
            await upsert_price(conn, [{**row, "refetched": True} for row in price_rows])
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
        return gone_meters + gone_products.rowcount + gone_prices.rowcount

    # Rows outside that order (one Stripe no longer lists, a lookup key moving) may still meet
    # another writer's in a deadlock that Postgres breaks by aborting one side.
    deactivated = await retried_on_conflict(write)
    result = SyncResult(
        products=len(product_rows),
        prices=len(price_rows),
        deactivated=deactivated,
        meters=len(meter_rows),
    )
    log.info("catalog synced", extra={"fields": asdict(result)})
    return result


_PRICE_COLUMNS = (
    prices.c.id,
    prices.c.product_id,
    prices.c.lookup_key,
    prices.c.unit_amount,
    prices.c.currency,
    prices.c.type,
    prices.c.interval,
    prices.c.interval_count,
    prices.c.billing_scheme,
    prices.c.usage_type,
    prices.c.meter,
    prices.c.tiers_mode,
    prices.c.tiers,
    prices.c.custom_unit_amount,
    prices.c.currency_options,
)


# The price's columns are PriceRecord's, in its order (`_plan_row` builds it positionally).
_PLANS = f"""
SELECT pr.name, pr.description, pr.features, pr.default_price_id, pr.metadata,
       {", ".join(f'p."{column.name}"' for column in _PRICE_COLUMNS)}
FROM billing.products pr JOIN billing.prices p ON p.product_id = pr.id
WHERE pr.active AND p.active AND p.type = ANY(%s::text[])
ORDER BY pr.name, p.unit_amount, p.id
"""  # noqa: S608 (the column names are the table definition's)


def _plan_row(
    name: str,
    description: str,
    features: list[str],
    default_price_id: str | None,
    metadata: dict[str, str],
    *price: Any,
) -> tuple[PriceRecord, str, str, list[str], str | None, dict[str, str]]:
    """A row of `_PLANS`: its price (the columns after the product's, in PriceRecord's order)
    and the columns of the price's product."""
    return PriceRecord(*price), name, description, features, default_price_id, metadata


async def list_plans(
    *, engine: AsyncEngine, include_one_time: bool = False, currency: str | None = None
) -> list[PlanRecord]:
    """Active products with their active recurring (and, if asked, one-time) prices; cheapest
    first. In `currency`, if given: each price as billed in it, those without it left out (and
    the products left without a price)."""
    types = ["recurring", "one_time"] if include_one_time else ["recurring"]
    plans: dict[str, PlanRecord] = {}
    for listed, name, description, features, default_price_id, metadata in await fetch_all(
        engine, _PLANS, (types,), _plan_row
    ):
        price = listed if currency is None else listed.in_currency(currency)
        if price is None:
            continue
        plan = plans.get(price.product_id)
        if plan is None:
            plan = plans[price.product_id] = PlanRecord(
                product_id=price.product_id,
                name=name,
                description=description,
                features=list(features),
                prices=[],
                default_price_id=default_price_id,
                metadata=dict(metadata),
                entitlements=entitlement_keys(metadata),
            )
        plan.prices.append(price)
    return sorted(plans.values(), key=lambda p: min(x.unit_amount for x in p.prices))


async def find_price(*, engine: AsyncEngine, price: str) -> PriceRecord:
    """The active catalog price with this id or lookup key (of an active product)."""
    if not price:
        raise InvalidArgument("price is required: a price id or lookup_key")
    query = (
        select(*_PRICE_COLUMNS)
        .join(products, products.c.id == prices.c.product_id)
        .where(
            or_(prices.c.id == price, prices.c.lookup_key == price),
            prices.c.active,
            products.c.active,
        )
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        raise InvalidArgument(f"no active price {price!r} in the catalog")
    return _price_record(row._mapping)


def _price_record(row: RowMapping) -> PriceRecord:
    return PriceRecord(**{column.name: row[column.name] for column in _PRICE_COLUMNS})


async def plan_of_price(
    conn: AsyncConnection, price_id: str, currency: str | None
) -> PlanRecord | None:
    """The product of a price, with that price (in `currency`, where it has it) as its one price,
    for sale or not (a subscription keeps a price the catalog retired); None when not mirrored."""
    query = select(
        *_PRICE_COLUMNS,
        products.c.name,
        products.c.description,
        products.c.features,
        products.c.default_price_id,
        products.c.metadata,
    ).join(products, products.c.id == prices.c.product_id)
    row = (await conn.execute(query.where(prices.c.id == price_id))).first()
    if row is None:
        return None
    values = row._mapping
    price = _price_record(values)
    return PlanRecord(
        product_id=values["product_id"],
        name=values["name"],
        description=values["description"],
        features=list(values["features"]),
        prices=[(currency and price.in_currency(currency)) or price],
        default_price_id=values["default_price_id"],
        metadata=dict(values["metadata"]),
        entitlements=entitlement_keys(values["metadata"]),
    )
