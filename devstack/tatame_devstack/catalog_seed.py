"""Seed the demo catalog (Tatame Basic, Tatame Pro, a Gi Patch, Video on demand billed per minute
watched) through the official Stripe SDK.

Every price is in usd with a brl option (`currency_options`), so the plans show in both.
Idempotent: products are found by `metadata.catalog_key`, prices by `lookup_key` and billing
meters by `event_name`, and only what is missing is created (a price seeded before without its
brl option gets it), so a second run creates nothing. Works against the local emulator
and a Stripe test-mode account; refuses live-mode keys.

Usage: python -m tatame_devstack.catalog_seed --api-base http://127.0.0.1:PORT [--api-key sk_test_…]
"""

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import stripe
from stripe.params import PriceCreateParams, PriceCreateParamsCurrencyOptions

logger = logging.getLogger(__name__)

DEFAULT_API_KEY = "sk_test_tatame_devstack"
TEST_MODE_KEY_PREFIXES = ("sk_test_", "rk_test_")
LOOKUP_KEYS_PER_LIST = 10  # Stripe's limit for the `lookup_keys` filter

FEATURE_NAMES = {
    "class_booking": "Class booking",
    "attendance_history": "Attendance history",
    "belt_tracking": "Belt tracking",
    "video_library": "Video library",
}


@dataclass(frozen=True)
class PriceSpec:
    lookup_key: str
    nickname: str
    unit_amount: int
    interval: str | None  # "month", "year", or None for a one-time price
    brl_amount: int  # the same price in brl (minor units), a currency option
    currency: str = "usd"
    # A metered price: the event_name of the billing meter it bills (unit_amount per unit).
    meter: str | None = None


@dataclass(frozen=True)
class MeterSpec:
    event_name: str
    display_name: str
    formula: str  # "sum", "count" or "last"


@dataclass(frozen=True)
class ProductSpec:
    catalog_key: str
    name: str
    description: str
    features: tuple[str, ...]  # keys of FEATURE_NAMES
    prices: tuple[PriceSpec, ...]  # the first one is the product's default price


DEMO_CATALOG = (
    ProductSpec(
        catalog_key="tatame_basic",
        name="Tatame Basic",
        description="Book classes and keep your attendance history.",
        features=("class_booking", "attendance_history"),
        prices=(
            PriceSpec("basic_monthly", "Basic monthly", 1900, "month", 9900),
            PriceSpec("basic_yearly", "Basic yearly", 19000, "year", 99000),
        ),
    ),
    ProductSpec(
        catalog_key="tatame_pro",
        name="Tatame Pro",
        description="Everything in Basic, plus belt tracking and the video library.",
        features=("class_booking", "attendance_history", "belt_tracking", "video_library"),
        prices=(
            PriceSpec("pro_monthly", "Pro monthly", 3900, "month", 19900),
            PriceSpec("pro_yearly", "Pro yearly", 39000, "year", 199000),
        ),
    ),
    ProductSpec(
        catalog_key="gi_patch",
        name="Gi Patch",
        description="An embroidered Tatame patch for your gi.",
        features=(),
        prices=(PriceSpec("gi_patch", "Gi patch", 1500, None, 7900),),
    ),
    ProductSpec(
        catalog_key="video_on_demand",
        name="Video on demand",
        description="Technique videos, billed per minute watched.",
        features=(),
        prices=(
            PriceSpec("video_minutes", "Video minutes", 5, "month", 25, meter="video_minutes"),
        ),
    ),
)
DEMO_METERS = (MeterSpec("video_minutes", "Video minutes", "sum"),)


def seed_demo_catalog(client: stripe.StripeClient) -> None:
    """Create whatever of DEMO_METERS and DEMO_CATALOG is missing in the account behind
    `client`."""
    meters = _meters_by_event_name(client)
    products = _products_by_catalog_key(client)
    prices = _prices_by_lookup_key(
        client, [price.lookup_key for spec in DEMO_CATALOG for price in spec.prices]
    )
    for spec in DEMO_CATALOG:
        product = products.get(spec.catalog_key) or _create_product(client, spec)
        price_ids = []
        for price in spec.prices:
            found = prices.get(price.lookup_key)
            if found is None:
                found = _create_price(client, product.id, price, meters)
            elif "brl" not in (found.currency_options or {}):
                client.v1.prices.update(found.id, params={"currency_options": _options(price)})
                logger.info("added the brl option of price %s", price.lookup_key)
            price_ids.append(found.id)
        if product.default_price != price_ids[0]:
            client.v1.products.update(product.id, params={"default_price": price_ids[0]})
            logger.info("set the default price of %s to %s", spec.name, spec.prices[0].lookup_key)


def _meters_by_event_name(client: stripe.StripeClient) -> dict[str, str]:
    """The id of each active meter of DEMO_METERS, created where missing."""
    listed = client.v1.billing.meters.list(params={"status": "active", "limit": 100})
    found = {meter.event_name: meter.id for meter in listed.auto_paging_iter()}
    for spec in DEMO_METERS:
        if spec.event_name not in found:
            meter = client.v1.billing.meters.create(
                params={
                    "display_name": spec.display_name,
                    "event_name": spec.event_name,
                    "default_aggregation": {"formula": spec.formula},
                }
            )
            found[spec.event_name] = meter.id
            logger.info("created meter %s (%s)", spec.event_name, meter.id)
    return found


def _products_by_catalog_key(client: stripe.StripeClient) -> dict[str, stripe.Product]:
    products = client.v1.products.list(params={"limit": 100}).auto_paging_iter()
    return {p.metadata["catalog_key"]: p for p in products if "catalog_key" in p.metadata}


def _prices_by_lookup_key(
    client: stripe.StripeClient, lookup_keys: Sequence[str]
) -> dict[str, stripe.Price]:
    found: dict[str, stripe.Price] = {}
    for start in range(0, len(lookup_keys), LOOKUP_KEYS_PER_LIST):
        keys = lookup_keys[start : start + LOOKUP_KEYS_PER_LIST]
        page = client.v1.prices.list(
            params={
                "lookup_keys": list(keys),
                "limit": len(keys),
                "expand": ["data.currency_options"],
            }
        )
        found.update((price.lookup_key, price) for price in page.data if price.lookup_key)
    return found


def _create_product(client: stripe.StripeClient, spec: ProductSpec) -> stripe.Product:
    metadata = {"catalog_key": spec.catalog_key}
    if spec.features:
        metadata["features"] = ",".join(spec.features)
    product = client.v1.products.create(
        params={
            "name": spec.name,
            "description": spec.description,
            "marketing_features": [{"name": FEATURE_NAMES[f]} for f in spec.features],
            "metadata": metadata,
        }
    )
    logger.info("created product %s (%s)", spec.name, product.id)
    return product


def _create_price(
    client: stripe.StripeClient, product_id: str, spec: PriceSpec, meters: dict[str, str]
) -> stripe.Price:
    params: PriceCreateParams = {
        "product": product_id,
        "currency": spec.currency,
        "unit_amount": spec.unit_amount,
        "lookup_key": spec.lookup_key,
        "nickname": spec.nickname,
        "currency_options": _options(spec),
    }
    if spec.interval is not None and spec.meter is not None:
        params["recurring"] = {
            "interval": spec.interval,
            "usage_type": "metered",
            "meter": meters[spec.meter],
        }
    elif spec.interval is not None:
        params["recurring"] = {"interval": spec.interval}
    price = client.v1.prices.create(params=params)
    logger.info("created price %s (%s)", spec.lookup_key, price.id)
    return price


def _options(spec: PriceSpec) -> dict[str, PriceCreateParamsCurrencyOptions]:
    return {"brl": {"unit_amount": spec.brl_amount}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tatame_devstack.catalog_seed",
        description="Create the Tatame demo catalog where it is missing (idempotent).",
    )
    parser.add_argument(
        "--api-base", required=True, help="Stripe API base URL, e.g. http://127.0.0.1:8420"
    )
    parser.add_argument(
        "--api-key", default=DEFAULT_API_KEY, help="a test-mode secret key (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if not args.api_key.startswith(TEST_MODE_KEY_PREFIXES):
        parser.error("refusing to seed demo data with a key that is not a test-mode key")
    logging.basicConfig(format="%(message)s")
    logger.setLevel(logging.INFO)
    seed_demo_catalog(stripe.StripeClient(args.api_key, base_addresses={"api": args.api_base}))


if __name__ == "__main__":
    main()
