"""The catalog: Prices (each recurring one mirrored by a localstripe Plan) and Products."""

import copy
import time
from collections.abc import Callable
from typing import Any

import stripe
from localstripe.errors import UserError
from localstripe.resources import Plan, Product, StripeObject

from tatame_devstack.stripe_emulator.currencies import (
    parse_currency_options,
    render_currency_options,
)
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    as_bool,
    as_currency,
    as_optional_str,
    as_str,
    merged_metadata,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.price_terms import price_terms
from tatame_devstack.stripe_emulator.render import expanded, shape
from tatame_devstack.stripe_emulator.state import stored

MAX_LOOKUP_KEYS_FILTER = 10
MAX_MARKETING_FEATURES = 15
PRODUCT_DATA_PARAMS = frozenset({"id", "name", "active", "metadata", "statement_descriptor"})
# What a price and a product keep of what Stripe renders (the rest is null or constant).
PRICE_FIELDS = (
    *("id", "active", "billing_scheme", "created", "currency", "custom_unit_amount"),
    *("livemode", "lookup_key", "metadata", "nickname", "product", "recurring"),
    *("tax_behavior", "tiers", "tiers_mode", "transform_quantity", "type", "unit_amount"),
    "unit_amount_decimal",
)
PRODUCT_FIELDS = (
    *("id", "active", "created", "default_price", "description", "livemode", "metadata"),
    *("name", "shippable", "statement_descriptor", "type", "updated", "url"),
)


def _as_marketing_features(value: Any) -> list[dict[str, str]]:
    if value == "":
        return []
    if not isinstance(value, list) or len(value) > MAX_MARKETING_FEATURES:
        raise param_error(
            "marketing_features",
            f"Invalid marketing_features: expected a list of at most {MAX_MARKETING_FEATURES}",
        )
    features = []
    for index, feature in enumerate(value):
        name = feature.get("name") if isinstance(feature, dict) else None
        if not isinstance(name, str) or not name or set(feature) != {"name"}:
            raise param_error(
                f"marketing_features[{index}]", "Each marketing feature needs exactly a `name`."
            )
        features.append({"name": name})
    return features


def _lookup_key_holder(lookup_key: str | None, *, transfer: bool) -> "Price | None":
    """The price that holds `lookup_key` and must give it up; refuse if it may not."""
    if lookup_key is None:
        return None
    holder = next((p for p in stored(Price.object) if p.lookup_key == lookup_key), None)
    if holder is not None and not transfer:
        raise param_error(
            "lookup_key",
            f"A price (`{holder.id}`) already uses that lookup key. "
            "Pass `transfer_lookup_key=true` to move it to this price.",
        )
    return holder


class Price(StripeObject):
    """A Stripe Price: per unit, tiered, or (one-time) an amount the customer chooses. A
    recurring one is mirrored by a Plan with the same id. `tiers` and `currency_options` (the
    amount in other currencies, see `currencies`) are sent only when expanded, as Stripe sends
    them."""

    currency_options: dict[str, dict[str, Any]] = {}  # prices of older state files have none

    object = "price"
    _id_prefix = "price_"

    def __init__(
        self,
        product: Any = None,
        product_data: Any = None,
        lookup_key: Any = None,
        transfer_lookup_key: Any = False,
        nickname: Any = None,
        active: Any = True,
        **terms: Any,
    ) -> None:
        parsed = price_terms(**terms)
        lookup_key = as_optional_str("lookup_key", lookup_key)
        nickname = as_optional_str("nickname", nickname)
        active = as_bool("active", active)
        transfer = as_bool("transfer_lookup_key", transfer_lookup_key)
        previous_holder = _lookup_key_holder(lookup_key, transfer=transfer)
        product_id = self._product_id(product, product_data)

        # Everything is validated: nothing below may fail.
        super().__init__()
        self.active = active
        self.billing_scheme = parsed["billing_scheme"]
        self.currency = parsed["currency"]
        self.currency_options = parsed["currency_options"]
        self.custom_unit_amount = parsed["custom_unit_amount"]
        self.tiers = parsed["tiers"]
        self.lookup_key = lookup_key
        self.metadata = parsed["metadata"]
        self.nickname = nickname
        self.product = product_id
        self.recurring = parsed["recurring"]
        self.tax_behavior = parsed["tax_behavior"]
        self.tiers_mode = parsed["tiers_mode"]
        self.transform_quantity = None
        self.type = "one_time" if self.recurring is None else "recurring"
        self.unit_amount = parsed["unit_amount"]
        self.unit_amount_decimal = None if self.unit_amount is None else str(self.unit_amount)

        if previous_holder is not None:
            previous_holder._give_up_lookup_key()
        if self.recurring is not None:
            Plan(
                id=self.id,
                product=self.product,
                amount=self.unit_amount or 0,  # a Plan's amount; the price says how it bills
                currency=self.currency,
                interval=self.recurring["interval"],
                interval_count=self.recurring["interval_count"],
                usage_type=self.recurring["usage_type"],
                nickname=self.nickname,
                metadata=dict(self.metadata),
                active=self.active,
            )
        send_event("price.created", self)

    @staticmethod
    def _product_id(product: Any, product_data: Any) -> str:
        """The id of an existing product, or of one created from `product_data`."""
        if (product is None) == (product_data is None):
            raise param_error("product", "Pass exactly one of `product` and `product_data`.")
        if product is not None:
            return Product._api_retrieve(as_str("product", product)).id
        if not isinstance(product_data, dict):
            raise param_error("product_data", "Invalid product_data: expected a hash")
        reject_unknown(
            {k: v for k, v in product_data.items() if k not in PRODUCT_DATA_PARAMS},
            parent="product_data",
        )
        return CatalogProduct(**product_data).id

    @classmethod
    def _api_retrieve(cls, id: str) -> "Price":
        try:
            return super()._api_retrieve(id)
        except UserError as error:
            raise UserError(
                404, f"No such price: '{id}'", {"code": "resource_missing", "param": "id"}
            ) from error

    @classmethod
    def _api_update(
        cls,
        id: str,
        active: Any = None,
        metadata: Any = None,
        nickname: Any = None,
        lookup_key: Any = None,
        transfer_lookup_key: Any = False,
        currency_options: Any = None,
        **unknown: Any,
    ) -> "Price":
        reject_unknown(unknown)
        price = cls._api_retrieve(id)
        per_unit = price.billing_scheme == "per_unit" and price.custom_unit_amount is None
        options = {
            **price.currency_options,
            **parse_currency_options(currency_options, currency=price.currency, per_unit=per_unit),
        }
        active = price.active if active is None else as_bool("active", active)
        metadata = price.metadata if metadata is None else merged_metadata(price.metadata, metadata)
        nickname = price.nickname if nickname is None else as_optional_str("nickname", nickname)
        transfer = as_bool("transfer_lookup_key", transfer_lookup_key)
        if lookup_key is None:
            lookup_key = price.lookup_key
        else:
            lookup_key = as_optional_str("lookup_key", lookup_key)
        previous_holder = None
        if lookup_key != price.lookup_key:
            previous_holder = _lookup_key_holder(lookup_key, transfer=transfer)

        if previous_holder is not None:
            previous_holder._give_up_lookup_key()
        price.active, price.metadata, price.nickname = active, metadata, nickname
        price.lookup_key, price.currency_options = lookup_key, options
        if price.type == "recurring":
            plan = Plan._api_retrieve(price.id)
            plan.active, plan.metadata, plan.nickname = active, dict(metadata), nickname
        send_event("price.updated", price)
        return price

    @classmethod
    def _api_list_all(
        cls, url: str, limit: Any = None, starting_after: Any = None, **filters: Any
    ) -> Any:
        matchers = _price_matchers(filters)
        page = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        # Newest first, as Stripe lists.
        page._list = [p for p in reversed(page._list) if all(match(p) for match in matchers)]
        return page

    def _export(self, expand: Any = None) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in PRICE_FIELDS}
        if self.recurring is not None:
            values["recurring"] = shape(stripe.Price.Recurring, self.recurring)
        if self.custom_unit_amount is not None:
            values["custom_unit_amount"] = shape(
                stripe.Price.CustomUnitAmount, self.custom_unit_amount
            )
        # Prices of an older state file have no tiers.
        tiers = getattr(self, "tiers", None)
        values["tiers"] = None if tiers is None else [shape(stripe.Price.Tier, t) for t in tiers]
        values["currency_options"] = render_currency_options(self)
        rendered = shape(stripe.Price, {**values, "object": "price"}, expand=expand or ())
        return expanded(rendered, expand or ())

    def _give_up_lookup_key(self) -> None:
        self.lookup_key = None
        send_event("price.updated", self)


def _price_matchers(filters: dict[str, Any]) -> list[Callable[[Price], bool]]:
    """Predicates for `GET /v1/prices` filters: active, product, type, currency, lookup_keys."""
    matchers: list[Callable[[Price], bool]] = []
    if (active := filters.pop("active", None)) is not None:
        wanted_active = as_bool("active", active)
        matchers.append(lambda price: price.active == wanted_active)
    if (product := filters.pop("product", None)) is not None:
        wanted_product = as_str("product", product)
        matchers.append(lambda price: price.product == wanted_product)
    if (price_type := filters.pop("type", None)) is not None:
        wanted_type = as_str("type", price_type, choices=("one_time", "recurring"))
        matchers.append(lambda price: price.type == wanted_type)
    if (currency := filters.pop("currency", None)) is not None:
        wanted_currency = as_currency(currency)
        matchers.append(lambda price: price.currency == wanted_currency)
    if (lookup_keys := filters.pop("lookup_keys", None)) is not None:
        if (
            not isinstance(lookup_keys, list)
            or len(lookup_keys) > MAX_LOOKUP_KEYS_FILTER
            or not all(isinstance(key, str) for key in lookup_keys)
        ):
            raise param_error(
                "lookup_keys", f"Invalid lookup_keys: up to {MAX_LOOKUP_KEYS_FILTER} strings"
            )
        wanted_keys = frozenset(lookup_keys)
        matchers.append(lambda price: price.lookup_key in wanted_keys)
    reject_unknown(filters)
    return matchers


class CatalogProduct(Product):
    """localstripe's Product plus `marketing_features`, `default_price` and `updated`.

    As in Stripe, `default_price_data` is a create parameter and `default_price` an update one.
    """

    def __init__(
        self,
        marketing_features: Any = None,
        default_price_data: Any = None,
        active: Any = True,
        shippable: Any = True,
        **params: Any,
    ) -> None:
        features = [] if marketing_features is None else _as_marketing_features(marketing_features)
        if default_price_data is not None:
            if not isinstance(default_price_data, dict):
                raise param_error(
                    "default_price_data", "Invalid default_price_data: expected a hash"
                )
            price_terms(**default_price_data)
        # Set before Product.__init__, whose product.created event exports them.
        self.marketing_features = features
        self.default_price = None
        self.updated = int(time.time())
        super().__init__(
            active=as_bool("active", active), shippable=as_bool("shippable", shippable), **params
        )
        if default_price_data is not None:
            self.default_price = Price(product=self.id, **default_price_data).id

    @classmethod
    def _api_update(
        cls,
        id: str,
        marketing_features: Any = None,
        default_price: Any = None,
        metadata: Any = None,
        **params: Any,
    ) -> Product:
        product = cls._api_retrieve(id)
        features = (
            None if marketing_features is None else _as_marketing_features(marketing_features)
        )
        if default_price is not None:
            price = Price._api_retrieve(as_str("default_price", default_price))
            if price.product != product.id:
                raise param_error("default_price", "The default price must belong to this product.")
        metadata = (
            product.metadata if metadata is None else merged_metadata(product.metadata, metadata)
        )
        for name in ("active", "shippable"):
            if name in params:
                params[name] = as_bool(name, params[name])

        product._update(**params)  # localstripe's: refuses unknown fields before changing any
        if features is not None:
            product.marketing_features = features
        if default_price is not None:
            product.default_price = default_price
        product.metadata = metadata
        product.updated = int(time.time())
        send_event("product.updated", product)
        return product

    def _export(self, expand: Any = None) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in PRODUCT_FIELDS}
        values["marketing_features"] = [
            shape(stripe.Product.MarketingFeature, feature) for feature in self.marketing_features
        ]
        rendered = shape(stripe.Product, {**values, "object": "product", "images": []})
        return expanded(rendered, expand or ())


def items_with_plans(items: Any) -> Any:
    """Subscription `items` with each recurring `price` passed as the `plan` of the same id."""
    if not isinstance(items, list):
        return items
    converted = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and "price" in item:
            param = f"items[{index}][price]"
            if "plan" in item:
                raise param_error(
                    param, "You may only specify one of these parameters: plan, price."
                )
            price = Price._api_retrieve(as_str(param, item["price"]))
            if price.type != "recurring":
                raise param_error(
                    param,
                    "The price specified is set to `type=one_time` but this field only accepts "
                    "prices with `type=recurring`.",
                )
            rest = {key: value for key, value in item.items() if key != "price"}
            item = {**rest, "plan": price.id}
        converted.append(item)
    return converted


def recurring_plan(param: str, value: Any, currency: Any = None) -> Plan:
    """The Plan of the recurring price named by parameter `param`, in `currency` if given."""
    [converted] = items_with_plans([{"price": value}])
    if not isinstance(converted.get("plan"), str):
        raise param_error(param, f"Invalid price: {value!r}")
    return plan_in(Plan._api_retrieve(converted["plan"]), currency)


def plan_in(plan: Plan, currency: Any) -> Plan:
    """`plan` billed in `currency` (None: its own): a copy carrying the amount of the price's
    option in that currency (Stripe's 400 when the price has none)."""
    if currency is None or (wanted := as_currency(currency)) == plan.currency:
        return plan
    options = Price._api_retrieve(plan.id).currency_options
    if wanted not in options:
        raise param_error(
            "currency",
            f"The price specified ({plan.id}) does not support the currency `{wanted}`: "
            f"it has {', '.join(sorted([plan.currency, *options]))}.",
        )
    variant = copy.copy(plan)
    variant.amount, variant.currency = options[wanted]["unit_amount"], wanted
    return variant
