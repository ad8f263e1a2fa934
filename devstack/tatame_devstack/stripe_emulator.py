"""A local, stateful Stripe emulator for development and tests (never production).

It runs `localstripe` (GPL-3.0, a dev/test dependency only) with what our backend needs and
localstripe lacks, added by subclassing its resources and extending its aiohttp app:

- the Prices API; each recurring price is also a localstripe Plan with the same id, so that
  subscriptions accept it (`items[].price` is taken as `items[].plan`);
- products with `marketing_features`, `default_price_data` (create), `default_price` (update)
  and `updated`, and a `product.updated` event on update;
- a `customer.subscription.updated` event on subscription update;
- invoices with `amount_remaining` and, once finalized, a `number` and links to the hosted page
  and PDF (under a `.invalid` host: the emulator serves neither);
- Stripe's idempotency layer (`Idempotency-Key` on POST: replay, mismatch 400, in-flight 409);
- Stripe-shaped JSON errors for unknown routes and unexpected failures;
- state in memory (never localstripe's shared /tmp/localstripe.pickle), or in a state file.

Usage: python -m tatame_devstack.stripe_emulator [--host 127.0.0.1] [--port 8420]
[--state-file PATH]. Once listening it prints one line to stdout:
`stripe-emulator listening on http://127.0.0.1:<port>`.
"""

import argparse
import asyncio
import hashlib
import json
import logging
import pickle
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from localstripe import server as localstripe_server
from localstripe.errors import UserError
from localstripe.resources import (
    Event,
    Invoice,
    Plan,
    Product,
    Store,
    StripeObject,
    Subscription,
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


class PriceSubscription(Subscription):
    """localstripe's Subscription, taking `items[].price` and exporting `items.data[].price`."""

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
            subscription.trial_end = subscription.trial_end or now + int(days) * 86400
            subscription.status = "trialing"
            schedule_webhook(Event("customer.subscription.updated", subscription))
        return subscription

    @classmethod
    def _api_update(cls, id: str, items: Any = None, **params: Any) -> Subscription:
        subscription = super()._api_update(id, items=_items_with_plans(items), **params)
        schedule_webhook(Event("customer.subscription.updated", subscription))
        return subscription

    def _export(self, expand: Any = None) -> dict[str, Any]:
        exported = super()._export(expand=expand)
        for item in exported["items"]["data"]:
            price = store.get(Price.object + ":" + item["plan"]["id"])
            item["price"] = None if price is None else price._export()
            # Since API version 2025-03-31 the period lives on the items.
            item["current_period_start"] = exported["current_period_start"]
            item["current_period_end"] = exported["current_period_end"]
        return exported


def _extend_invoices() -> None:
    """Add Stripe's invoice fields that localstripe lacks, on its class: its subscriptions create
    invoices by that name. A draft has no number and no links yet."""

    def finalized(field: Callable[[Any], str]) -> property:
        return property(lambda invoice: None if invoice._draft else field(invoice))

    Invoice.amount_remaining = property(lambda invoice: invoice.amount_due - invoice.amount_paid)
    Invoice.number = finalized(lambda invoice: invoice.id.removeprefix("in_")[:8].upper() + "-0001")
    Invoice.hosted_invoice_url = finalized(lambda invoice: f"{HOSTED_INVOICES}/{invoice.id}")
    Invoice.invoice_pdf = finalized(lambda invoice: f"{HOSTED_INVOICES}/{invoice.id}/pdf")


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

    overrides: dict[tuple[str, str], Handler] = {("DELETE", "/_config/data"): flush_all}
    for cls, collection in (
        (CatalogProduct, "/v1/products"),
        (PriceSubscription, "/v1/subscriptions"),
    ):
        one = collection + "/{id}"
        overrides["POST", collection] = localstripe_server.api_create(cls, collection)
        overrides["POST", one] = localstripe_server.api_update(cls, one)
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
