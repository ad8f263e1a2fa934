"""A local, stateful Stripe emulator for development and tests (never production).

It runs `localstripe` (GPL-3.0, a dev/test dependency only) with what our backend needs and
localstripe lacks, added by subclassing its resources and extending its aiohttp app:

- the Prices API; each recurring price is also a localstripe Plan with the same id, so that
  subscriptions accept it (`items[].price` is taken as `items[].plan`);
- products with `marketing_features`, `default_price_data` (create), `default_price` (update)
  and `updated`, and a `product.updated` event on update;
- subscriptions as Stripe bills them now: `payment_behavior=default_incomplete` (the first
  invoice's PaymentIntent, or during a trial a `pending_setup_intent`, waits for the client;
  confirming it with `payment_method=pm_card_visa` pays and activates, saving the card with
  `payment_settings.save_default_payment_method`), a `default_payment_method`, item changes with
  prorations (`proration_behavior`, `always_invoice` billing at once), `cancel_at_period_end`
  with `cancel_at`, periods that honour `interval_count` and trials, and
  `customer.subscription.updated` events;
- subscription schedules `from_subscription` (phases of one item; release), invoice previews
  (`POST /v1/invoices/create_preview`) of an item change;
- Checkout Sessions (subscription mode, for an existing customer), Billing Portal sessions and
  ephemeral keys (made for the request's `Stripe-Version`);
- a customer's default payment method (must be attached; detaching unsets it), its payment
  methods (`GET /v1/customers/{id}/payment_methods`), attach/detach events;
- invoices with `amount_remaining`, `invoice.finalized`/`invoice.paid` events, lines with their
  `parent` (proration or not) and, once finalized, a `confirmation_secret`, a `number` and links
  to the hosted page and PDF (under `.invalid` hosts: the emulator serves no pages);
- emulator-only endpoints for what a customer or a test clock would do: paying a Checkout Session
  (`POST /_testing/checkout/sessions/{id}/complete`, `payment_method=pm_card_…`), ending a
  subscription's period (`POST /_testing/subscriptions/{id}/end_period`: a planned cancellation
  happens, the schedule's next phase starts, the new period is charged) and telling an ephemeral
  key's version (`GET /_testing/ephemeral_keys/{secret}`);
- Stripe's idempotency layer (`Idempotency-Key` on POST: replay, mismatch 400, in-flight 409);
- Stripe-shaped JSON errors for unknown routes and unexpected failures;
- state in memory (never localstripe's shared /tmp/localstripe.pickle), or in a state file.

Usage: python -m tatame_devstack.stripe_emulator [--host 127.0.0.1] [--port 8420]
[--state-file PATH]. Once listening it prints one line to stdout:
`stripe-emulator listening on http://127.0.0.1:<port>`.
"""

import argparse
import asyncio
import calendar
import hashlib
import json
import logging
import pickle
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from localstripe import server as localstripe_server
from localstripe.errors import UserError
from localstripe.resources import (
    Customer,
    Event,
    Invoice,
    InvoiceItem,
    InvoiceLineItem,
    List,
    PaymentIntent,
    PaymentMethod,
    Plan,
    Product,
    SetupIntent,
    Store,
    StripeObject,
    Subscription,
    random_id,
    store,
    try_convert_to_bool,
    try_convert_to_int,
)
from localstripe.webhooks import schedule_webhook

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

LISTENING_MESSAGE = "stripe-emulator listening on {url}"
MUTATING_METHODS = frozenset({"POST", "DELETE"})
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60  # Stripe prunes keys after 24 hours
IDEMPOTENCY_MAX_KEYS = 10_000
STATE_FORMAT = "tatame-stripe-emulator/1"

INTERVALS = ("day", "week", "month", "year")
USAGE_TYPES = ("licensed", "metered")
TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")
MAX_LOOKUP_KEYS_FILTER = 10
MAX_MARKETING_FEATURES = 15
PRODUCT_DATA_PARAMS = frozenset({"id", "name", "active", "metadata", "statement_descriptor"})
HOSTED_INVOICES = "https://invoice.stripe-emulator.invalid/i"
CHECKOUT_PAGES = "https://checkout.stripe-emulator.invalid/c/pay"
PORTAL_PAGES = "https://billing.stripe-emulator.invalid/p/session"
CHECKOUT_SESSION_TTL_SECONDS = 24 * 60 * 60
EPHEMERAL_KEY_TTL_SECONDS = 60 * 60


# --- Parameter parsing: form-encoded values arrive as strings ----------------------------------


def _param_error(param: str, message: str) -> UserError:
    return UserError(400, message, {"param": param})


def _reject_unknown(params: Mapping[str, Any], parent: str | None = None) -> None:
    if params:
        name = next(iter(params))
        if parent is not None:
            name = f"{parent}[{name}]"
        raise _param_error(name, f"Received unknown parameter: {name}")


def _as_bool(param: str, value: Any) -> bool:
    converted = try_convert_to_bool(value)
    if not isinstance(converted, bool):
        raise _param_error(param, f"Invalid boolean: {value}")
    return converted


def _as_int(param: str, value: Any, *, minimum: int) -> int:
    converted = try_convert_to_int(value)
    if isinstance(converted, bool) or not isinstance(converted, int):
        raise _param_error(param, f"Invalid integer: {value}")
    if converted < minimum:
        raise _param_error(param, f"This value must be greater than or equal to {minimum}.")
    return converted


def _as_str(param: str, value: Any, *, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise _param_error(param, f"Invalid string: {value!r}")
    if choices is not None and value not in choices:
        raise _param_error(param, f"Invalid {param}: must be one of {', '.join(choices)}")
    return value


def _as_optional_str(param: str, value: Any) -> str | None:
    """A string parameter that may be unset: absent or `""`."""
    return None if value is None or value == "" else _as_str(param, value)


def _as_metadata(value: Any) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _param_error("metadata", "Invalid metadata: expected a hash of strings")
    return dict(value)


def _merged_metadata(current: Mapping[str, str], update: Any) -> dict[str, str]:
    """Stripe's update semantics: keys merge, an empty value deletes, `""` clears all."""
    if update == "":
        return {}
    merged = {**current, **_as_metadata(update)}
    return {key: value for key, value in merged.items() if value != ""}


def _as_currency(value: Any) -> str:
    currency = _as_str("currency", value).lower()
    if len(currency) != 3 or not currency.isalpha():
        raise _param_error("currency", f"Invalid currency: {value}")
    return currency


def _as_recurring(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _param_error("recurring", "Invalid recurring: expected a hash")
    params = dict(value)
    if "interval" not in params:
        raise _param_error("recurring[interval]", "Missing required param: recurring[interval].")
    recurring = {
        "interval": _as_str("recurring[interval]", params.pop("interval"), choices=INTERVALS),
        "interval_count": _as_int(
            "recurring[interval_count]", params.pop("interval_count", 1), minimum=1
        ),
        "meter": None,
        "trial_period_days": None,
        "usage_type": _as_str(
            "recurring[usage_type]", params.pop("usage_type", "licensed"), choices=USAGE_TYPES
        ),
    }
    _reject_unknown(params, parent="recurring")
    return recurring


def _price_terms(
    currency: Any = None,
    unit_amount: Any = None,
    recurring: Any = None,
    tax_behavior: Any = "unspecified",
    metadata: Any = None,
    **unknown: Any,
) -> dict[str, Any]:
    """Validate the terms shared by `POST /v1/prices` and a product's `default_price_data`."""
    _reject_unknown(unknown)
    for name, value in (("currency", currency), ("unit_amount", unit_amount)):
        if value is None:
            raise _param_error(name, f"Missing required param: {name}.")
    return {
        "currency": _as_currency(currency),
        "unit_amount": _as_int("unit_amount", unit_amount, minimum=0),
        "recurring": None if recurring is None else _as_recurring(recurring),
        "tax_behavior": _as_str("tax_behavior", tax_behavior, choices=TAX_BEHAVIORS),
        "metadata": _as_metadata(metadata),
    }


def _as_marketing_features(value: Any) -> list[dict[str, str]]:
    if value == "":
        return []
    if not isinstance(value, list) or len(value) > MAX_MARKETING_FEATURES:
        raise _param_error(
            "marketing_features",
            f"Invalid marketing_features: expected a list of at most {MAX_MARKETING_FEATURES}",
        )
    features = []
    for index, feature in enumerate(value):
        name = feature.get("name") if isinstance(feature, dict) else None
        if not isinstance(name, str) or not name or set(feature) != {"name"}:
            raise _param_error(
                f"marketing_features[{index}]", "Each marketing feature needs exactly a `name`."
            )
        features.append({"name": name})
    return features


# --- Resources ----------------------------------------------------------------------------------


def _stored_prices() -> list["Price"]:
    return [obj for key, obj in store.items() if key.startswith(Price.object + ":")]


def _lookup_key_holder(lookup_key: str | None, *, transfer: bool) -> "Price | None":
    """The price that holds `lookup_key` and must give it up; refuse if it may not."""
    if lookup_key is None:
        return None
    holder = next((p for p in _stored_prices() if p.lookup_key == lookup_key), None)
    if holder is not None and not transfer:
        raise _param_error(
            "lookup_key",
            f"A price (`{holder.id}`) already uses that lookup key. "
            "Pass `transfer_lookup_key=true` to move it to this price.",
        )
    return holder


class Price(StripeObject):
    """A per-unit Stripe Price. A recurring one is mirrored by a Plan with the same id."""

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
        parsed = _price_terms(**terms)
        lookup_key = _as_optional_str("lookup_key", lookup_key)
        nickname = _as_optional_str("nickname", nickname)
        active = _as_bool("active", active)
        transfer = _as_bool("transfer_lookup_key", transfer_lookup_key)
        previous_holder = _lookup_key_holder(lookup_key, transfer=transfer)
        product_id = self._product_id(product, product_data)

        # Everything is validated: nothing below may fail.
        super().__init__()
        self.active = active
        self.billing_scheme = "per_unit"
        self.currency = parsed["currency"]
        self.custom_unit_amount = None
        self.lookup_key = lookup_key
        self.metadata = parsed["metadata"]
        self.nickname = nickname
        self.product = product_id
        self.recurring = parsed["recurring"]
        self.tax_behavior = parsed["tax_behavior"]
        self.tiers_mode = None
        self.transform_quantity = None
        self.type = "one_time" if self.recurring is None else "recurring"
        self.unit_amount = parsed["unit_amount"]
        self.unit_amount_decimal = str(self.unit_amount)

        if previous_holder is not None:
            previous_holder._give_up_lookup_key()
        if self.recurring is not None:
            Plan(
                id=self.id,
                product=self.product,
                amount=self.unit_amount,
                currency=self.currency,
                interval=self.recurring["interval"],
                interval_count=self.recurring["interval_count"],
                usage_type=self.recurring["usage_type"],
                nickname=self.nickname,
                metadata=dict(self.metadata),
                active=self.active,
            )
        schedule_webhook(Event("price.created", self))

    @staticmethod
    def _product_id(product: Any, product_data: Any) -> str:
        """The id of an existing product, or of one created from `product_data`."""
        if (product is None) == (product_data is None):
            raise _param_error("product", "Pass exactly one of `product` and `product_data`.")
        if product is not None:
            return Product._api_retrieve(_as_str("product", product)).id
        if not isinstance(product_data, dict):
            raise _param_error("product_data", "Invalid product_data: expected a hash")
        _reject_unknown(
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
        **unknown: Any,
    ) -> "Price":
        _reject_unknown(unknown)
        price = cls._api_retrieve(id)
        active = price.active if active is None else _as_bool("active", active)
        metadata = (
            price.metadata if metadata is None else _merged_metadata(price.metadata, metadata)
        )
        nickname = price.nickname if nickname is None else _as_optional_str("nickname", nickname)
        transfer = _as_bool("transfer_lookup_key", transfer_lookup_key)
        if lookup_key is None:
            lookup_key = price.lookup_key
        else:
            lookup_key = _as_optional_str("lookup_key", lookup_key)
        previous_holder = None
        if lookup_key != price.lookup_key:
            previous_holder = _lookup_key_holder(lookup_key, transfer=transfer)

        if previous_holder is not None:
            previous_holder._give_up_lookup_key()
        price.active, price.metadata, price.nickname = active, metadata, nickname
        price.lookup_key = lookup_key
        if price.type == "recurring":
            plan = Plan._api_retrieve(price.id)
            plan.active, plan.metadata, plan.nickname = active, dict(metadata), nickname
        schedule_webhook(Event("price.updated", price))
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

    def _give_up_lookup_key(self) -> None:
        self.lookup_key = None
        schedule_webhook(Event("price.updated", self))


def _price_matchers(filters: dict[str, Any]) -> list[Callable[[Price], bool]]:
    """Predicates for `GET /v1/prices` filters: active, product, type, currency, lookup_keys."""
    matchers: list[Callable[[Price], bool]] = []
    if (active := filters.pop("active", None)) is not None:
        wanted_active = _as_bool("active", active)
        matchers.append(lambda price: price.active == wanted_active)
    if (product := filters.pop("product", None)) is not None:
        wanted_product = _as_str("product", product)
        matchers.append(lambda price: price.product == wanted_product)
    if (price_type := filters.pop("type", None)) is not None:
        wanted_type = _as_str("type", price_type, choices=("one_time", "recurring"))
        matchers.append(lambda price: price.type == wanted_type)
    if (currency := filters.pop("currency", None)) is not None:
        wanted_currency = _as_currency(currency)
        matchers.append(lambda price: price.currency == wanted_currency)
    if (lookup_keys := filters.pop("lookup_keys", None)) is not None:
        if (
            not isinstance(lookup_keys, list)
            or len(lookup_keys) > MAX_LOOKUP_KEYS_FILTER
            or not all(isinstance(key, str) for key in lookup_keys)
        ):
            raise _param_error(
                "lookup_keys", f"Invalid lookup_keys: up to {MAX_LOOKUP_KEYS_FILTER} strings"
            )
        wanted_keys = frozenset(lookup_keys)
        matchers.append(lambda price: price.lookup_key in wanted_keys)
    _reject_unknown(filters)
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
                raise _param_error(
                    "default_price_data", "Invalid default_price_data: expected a hash"
                )
            _price_terms(**default_price_data)
        # Set before Product.__init__, whose product.created event exports them.
        self.marketing_features = features
        self.default_price = None
        self.updated = int(time.time())
        super().__init__(
            active=_as_bool("active", active), shippable=_as_bool("shippable", shippable), **params
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
            price = Price._api_retrieve(_as_str("default_price", default_price))
            if price.product != product.id:
                raise _param_error(
                    "default_price", "The default price must belong to this product."
                )
        metadata = (
            product.metadata if metadata is None else _merged_metadata(product.metadata, metadata)
        )
        for name in ("active", "shippable"):
            if name in params:
                params[name] = _as_bool(name, params[name])

        product._update(**params)  # localstripe's: refuses unknown fields before changing any
        if features is not None:
            product.marketing_features = features
        if default_price is not None:
            product.default_price = default_price
        product.metadata = metadata
        product.updated = int(time.time())
        schedule_webhook(Event("product.updated", product))
        return product


def _items_with_plans(items: Any) -> Any:
    """Subscription `items` with each recurring `price` passed as the `plan` of the same id."""
    if not isinstance(items, list):
        return items
    converted = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and "price" in item:
            param = f"items[{index}][price]"
            if "plan" in item:
                raise _param_error(
                    param, "You may only specify one of these parameters: plan, price."
                )
            price = Price._api_retrieve(_as_str(param, item["price"]))
            if price.type != "recurring":
                raise _param_error(
                    param,
                    "The price specified is set to `type=one_time` but this field only accepts "
                    "prices with `type=recurring`.",
                )
            rest = {key: value for key, value in item.items() if key != "price"}
            item = {**rest, "plan": price.id}
        converted.append(item)
    return converted


# --- Billing: subscriptions, schedules, invoices, intents ----------------------------------------

PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete")
PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")
ENDED_STATUSES = ("canceled", "incomplete_expired")
DAY_SECONDS = 24 * 60 * 60
TIMES = "\N{MULTIPLICATION SIGN}"  # as in the line descriptions Stripe writes


def _stored(object_type: str) -> list[Any]:
    return [obj for key, obj in store.items() if key.startswith(object_type + ":")]


def _subscription(param: str, value: Any) -> "PriceSubscription":
    """The subscription named by parameter `param`, one made with `POST /v1/subscriptions`."""
    subscription = Subscription._api_retrieve(_as_str(param, value))
    if not isinstance(subscription, PriceSubscription):
        raise _param_error(param, "The emulator manages subscriptions of POST /v1/subscriptions.")
    return subscription


def _subscriptions() -> list["PriceSubscription"]:
    return [s for s in _stored(Subscription.object) if isinstance(s, PriceSubscription)]


def _add_interval(start: int, interval: str, count: int) -> int:
    """`count` intervals after the Unix time `start`: months and years by the calendar (in UTC),
    on the same day of the month or the month's last day."""
    if interval in ("day", "week"):
        return start + count * DAY_SECONDS * (7 if interval == "week" else 1)
    moment = datetime.fromtimestamp(start, UTC)
    months = moment.month - 1 + count * (12 if interval == "year" else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def _interval_changes(old: Plan, new: Plan) -> bool:
    return (old.interval, old.interval_count) != (new.interval, new.interval_count)


def _attach(payment_method: PaymentMethod, customer_id: str) -> None:
    """Attach as Stripe does (declining test cards refuse), with the event Stripe sends."""
    PaymentMethod._api_attach(payment_method.id, customer=customer_id)
    schedule_webhook(Event("payment_method.attached", payment_method))


def _customer_payment_method(param: str, value: Any, customer_id: str) -> PaymentMethod:
    """The payment method named by parameter `param`, which must be attached to the customer."""
    payment_method = PaymentMethod._api_retrieve(_as_str(param, value))
    if payment_method.customer != customer_id:
        raise _param_error(
            param,
            f"The customer does not have a payment method with the ID {payment_method.id}. "
            "The payment method must be attached to the customer.",
        )
    return payment_method


def _recurring_plan(param: str, value: Any) -> Plan:
    """The Plan of the recurring price named by parameter `param`."""
    [converted] = _items_with_plans([{"price": value}])
    if not isinstance(converted.get("plan"), str):
        raise _param_error(param, f"Invalid price: {value!r}")
    return Plan._api_retrieve(converted["plan"])


def _new_terms(subscription: "PriceSubscription", items: Any) -> tuple[Plan, int] | None:
    """The plan and quantity that `items` (one entry: the subscription's item, by id, with a new
    price and/or quantity) change the subscription's item to."""
    if items is None:
        return None
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        raise _param_error("items", "The emulator changes exactly one item: items[0][id].")
    params, item = dict(items[0]), subscription.items._list[0]
    if _as_str("items[0][id]", params.pop("id", None)) != item.id:
        raise _param_error("items[0][id]", f"The subscription has no item {items[0].get('id')}.")
    plan = item.plan
    if "price" in params:
        plan = _recurring_plan("items[0][price]", params.pop("price"))
    quantity = _as_int("items[0][quantity]", params.pop("quantity", item.quantity), minimum=1)
    _reject_unknown(params, parent="items[0]")
    if plan.currency != item.plan.currency:
        raise _param_error("items[0][price]", "The price must be in the subscription's currency.")
    return plan, quantity


def _proration_lines(
    subscription: "PriceSubscription", plan: Plan, quantity: int, at: int
) -> list[dict[str, Any]]:
    """Stripe's prorations for changing the item to `quantity` of `plan` at `at`: a credit for
    the unused rest of the period at the old terms and, when the interval stays (otherwise a new
    period starts at `at`), a charge for that rest at the new terms."""
    item = subscription.items._list[0]
    start, end = subscription.current_period_start, subscription.current_period_end
    rest = Fraction(max(0, end - at), end - start)
    day = datetime.fromtimestamp(at, UTC).strftime("%d %b %Y")
    lines = [
        {
            "amount": -round(item.plan.amount * item.quantity * rest),
            "plan": item.plan,
            "quantity": item.quantity,
            "description": f"Unused time on {item.quantity} {TIMES} {item.plan.name} after {day}",
        }
    ]
    if not _interval_changes(item.plan, plan):
        lines.append(
            {
                "amount": round(plan.amount * quantity * rest),
                "plan": plan,
                "quantity": quantity,
                "description": f"Remaining time on {quantity} {TIMES} {plan.name} after {day}",
            }
        )
    return lines


class PriceSubscription(Subscription):
    """localstripe's Subscription with what Stripe's current billing does besides: `items[].price`
    (exported as `items.data[].price`), `payment_behavior=default_incomplete` (the first
    invoice's PaymentIntent, or during a trial a `pending_setup_intent`, waits for the client),
    `payment_settings.save_default_payment_method`, a `default_payment_method` that collects its
    invoices, item changes with prorations (`proration_behavior`), cancellation at the period
    end, schedules, and periods that honour `interval_count` and trials."""

    # Defaults of what this class adds (subscriptions of an older state file lack them).
    default_payment_method: str | None = None
    pending_setup_intent: str | None = None
    schedule: str | None = None
    _default_incomplete = False
    _saves_payment_method = False
    _started = True
    _period_start: int | None = None

    def __init__(
        self,
        payment_behavior: Any = "allow_incomplete",
        payment_settings: Any = None,
        default_payment_method: Any = None,
        **params: Any,
    ) -> None:
        behavior = _as_str("payment_behavior", payment_behavior, choices=PAYMENT_BEHAVIORS)
        if payment_settings is not None and not isinstance(payment_settings, dict):
            raise _param_error("payment_settings", "Invalid payment_settings: expected a hash")
        settings = dict(payment_settings or {})
        saves = _as_str(
            "payment_settings[save_default_payment_method]",
            settings.pop("save_default_payment_method", "off"),
            choices=("on_subscription", "off"),
        )
        _reject_unknown(settings, parent="payment_settings")
        payment_method = None
        if default_payment_method is not None:
            payment_method = _customer_payment_method(
                "default_payment_method", default_payment_method, params.get("customer")
            )
        # Set before Subscription.__init__, which invoices (and collects) the first period.
        self._default_incomplete = behavior == "default_incomplete"
        self._saves_payment_method = saves == "on_subscription"
        self._started = False
        self.default_payment_method = None if payment_method is None else payment_method.id
        super().__init__(payment_behavior="allow_incomplete", **params)
        self._started = True

    @classmethod
    def _api_create(cls, items: Any = None, **params: Any) -> Subscription:
        subscription = super()._api_create(items=_items_with_plans(items), **params)
        if subscription.trial_period_days is not None or subscription.trial_end is not None:
            # localstripe leaves trials `incomplete`; Stripe starts them `trialing` at once. The
            # created event already went out, so the change follows as an update, as Stripe's
            # own later changes do.
            now = int(time.time())
            days = subscription.trial_period_days
            subscription.trial_start = now
            subscription.trial_end = subscription.trial_end or now + int(days) * DAY_SECONDS
            subscription.status = "trialing"
            if subscription._default_incomplete:
                # Nothing is due now: the client saves a card for the trial's end with this.
                subscription.pending_setup_intent = SetupIntent(customer=subscription.customer).id
                subscription._default_incomplete = False
            schedule_webhook(Event("customer.subscription.updated", subscription))
        return subscription

    @classmethod
    def _api_update(
        cls,
        id: str,
        items: Any = None,
        proration_behavior: Any = None,
        default_payment_method: Any = None,
        cancel_at_period_end: Any = None,
        cancel_at: Any = None,
        **params: Any,
    ) -> Subscription:
        subscription = cls._api_retrieve(id)
        if subscription.status in ENDED_STATUSES:
            raise UserError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        behavior = _as_str(
            "proration_behavior",
            proration_behavior or "create_prorations",
            choices=PRORATION_BEHAVIORS,
        )
        terms = _new_terms(subscription, items)
        if terms is not None and subscription.status == "incomplete":
            raise UserError(400, "The items of an incomplete subscription cannot change.")
        payment_method = None
        if default_payment_method not in (None, ""):
            payment_method = _customer_payment_method(
                "default_payment_method", default_payment_method, subscription.customer
            )
        if (cancel_at_period_end, cancel_at) != (None, None) and subscription.schedule:
            raise UserError(
                400,
                "The subscription is managed by the subscription schedule "
                f"`{subscription.schedule}`, and updating any cancelation behavior directly is "
                "not allowed. Please update the schedule instead.",
            )
        at_period_end = (
            None
            if cancel_at_period_end is None
            else _as_bool("cancel_at_period_end", cancel_at_period_end)
        )
        cancel_time = (
            None if cancel_at in (None, "") else _as_int("cancel_at", cancel_at, minimum=1)
        )
        if params:  # localstripe's own (metadata, trial_end, …) refuse what they do not know
            super()._api_update(id, **params)

        if default_payment_method is not None:
            subscription.default_payment_method = (
                None if payment_method is None else payment_method.id
            )
        if at_period_end is not None:
            end = subscription.current_period_end if at_period_end else None
            subscription._cancel_at(end, at_period_end=at_period_end)
        elif cancel_at is not None:
            subscription._cancel_at(cancel_time, at_period_end=False)
        if terms is not None:
            subscription._change_terms(*terms, behavior=behavior)
        schedule_webhook(Event("customer.subscription.updated", subscription))
        return subscription

    @property
    def current_period_start(self) -> int:
        if self.status == "trialing" and self.trial_start is not None:
            return self.trial_start
        return self._period_start or self.start_date

    @property
    def current_period_end(self) -> int:
        if self.status == "trialing" and self.trial_end is not None:
            return self.trial_end
        return _add_interval(
            self.current_period_start, self.plan.interval, self.plan.interval_count
        )

    def _cancel_at(self, when: int | None, *, at_period_end: bool) -> None:
        self.cancel_at_period_end, self.cancel_at = at_period_end, when
        self.canceled_at = None if when is None else int(time.time())

    def _change_terms(self, plan: Plan, quantity: int, *, behavior: str) -> None:
        """Change the item in place (same id), prorating as `behavior` says; an interval change
        starts a new period now, invoiced at once."""
        item = self.items._list[0]
        if (plan.id, quantity) == (item.plan.id, item.quantity):
            return
        now, end = int(time.time()), self.current_period_end
        charged = self.status != "trialing"  # nothing is prorated during a trial
        if charged and behavior != "none":
            for line in _proration_lines(self, plan, quantity, now):
                InvoiceItem(
                    amount=line["amount"],
                    currency=plan.currency,
                    customer=self.customer,
                    subscription=self.id,
                    plan=line["plan"].id,
                    proration=True,
                    description=line["description"],
                    period_start=now,
                    period_end=end,
                )
        new_period = charged and _interval_changes(item.plan, plan)
        item.plan, item.quantity, self.quantity = plan, quantity, quantity
        if new_period:
            self._period_start = now
            self._create_invoice()
        elif charged and behavior == "always_invoice":
            self._collect(Invoice(customer=self.customer, subscription=self.id, items=[]))

    def _payment_method(self) -> Any:
        """What pays this subscription's invoices: its own default, else its customer's."""
        if self.default_payment_method is not None:
            return PaymentMethod._api_retrieve(self.default_payment_method)
        return Customer._api_retrieve(self.customer)._get_default_payment_method_or_source()

    def _create_invoice(self) -> None:
        """Invoice the current period (and pending invoice items), then collect it."""
        self._collect(
            Invoice(
                customer=self.customer,
                subscription=self.id,
                items=list(self.items._list),
                date=self.current_period_start,
            )
        )

    def _collect(self, invoice: Invoice) -> None:
        """Finalize `invoice` and charge it to the payment method; with `default_incomplete`,
        the first invoice's PaymentIntent waits for the client to confirm it instead."""
        invoice._finalize()
        schedule_webhook(Event("invoice.finalized", invoice))
        if invoice.status == "paid":  # nothing due
            invoice._on_payment_success()
            return
        intent = PaymentIntent(
            amount=invoice.total, currency=invoice.currency, customer=self.customer
        )
        intent.invoice, invoice.payment_intent = invoice.id, intent.id
        if self._default_incomplete:
            self._default_incomplete = False
            return
        payment_method = self._payment_method()
        if payment_method is not None:
            intent.payment_method = payment_method.id
            intent._confirm(on_failure_now=lambda: None)
        if invoice.status != "paid":
            schedule_webhook(Event("invoice.payment_failed", invoice))
            if self.status in ("active", "trialing"):
                self.status = "past_due"

    def _on_initial_payment_success(self, invoice: Invoice) -> None:
        """localstripe's hook, called for every paid invoice of the subscription."""
        changed = self.status in ("incomplete", "past_due", "unpaid")
        if changed:
            self.status = "active"
        intent = invoice.payment_intent and PaymentIntent._api_retrieve(invoice.payment_intent)
        if self._saves_payment_method and intent and intent.payment_method:
            payment_method = PaymentMethod._api_retrieve(intent.payment_method)
            if payment_method.customer is None:
                _attach(payment_method, self.customer)
            changed = changed or self.default_payment_method != payment_method.id
            self.default_payment_method = payment_method.id
        if changed and self._started:
            schedule_webhook(Event("customer.subscription.updated", self))

    def _on_setup_intent_succeeded(self, intent: SetupIntent) -> None:
        """The trial's pending SetupIntent saved a card: it pays from the trial's end."""
        self.pending_setup_intent = None
        if self._saves_payment_method or self.default_payment_method is None:
            self.default_payment_method = intent.payment_method
        schedule_webhook(Event("customer.subscription.updated", self))

    def _end_period(self) -> "PriceSubscription":
        """The current period (or trial) ends now, as a test clock would make it: a planned
        cancellation happens; otherwise the schedule's next phase starts, and the new period is
        invoiced and charged (past_due when the charge fails)."""
        if self.status in (*ENDED_STATUSES, "incomplete"):
            raise UserError(400, f"The subscription is {self.status}: it has no period to end.")
        end = self.current_period_end
        if self.cancel_at is not None and self.cancel_at <= end:
            self.status, self.ended_at = "canceled", self.cancel_at
            schedule_webhook(Event("customer.subscription.deleted", self))
            return self
        self._period_start = end
        if self.status == "trialing":
            self.status = "active"
        if self.schedule is not None:
            SubscriptionSchedule._api_retrieve(self.schedule)._period_ended(self, end)
        self._create_invoice()
        schedule_webhook(Event("customer.subscription.updated", self))
        return self

    def _export(self, expand: Any = None) -> dict[str, Any]:
        exported = super()._export(expand=expand)
        for item in exported["items"]["data"]:
            price = store.get(Price.object + ":" + item["plan"]["id"])
            item["price"] = None if price is None else price._export()
            # Since API version 2025-03-31 the period lives on the items.
            item["current_period_start"] = exported["current_period_start"]
            item["current_period_end"] = exported["current_period_end"]
        saves = "on_subscription" if self._saves_payment_method else "off"
        exported["payment_settings"] = {"save_default_payment_method": saves}
        return exported


def _cancel_subscription(id: str, **params: Any) -> Subscription:
    """`DELETE /v1/subscriptions/{id}`: canceled now, its schedule with it."""
    ignored = ("invoice_now", "prorate", "cancellation_details")
    _reject_unknown({k: v for k, v in params.items() if k not in ignored})
    subscription = _subscription("id", id)
    if subscription.status in ENDED_STATUSES:
        raise UserError(400, f"The subscription is already {subscription.status}.")
    if subscription.schedule is not None:
        SubscriptionSchedule._api_retrieve(subscription.schedule)._cancel()
    subscription.canceled_at = int(time.time())
    return Subscription._api_delete(id)


def _end_subscription_period(id: str, **unknown: Any) -> Subscription:
    """`POST /_testing/subscriptions/{id}/end_period` (emulator only)."""
    _reject_unknown(unknown)
    return _subscription("id", id)._end_period()


def _phase(
    price_id: str,
    quantity: int,
    start: int,
    end: int,
    proration_behavior: str = "create_prorations",
    metadata: dict[str, str] | None = None,
    trial_end: int | None = None,
) -> dict[str, Any]:
    return {
        "start_date": start,
        "end_date": end,
        "items": [{"price": price_id, "plan": price_id, "quantity": quantity, "metadata": {}}],
        "proration_behavior": proration_behavior,
        "metadata": metadata or {},
        "trial_end": trial_end,
    }


def _phase_end(param: str, params: dict[str, Any], start: int, price: Price) -> int:
    """A phase's end: `end_date`, or `duration` after `start`, or one interval of its price."""
    end_date, duration = params.pop("end_date", None), params.pop("duration", None)
    if end_date is not None and duration is not None:
        raise _param_error(param, "Set at most one of end_date and duration.")
    if end_date is not None:
        return _as_int(f"{param}[end_date]", end_date, minimum=start + 1)
    if duration is None:
        return _add_interval(start, price.recurring["interval"], price.recurring["interval_count"])
    if not isinstance(duration, dict):
        raise _param_error(f"{param}[duration]", "Invalid duration: expected a hash")
    duration = dict(duration)
    interval = _as_str(
        f"{param}[duration][interval]", duration.pop("interval", None), choices=INTERVALS
    )
    count = _as_int(
        f"{param}[duration][interval_count]", duration.pop("interval_count", 1), minimum=1
    )
    _reject_unknown(duration, parent=f"{param}[duration]")
    return _add_interval(start, interval, count)


class SubscriptionSchedule(StripeObject):
    """A subscription schedule made `from_subscription`: phases of one item each, entered as the
    subscription's periods end (`PriceSubscription._end_period`), released after the last one.
    The current phase stays as it is (`end_behavior=release` only)."""

    object = "subscription_schedule"
    _id_prefix = "sub_sched_"

    def __init__(self, from_subscription: Any = None, metadata: Any = None, **unknown: Any) -> None:
        _reject_unknown(unknown)
        if from_subscription is None:
            raise _param_error(
                "from_subscription", "The emulator creates schedules from_subscription only."
            )
        subscription = _subscription("from_subscription", from_subscription)
        if subscription.schedule is not None:
            raise _param_error(
                "from_subscription",
                f"The subscription is already attached to the schedule {subscription.schedule}.",
            )
        if subscription.status in ENDED_STATUSES or subscription.cancel_at is not None:
            raise _param_error(
                "from_subscription",
                "You cannot migrate a subscription that is canceled or set to cancel.",
            )
        metadata = _as_metadata(metadata)

        super().__init__()
        item = subscription.items._list[0]
        self.customer = subscription.customer
        self.subscription = subscription.id
        self.status = "active"
        self.end_behavior = "release"
        self.metadata = metadata
        trial_end = subscription.trial_end if subscription.status == "trialing" else None
        self.phases = [
            _phase(
                item.plan.id,
                item.quantity,
                subscription.current_period_start,
                subscription.current_period_end,
                trial_end=trial_end,
            )
        ]
        self.canceled_at = self.completed_at = self.released_at = None
        self.released_subscription = None
        self.test_clock = None
        self._current = 0
        subscription.schedule = self.id
        schedule_webhook(Event("subscription_schedule.created", self))

    @property
    def current_phase(self) -> dict[str, int] | None:
        if self.status != "active":
            return None
        phase = self.phases[self._current]
        return {"start_date": phase["start_date"], "end_date": phase["end_date"]}

    @classmethod
    def _api_update(
        cls,
        id: str,
        phases: Any = None,
        end_behavior: Any = None,
        proration_behavior: Any = None,
        metadata: Any = None,
        **unknown: Any,
    ) -> "SubscriptionSchedule":
        _reject_unknown(unknown)
        schedule = cls._api_retrieve(id)
        if schedule.status not in ("not_started", "active"):
            raise UserError(
                400, f"You cannot update a subscription schedule that is {schedule.status}."
            )
        if end_behavior is not None:
            _as_str("end_behavior", end_behavior, choices=("release",))
        if proration_behavior is not None:
            _as_str("proration_behavior", proration_behavior, choices=PRORATION_BEHAVIORS)
        parsed = schedule.phases if phases is None else schedule._parsed_phases(phases)
        merged = (
            schedule.metadata if metadata is None else _merged_metadata(schedule.metadata, metadata)
        )

        schedule.phases, schedule.metadata, schedule._current = parsed, merged, 0
        schedule_webhook(Event("subscription_schedule.updated", schedule))
        return schedule

    def _parsed_phases(self, phases: Any) -> list[dict[str, Any]]:
        """New phases from the current one on; the current one must be given unchanged."""
        if not isinstance(phases, list) or not phases:
            raise _param_error("phases", "Invalid phases: expected a non-empty list")
        current = self.phases[self._current]
        parsed: list[dict[str, Any]] = []
        start = current["start_date"]
        for index, value in enumerate(phases):
            param = f"phases[{index}]"
            if not isinstance(value, dict):
                raise _param_error(param, "Invalid phase: expected a hash")
            params = dict(value)
            items = params.pop("items", None)
            if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
                raise _param_error(f"{param}[items]", "The emulator supports one item per phase.")
            item = dict(items[0])
            plan = _recurring_plan(f"{param}[items][0][price]", item.pop("price", None))
            quantity = _as_int(f"{param}[items][0][quantity]", item.pop("quantity", 1), minimum=1)
            _reject_unknown(item, parent=f"{param}[items][0]")
            if "start_date" in params or index == 0:
                given = _as_int(f"{param}[start_date]", params.pop("start_date", None), minimum=1)
                if given != start:
                    raise _param_error(
                        f"{param}[start_date]", "Each phase starts as the previous ends."
                    )
            end = _phase_end(param, params, start, Price._api_retrieve(plan.id))
            trial_end = params.pop("trial_end", None)
            if trial_end is not None:
                trial_end = _as_int(f"{param}[trial_end]", trial_end, minimum=start + 1)
                if trial_end > end:
                    raise _param_error(
                        f"{param}[trial_end]", "The trial must end within the phase."
                    )
            proration = _as_str(
                f"{param}[proration_behavior]",
                params.pop("proration_behavior", "create_prorations"),
                choices=PRORATION_BEHAVIORS,
            )
            phase_metadata = _as_metadata(params.pop("metadata", None))
            _reject_unknown(params, parent=param)
            parsed.append(
                _phase(plan.id, quantity, start, end, proration, phase_metadata, trial_end)
            )
            start = end
        first = parsed[0]
        if (first["end_date"], first["items"][0]["price"], first["items"][0]["quantity"]) != (
            current["end_date"],
            current["items"][0]["price"],
            current["items"][0]["quantity"],
        ):
            raise _param_error("phases[0]", "The emulator keeps the current phase as it is.")
        return parsed

    @classmethod
    def _api_release(cls, id: str, **params: Any) -> "SubscriptionSchedule":
        _reject_unknown({k: v for k, v in params.items() if k != "preserve_cancel_date"})
        schedule = cls._api_retrieve(id)
        if schedule.status not in ("not_started", "active"):
            raise UserError(
                400, f"You cannot release a subscription schedule that is {schedule.status}."
            )
        schedule._release()
        return schedule

    def _release(self) -> None:
        Subscription._api_retrieve(self.subscription).schedule = None
        self.status, self.released_at = "released", int(time.time())
        self.released_subscription, self.subscription = self.subscription, None
        schedule_webhook(Event("subscription_schedule.released", self))

    def _cancel(self) -> None:
        Subscription._api_retrieve(self.subscription).schedule = None
        self.status, self.canceled_at = "canceled", int(time.time())
        schedule_webhook(Event("subscription_schedule.canceled", self))

    def _period_ended(self, subscription: PriceSubscription, at: int) -> None:
        """The subscription's period ended at `at`: the phase starting then begins (its item
        replaces the subscription's), or after the last phase the schedule releases it."""
        following = next((i for i, p in enumerate(self.phases) if p["start_date"] == at), None)
        if following is not None:
            self._current = following
            phase_item = self.phases[following]["items"][0]
            item = subscription.items._list[0]
            item.plan = Plan._api_retrieve(phase_item["price"])
            item.quantity = subscription.quantity = phase_item["quantity"]
            schedule_webhook(Event("subscription_schedule.updated", self))
        elif self.phases[-1]["end_date"] <= at:
            self._release()


def _extend_invoices() -> None:
    """Add Stripe's invoice fields that localstripe lacks, on its classes: its subscriptions and
    payment intents use them by those names. A draft has no number and no links yet; a line's
    `parent` (API 2025-03-31) says what it bills and whether it is a proration."""

    def finalized(field: Callable[[Any], Any]) -> property:
        return property(lambda invoice: None if invoice._draft else field(invoice))

    def confirmation_secret(invoice: Any) -> dict[str, str] | None:
        if invoice.payment_intent is None:
            return None
        intent = PaymentIntent._api_retrieve(invoice.payment_intent)
        return {"client_secret": intent.client_secret, "type": "payment_intent"}

    def line_parent(line: Any) -> dict[str, Any]:
        details = {
            "proration": line.proration,
            "proration_details": {"credited_items": None},
            "subscription": line.subscription,
            "invoice_item": getattr(line, "invoice_item", None),
        }
        if line.subscription is None:
            return {"type": "invoice_item_details", "invoice_item_details": details}
        details["subscription_item"] = getattr(line, "subscription_item", None)
        return {"type": "subscription_item_details", "subscription_item_details": details}

    paid = Invoice._on_payment_success

    def on_payment_success(invoice: Any) -> None:
        schedule_webhook(Event("invoice.paid", invoice))
        paid(invoice)

    Invoice.amount_remaining = property(lambda invoice: invoice.amount_due - invoice.amount_paid)
    Invoice.number = finalized(lambda invoice: invoice.id.removeprefix("in_")[:8].upper() + "-0001")
    Invoice.hosted_invoice_url = finalized(lambda invoice: f"{HOSTED_INVOICES}/{invoice.id}")
    Invoice.invoice_pdf = finalized(lambda invoice: f"{HOSTED_INVOICES}/{invoice.id}/pdf")
    Invoice.confirmation_secret = finalized(confirmation_secret)
    Invoice._on_payment_success = on_payment_success
    InvoiceLineItem.parent = property(line_parent)


def _preview_line(
    subscription: PriceSubscription,
    *,
    amount: int,
    description: str,
    plan: Plan,
    quantity: int,
    proration: bool,
    period: tuple[int, int],
) -> dict[str, Any]:
    return {
        "id": "il_tmp_" + random_id(14),
        "object": "line_item",
        "amount": amount,
        "subtotal": amount,
        "currency": plan.currency,
        "description": description,
        "livemode": False,
        "metadata": {},
        "quantity": quantity,
        "period": {"start": period[0], "end": period[1]},
        "parent": {
            "type": "subscription_item_details",
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription.id,
                "subscription_item": subscription.items._list[0].id,
            },
        },
        "pricing": {
            "type": "price_details",
            "price_details": {"price": plan.id, "product": plan.product},
            "unit_amount_decimal": str(plan.amount),
        },
    }


def _preview_invoice(
    customer: Any = None,
    subscription: Any = None,
    subscription_details: Any = None,
    **unknown: Any,
) -> dict[str, Any]:
    """`POST /v1/invoices/create_preview` for a change of a subscription's item: the invoice it
    leads to, stored nowhere. With `always_invoice`, the prorations billed now; otherwise the
    next invoice: prorations (unless `none`) and the next period at the new terms. An interval
    change bills the prorations and a new period now."""
    _reject_unknown(unknown)
    found = _subscription("subscription", subscription)
    if found.customer != _as_str("customer", customer):
        raise _param_error("customer", "The subscription belongs to another customer.")
    if subscription_details is not None and not isinstance(subscription_details, dict):
        raise _param_error("subscription_details", "Invalid subscription_details: expected a hash")
    details = dict(subscription_details or {})
    item = found.items._list[0]
    plan, quantity = _new_terms(found, details.pop("items", None)) or (item.plan, item.quantity)
    behavior = _as_str(
        "subscription_details[proration_behavior]",
        details.pop("proration_behavior", "create_prorations"),
        choices=PRORATION_BEHAVIORS,
    )
    now = int(time.time())
    at = _as_int(
        "subscription_details[proration_date]", details.pop("proration_date", now), minimum=1
    )
    _reject_unknown(details, parent="subscription_details")

    changed = (plan.id, quantity) != (item.plan.id, item.quantity)
    charged = changed and found.status != "trialing"
    lines = []
    if charged and behavior != "none":
        lines += [
            _preview_line(
                found,
                amount=line["amount"],
                description=line["description"],
                plan=line["plan"],
                quantity=line["quantity"],
                proration=True,
                period=(at, found.current_period_end),
            )
            for line in _proration_lines(found, plan, quantity, at)
        ]
    if charged and _interval_changes(item.plan, plan):
        start: int | None = at
    elif behavior == "always_invoice" and charged:
        start = None
    else:
        start = found.current_period_end
    if start is not None:
        end = _add_interval(start, plan.interval, plan.interval_count)
        lines.append(
            _preview_line(
                found,
                amount=plan.amount * quantity,
                description=f"{quantity} {TIMES} {plan.name}",
                plan=plan,
                quantity=quantity,
                proration=False,
                period=(start, end),
            )
        )
    total = sum(line["amount"] for line in lines)
    return {
        "id": "upcoming_in_" + random_id(14),
        "object": "invoice",
        "livemode": False,
        "created": now,
        "customer": found.customer,
        "currency": plan.currency,
        "status": "draft",
        "amount_due": max(0, total),
        "amount_paid": 0,
        "amount_remaining": max(0, total),
        "subtotal": total,
        "total": total,
        "period_start": min(line["period"]["start"] for line in lines),
        "period_end": max(line["period"]["end"] for line in lines),
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": found.id, "metadata": dict(found.metadata)},
        },
        "lines": {"object": "list", "data": lines, "has_more": False, "url": "/v1/invoices/lines"},
    }


def _confirm_payment_intent(id: str, payment_method: Any = None, **params: Any) -> PaymentIntent:
    """`POST /v1/payment_intents/{id}/confirm`, also with the `payment_method` to pay with (such
    as `pm_card_visa`), as PaymentSheet confirms."""
    if payment_method is not None:
        intent = PaymentIntent._api_retrieve(id)
        if intent.status not in ("requires_payment_method", "requires_confirmation"):
            raise UserError(400, f"This PaymentIntent's status is {intent.status}.")
        intent.payment_method = PaymentMethod._api_retrieve(
            _as_str("payment_method", payment_method)
        ).id
    return PaymentIntent._api_confirm(id, **params)


def _confirm_setup_intent(id: str, **params: Any) -> SetupIntent:
    """`POST /v1/setup_intents/{id}/confirm`; once it succeeds, its payment method is attached to
    its customer, and a subscription waiting for it (`pending_setup_intent`) uses it."""
    intent = SetupIntent._api_confirm(id, **params)
    if intent.status == "succeeded":
        if intent.customer is not None:
            _attach(PaymentMethod._api_retrieve(intent.payment_method), intent.customer)
        schedule_webhook(Event("setup_intent.succeeded", intent))
        for subscription in _subscriptions():
            if subscription.pending_setup_intent == intent.id:
                subscription._on_setup_intent_succeeded(intent)
    return intent


# --- Customers' payment methods -------------------------------------------------------------------


def _update_customer(id: str, invoice_settings: Any = None, **params: Any) -> Customer:
    """`POST /v1/customers/{id}`: the default payment method must be attached to the customer."""
    if isinstance(invoice_settings, dict) and invoice_settings.get("default_payment_method"):
        _customer_payment_method(
            "invoice_settings[default_payment_method]",
            invoice_settings["default_payment_method"],
            Customer._api_retrieve(id).id,
        )
    if invoice_settings is not None:
        params["invoice_settings"] = invoice_settings
    return Customer._api_update(id, **params)


def _attach_payment_method(id: str, customer: Any = None, **unknown: Any) -> PaymentMethod:
    """`POST /v1/payment_methods/{id}/attach`, with the `payment_method.attached` event."""
    _reject_unknown(unknown)
    payment_method = PaymentMethod._api_retrieve(id)
    _attach(payment_method, _as_str("customer", customer))
    return payment_method


def _detach_payment_method(id: str, **unknown: Any) -> PaymentMethod:
    """`POST /v1/payment_methods/{id}/detach`: no longer any default, and the event."""
    _reject_unknown(unknown)
    payment_method = PaymentMethod._api_retrieve(id)
    if payment_method.customer is None:
        raise UserError(400, f"The payment method {id} is not attached to a customer.")
    customer = Customer._api_retrieve(payment_method.customer)
    if customer.invoice_settings.get("default_payment_method") == id:
        customer.invoice_settings["default_payment_method"] = None
    for subscription in _subscriptions():
        if subscription.default_payment_method == id:
            subscription.default_payment_method = None
    PaymentMethod._api_detach(id)
    schedule_webhook(Event("payment_method.detached", payment_method))
    return payment_method


def _customer_payment_methods(
    id: str, type: Any = None, limit: Any = None, starting_after: Any = None, **unknown: Any
) -> List:
    """`GET /v1/customers/{id}/payment_methods`, of any or one `type`."""
    _reject_unknown(unknown)
    Customer._api_retrieve(id)
    page = List(f"/v1/customers/{id}/payment_methods", limit=limit, starting_after=starting_after)
    page._list = [
        pm
        for pm in _stored(PaymentMethod.object)
        if pm.customer == id and (type is None or pm.type == type)
    ]
    return page


# --- Checkout, the Billing Portal, ephemeral keys ---------------------------------------------------


class CheckoutSession(StripeObject):
    """A subscription-mode Checkout Session for an existing customer. The emulator hosts no
    payment page: a test completes a session with `POST /_testing/checkout/sessions/{id}/complete`
    (optionally `payment_method=pm_card_…`), which creates the subscription and sends
    `checkout.session.completed`, as paying on Stripe's page does."""

    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(
        self,
        mode: Any = None,
        customer: Any = None,
        line_items: Any = None,
        success_url: Any = None,
        cancel_url: Any = None,
        client_reference_id: Any = None,
        metadata: Any = None,
        allow_promotion_codes: Any = None,
        subscription_data: Any = None,
        **unknown: Any,
    ) -> None:
        _reject_unknown(unknown)
        _as_str("mode", mode, choices=("subscription",))
        customer_id = Customer._api_retrieve(_as_str("customer", customer)).id
        if not isinstance(line_items, list) or len(line_items) != 1:
            raise _param_error("line_items", "The emulator takes exactly one line item.")
        item = dict(line_items[0]) if isinstance(line_items[0], dict) else {}
        plan = _recurring_plan("line_items[0][price]", item.pop("price", None))
        quantity = _as_int("line_items[0][quantity]", item.pop("quantity", 1), minimum=1)
        _reject_unknown(item, parent="line_items[0]")
        success_url = _as_str("success_url", success_url)
        cancel_url = _as_optional_str("cancel_url", cancel_url)
        reference = _as_optional_str("client_reference_id", client_reference_id)
        metadata = _as_metadata(metadata)
        promotion_codes = (
            None
            if allow_promotion_codes is None
            else _as_bool("allow_promotion_codes", allow_promotion_codes)
        )
        if subscription_data is not None and not isinstance(subscription_data, dict):
            raise _param_error("subscription_data", "Invalid subscription_data: expected a hash")
        data = dict(subscription_data or {})
        trial_days = data.pop("trial_period_days", None)
        if trial_days is not None:
            trial_days = _as_int("subscription_data[trial_period_days]", trial_days, minimum=1)
        subscription_metadata = _as_metadata(data.pop("metadata", None))
        _reject_unknown(data, parent="subscription_data")

        super().__init__()
        self.mode = "subscription"
        self.customer = customer_id
        self.client_reference_id = reference
        self.metadata = metadata
        self.allow_promotion_codes = promotion_codes
        self.success_url = success_url
        self.cancel_url = cancel_url
        self.currency = plan.currency
        self.amount_subtotal = self.amount_total = plan.amount * quantity
        self.status = "open"
        self.payment_status = "unpaid"
        self.subscription = None
        self.expires_at = self.created + CHECKOUT_SESSION_TTL_SECONDS
        self.url = f"{CHECKOUT_PAGES}/{self.id}"
        self._plan_id, self._quantity = plan.id, quantity
        self._trial_days, self._subscription_metadata = trial_days, subscription_metadata

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        customer: Any = None,
        status: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **unknown: Any,
    ) -> Any:
        _reject_unknown(unknown)
        if status is not None:
            _as_str("status", status, choices=("open", "complete", "expired"))
        page = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        page._list = [
            session
            for session in reversed(page._list)  # newest first, as Stripe lists
            if customer in (None, session.customer) and status in (None, session.status)
        ]
        return page

    @classmethod
    def _api_expire(cls, id: str, **unknown: Any) -> "CheckoutSession":
        _reject_unknown(unknown)
        session = cls._api_retrieve(id)
        if session.status != "open":
            raise UserError(
                400, f"Only open Checkout Sessions can be expired; this one is {session.status}."
            )
        session.status = "expired"
        schedule_webhook(Event("checkout.session.expired", session))
        return session

    @classmethod
    def _api_complete(
        cls, id: str, payment_method: Any = "pm_card_visa", **unknown: Any
    ) -> "CheckoutSession":
        """Pay on the (absent) hosted page: attach the card, start the subscription."""
        _reject_unknown(unknown)
        session = cls._api_retrieve(id)
        if session.status != "open":
            raise UserError(400, f"This Checkout Session is {session.status}.")
        card = PaymentMethod._api_retrieve(_as_str("payment_method", payment_method))
        if card._attaching_is_declined() or card._charging_is_declined():
            raise UserError(402, "Your card was declined.", {"code": "card_declined"})
        _attach(card, session.customer)
        trial = {} if session._trial_days is None else {"trial_period_days": session._trial_days}
        subscription = PriceSubscription._api_create(
            customer=session.customer,
            items=[{"price": session._plan_id, "quantity": session._quantity}],
            default_payment_method=card.id,
            metadata=dict(session._subscription_metadata),
            **trial,
        )
        session.subscription = subscription.id
        session.status = "complete"
        session.payment_status = "no_payment_required" if trial else "paid"
        schedule_webhook(Event("checkout.session.completed", session))
        return session


class BillingPortalSession(StripeObject):
    """A Billing Portal session (the emulator hosts no portal page)."""

    object = "billing_portal.session"
    _id_prefix = "bps_"

    def __init__(self, customer: Any = None, return_url: Any = None, **unknown: Any) -> None:
        _reject_unknown(unknown)
        customer_id = Customer._api_retrieve(_as_str("customer", customer)).id
        return_url = _as_optional_str("return_url", return_url)

        super().__init__()
        self.customer = customer_id
        self.return_url = return_url
        self.url = f"{PORTAL_PAGES}/{self.id}"
        self.configuration = "bpc_emulator"
        self.flow = self.locale = self.on_behalf_of = None


class EphemeralKey(StripeObject):
    """An ephemeral key for a mobile SDK, made for the API version in its `Stripe-Version`
    header (`GET /_testing/ephemeral_keys/{secret}` tells which, for tests)."""

    object = "ephemeral_key"
    _id_prefix = "ephkey_"

    def __init__(self, stripe_version: str, customer: Any = None, **unknown: Any) -> None:
        _reject_unknown(unknown)
        customer_id = Customer._api_retrieve(_as_str("customer", customer)).id

        super().__init__()
        self.associated_objects = [{"id": customer_id, "type": "customer"}]
        self.expires = self.created + EPHEMERAL_KEY_TTL_SECONDS
        self.secret = "ek_test_" + random_id(32)
        self._stripe_version = stripe_version


async def _create_ephemeral_key(request: web.Request) -> web.StreamResponse:
    version = request.headers.get("Stripe-Version")
    if not version:
        raise UserError(400, "Stripe-Version header is required to create an ephemeral key.")
    params = await localstripe_server.get_post_data(request) or {}
    return localstripe_server.json_response(EphemeralKey(version, **params)._export())


async def _ephemeral_key_version(request: web.Request) -> web.StreamResponse:
    secret = request.match_info["secret"]
    key = next((k for k in _stored(EphemeralKey.object) if k.secret == secret), None)
    if key is None:
        raise UserError(404, "No such ephemeral key.")
    return web.json_response({"id": key.id, "stripe_version": key._stripe_version})


def _dict_handler(func: Callable[..., dict[str, Any]]) -> Handler:
    """An aiohttp handler answering `func(**parameters)`, a plain JSON object."""

    async def handler(request: web.Request) -> web.StreamResponse:
        params = await localstripe_server.get_post_data(request) or {}
        params.pop("expand", None)
        return localstripe_server.json_response(func(**params))

    return handler


# --- Idempotency ---------------------------------------------------------------------------------


def _error_response(
    status: int, error: dict[str, str], headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error}, status=status, headers=headers)


def _was_executed(status: int) -> bool:
    """Whether Stripe would save this outcome: all but requests refused before running."""
    return not 400 <= status < 500 or status == 402


@dataclass(frozen=True)
class _Outcome:
    """The saved response to the first request made with one idempotency key."""

    fingerprint: str
    status: int
    body: bytes
    content_type: str
    saved_at: float

    def replay(self, key: str) -> web.Response:
        return web.Response(
            status=self.status,
            body=self.body,
            headers={
                hdrs.CONTENT_TYPE: self.content_type,
                "Idempotency-Key": key,
                "Idempotent-Replayed": "true",
            },
        )


async def _fingerprint(request: web.Request) -> str:
    """Method, path and parameters of a request, as compared by Stripe's idempotency layer."""
    params = await localstripe_server.get_post_data(request) or {}
    canonical = json.dumps(
        [request.method, request.path, request.query_string, params], sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyLayer:
    """Stripe's idempotency keys for POST requests, as an aiohttp middleware.

    The first response to a key is saved (unless the request was refused before running) and
    replayed, with `Idempotent-Replayed: true`, for repeats with the same parameters. A repeat
    with other parameters gets a 400 and one made while the first still runs a 409, both of
    type `idempotency_error`. Keys are forgotten after 24 hours, the oldest sooner when more
    than `max_keys` are kept.
    """

    def __init__(
        self, ttl_seconds: float = IDEMPOTENCY_TTL_SECONDS, max_keys: int = IDEMPOTENCY_MAX_KEYS
    ) -> None:
        self._ttl_seconds = ttl_seconds
        self._max_keys = max_keys
        self._outcomes: dict[str, _Outcome] = {}
        self._in_flight: set[str] = set()

    def snapshot(self) -> dict[str, _Outcome]:
        return dict(self._outcomes)

    def restore(self, outcomes: Mapping[str, _Outcome]) -> None:
        self._outcomes = dict(outcomes)

    def clear(self) -> None:
        self._outcomes.clear()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        if key in self._in_flight:
            return _error_response(
                409,
                {
                    "type": "idempotency_error",
                    "code": "idempotency_key_in_use",
                    "message": "There is currently another in-progress request using this "
                    f"idempotency key: {key}. Try again later.",
                },
            )
        self._in_flight.add(key)
        try:
            return await self._handle(key, request, handler)
        finally:
            self._in_flight.discard(key)

    async def _handle(self, key: str, request: web.Request, handler: Handler) -> web.StreamResponse:
        fingerprint = await _fingerprint(request)
        self._forget_old(time.time())
        outcome = self._outcomes.get(key)
        if outcome is not None:
            if outcome.fingerprint != fingerprint:
                return _error_response(
                    400,
                    {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same "
                        f"parameters they were first used with. Try using a key other than '{key}' "
                        "if you meant to execute a different request.",
                    },
                )
            return outcome.replay(key)
        try:
            response = await handler(request)
        except UserError as error:
            response = error.to_response()
        if (
            _was_executed(response.status)
            and isinstance(response, web.Response)
            and isinstance(response.body, bytes)
        ):
            self._outcomes[key] = _Outcome(
                fingerprint=fingerprint,
                status=response.status,
                body=response.body,
                content_type=response.headers.get(hdrs.CONTENT_TYPE, "application/json"),
                saved_at=time.time(),
            )
        response.headers["Idempotency-Key"] = key
        return response

    def _forget_old(self, now: float) -> None:
        """Drop expired outcomes, and the oldest beyond `max_keys` (oldest are first)."""
        while self._outcomes:
            oldest_key, oldest = next(iter(self._outcomes.items()))
            if oldest.saved_at > now - self._ttl_seconds and len(self._outcomes) < self._max_keys:
                return
            del self._outcomes[oldest_key]


# --- Storage -------------------------------------------------------------------------------------


class _MemoryStore(Store):
    """localstripe's Store without its dump to /tmp/localstripe.pickle on every write."""

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)

    def dump_to_disk(self) -> None:
        """Do nothing: `StateFile` persists the state when asked to."""

    def try_load_from_disk(self) -> None:
        """Do nothing: `StateFile` persists the state when asked to."""


class StateFile:
    """The emulator's state (localstripe's objects, idempotency outcomes) in one pickle file."""

    def __init__(self, path: Path, idempotency: IdempotencyLayer) -> None:
        self.path = path
        self._idempotency = idempotency

    def load(self) -> None:
        """Replace the in-memory state with the file's, if the file exists."""
        not_a_state_file = ValueError(f"{self.path} is not a Stripe emulator state file")
        try:
            with self.path.open("rb") as file:
                state = pickle.load(file)  # noqa: S301 - our own dev-only file, as localstripe's
        except FileNotFoundError:
            return
        except Exception as error:  # unpickling junk fails in many ways
            raise not_a_state_file from error
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise not_a_state_file
        store.clear()
        store.update(state["objects"])
        self._idempotency.restore(state["idempotency"])

    def save(self) -> None:
        """Write the state atomically (a crash mid-write leaves the previous file)."""
        state = {
            "format": STATE_FORMAT,
            "objects": dict(store),
            "idempotency": self._idempotency.snapshot(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("wb") as file:
            pickle.dump(state, file, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(self.path)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Save after every request that may have changed the state."""
        try:
            return await handler(request)
        finally:
            if request.method in MUTATING_METHODS:
                self.save()


# --- The application -----------------------------------------------------------------------------


@web.middleware
async def stripe_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer unknown routes and unexpected failures in Stripe's error shape."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        return _error_response(
            404,
            {
                "type": "invalid_request_error",
                "message": f"Unrecognized request URL ({request.method}: {request.path}).",
            },
        )
    except web.HTTPException:
        raise
    except Exception:
        logger.exception("unexpected failure on %s %s", request.method, request.path)
        return _error_response(
            500,
            {"type": "api_error", "message": "The Stripe emulator failed; see its log."},
            headers={"Stripe-Should-Retry": "false"},
        )


def _override_middleware(overrides: Mapping[tuple[str, str], Handler]) -> Middleware:
    """Serve some of localstripe's routes (by method and path pattern) with other handlers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if resource is not None:
            handler = overrides.get((request.method, resource.canonical), handler)
        return await handler(request)

    return middleware


def build_app(idempotency: IdempotencyLayer, state_file: StateFile | None) -> web.Application:
    """Extend localstripe's (process-wide) application in place and return it; call once."""
    store.__class__ = _MemoryStore  # the one Store instance that localstripe's modules share
    _extend_invoices()
    app = localstripe_server.app

    prices = "/v1/prices"
    app.router.add_post(prices, localstripe_server.api_create(Price, prices))
    app.router.add_get(prices, localstripe_server.api_list_all(Price, prices))
    price = prices + "/{id}"
    app.router.add_get(price, localstripe_server.api_retrieve(Price, price))
    app.router.add_post(price, localstripe_server.api_update(Price, price))

    async def flush_all(request: web.Request) -> web.StreamResponse:
        response = await localstripe_server.flush_store(request)
        idempotency.clear()
        return response

    for cls, collection in (
        (CheckoutSession, "/v1/checkout/sessions"),
        (SubscriptionSchedule, "/v1/subscription_schedules"),
    ):
        one = collection + "/{id}"
        app.router.add_post(collection, localstripe_server.api_create(cls, collection))
        app.router.add_get(collection, localstripe_server.api_list_all(cls, collection))
        app.router.add_get(one, localstripe_server.api_retrieve(cls, one))
        app.router.add_post(one, localstripe_server.api_update(cls, one))
    portal = "/v1/billing_portal/sessions"
    app.router.add_post(portal, localstripe_server.api_create(BillingPortalSession, portal))
    app.router.add_post("/v1/ephemeral_keys", _create_ephemeral_key)
    for method, path, func in (
        ("POST", "/v1/checkout/sessions/{id}/expire", CheckoutSession._api_expire),
        ("POST", "/v1/subscription_schedules/{id}/release", SubscriptionSchedule._api_release),
        ("GET", "/v1/customers/{id}/payment_methods", _customer_payment_methods),
        # Emulator only: what a customer, a test clock or the emulator itself would do.
        ("POST", "/_testing/checkout/sessions/{id}/complete", CheckoutSession._api_complete),
        ("POST", "/_testing/subscriptions/{id}/end_period", _end_subscription_period),
    ):
        app.router.add_route(method, path, localstripe_server.api_extra(func, path))
    app.router.add_get("/_testing/ephemeral_keys/{secret}", _ephemeral_key_version)

    overrides: dict[tuple[str, str], Handler] = {("DELETE", "/_config/data"): flush_all}
    for cls, collection in (
        (CatalogProduct, "/v1/products"),
        (PriceSubscription, "/v1/subscriptions"),
    ):
        one = collection + "/{id}"
        overrides["POST", collection] = localstripe_server.api_create(cls, collection)
        overrides["POST", one] = localstripe_server.api_update(cls, one)
    for method, path, func in (
        ("DELETE", "/v1/subscriptions/{id}", _cancel_subscription),
        ("POST", "/v1/customers/{id}", _update_customer),
        ("POST", "/v1/payment_methods/{id}/attach", _attach_payment_method),
        ("POST", "/v1/payment_methods/{id}/detach", _detach_payment_method),
        ("POST", "/v1/payment_intents/{id}/confirm", _confirm_payment_intent),
        ("POST", "/v1/setup_intents/{id}/confirm", _confirm_setup_intent),
    ):
        overrides[method, path] = localstripe_server.api_extra(func, path)
    overrides["POST", "/v1/invoices/create_preview"] = _dict_handler(_preview_invoice)
    # Outermost first; localstripe's own are: errors, auth, its store dump.
    app.middlewares.insert(0, stripe_error_middleware)
    if state_file is not None:
        app.middlewares.insert(0, state_file.middleware)
    app.middlewares.extend([idempotency.middleware, _override_middleware(overrides)])
    return app


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(host: str, port: int, state_path: Path | None) -> None:
    """Serve until SIGTERM or SIGINT; with `state_path`, load it first and save it on the way."""
    idempotency = IdempotencyLayer()
    state_file = None if state_path is None else StateFile(state_path, idempotency)
    app = build_app(idempotency, state_file)
    if state_file is not None:
        try:
            state_file.load()
        except ValueError as error:
            raise SystemExit(f"stripe-emulator: {error}") from error
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            raise SystemExit(f"stripe-emulator: cannot listen on {host}:{port}: {error}") from error
        bound_port = runner.addresses[0][1]
        print(LISTENING_MESSAGE.format(url=_base_url(host, bound_port)), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        if state_file is not None:
            state_file.save()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tatame_devstack.stripe_emulator",
        description="Local Stripe emulator for development and tests (never production).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8420, help="port, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        help="load the state from this file and save it there (default: memory only)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args.host, args.port, args.state_file))


if __name__ == "__main__":
    # Run the package module rather than this `__main__` copy, so that the state file pickles
    # `tatame_devstack.stripe_emulator.Price` and loads whichever way the emulator is started.
    from tatame_devstack.stripe_emulator import main as package_main

    package_main()
