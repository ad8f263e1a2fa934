"""Coupons, promotion codes and the discounts they give, as Stripe has them at the pinned API
version: a promotion code names its coupon under `promotion.coupon`; a coupon limits itself
(`redeem_by`, `max_redemptions`, `applies_to.products`), a code adds its own limits
(`active`, `expires_at`, `max_redemptions`, `customer`, `restrictions`). Redeeming one on a
subscription (`discounts=[{promotion_code|coupon|discount}]`) makes a Discount that the
subscription's invoices apply while it lasts (`once`: the first invoice that bills something;
`repeating`: `duration_in_months`; `forever`)."""

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import stripe
from localstripe.errors import UserError
from localstripe.resources import Coupon, Customer, Invoice, StripeObject, random_id

from tatame_devstack.stripe_emulator.params import (
    as_bool,
    as_currency,
    as_int,
    as_metadata,
    as_optional_str,
    as_str,
    merged_metadata,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.render import expanded, expanded_under, shape
from tatame_devstack.stripe_emulator.state import stored

DURATIONS = ("forever", "once", "repeating")
SECONDS_PER_MONTH = 30 * 24 * 3600  # the emulator's month, as its test clocks count


def _products(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"products"}:
        raise param_error("applies_to", "Invalid applies_to: expected a hash of products")
    products = value.get("products") or []
    if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
        raise param_error("applies_to[products]", "Invalid products: expected a list of ids")
    return list(products)


class PromotionCoupon(Coupon):
    """A coupon with the fields and limits it has at the pinned version (localstripe's lacks
    most of them)."""

    def __init__(
        self,
        id: Any = None,
        name: Any = None,
        amount_off: Any = None,
        currency: Any = None,
        percent_off: Any = None,
        duration: Any = "once",
        duration_in_months: Any = None,
        max_redemptions: Any = None,
        redeem_by: Any = None,
        applies_to: Any = None,
        metadata: Any = None,
        **unknown: Any,
    ) -> None:
        reject_unknown(unknown)
        if (amount_off is None) == (percent_off is None):
            raise param_error("amount_off", "Pass exactly one of amount_off and percent_off.")
        amount = None if amount_off is None else as_int("amount_off", amount_off, minimum=1)
        if amount is not None and currency is None:
            raise param_error("currency", "A coupon with amount_off needs a currency.")
        percent = None
        if percent_off is not None:
            try:
                percent = float(percent_off)
            except (TypeError, ValueError):
                raise param_error("percent_off", f"Invalid decimal: {percent_off}") from None
            if not 0 < percent <= 100:
                raise param_error("percent_off", "percent_off must be above 0 and at most 100.")
        duration = as_str("duration", duration, choices=DURATIONS)
        months = None
        if duration == "repeating":
            months = as_int("duration_in_months", duration_in_months, minimum=1)
        elif duration_in_months is not None:
            raise param_error("duration_in_months", "Only a repeating coupon has a duration.")
        products = _products(applies_to)

        StripeObject.__init__(self, as_optional_str("id", id) or random_id(8))
        self.name = as_optional_str("name", name)
        self.amount_off, self.percent_off = amount, percent
        self.currency = None if currency is None else as_currency(currency)
        self.duration, self.duration_in_months = duration, months
        self.max_redemptions = (
            None
            if max_redemptions is None
            else as_int("max_redemptions", max_redemptions, minimum=1)
        )
        self.redeem_by = None if redeem_by is None else as_int("redeem_by", redeem_by, minimum=1)
        self.applies_to = products
        self.metadata = as_metadata(metadata)
        self.times_redeemed = 0

    @property
    def valid(self) -> bool:  # localstripe stores `valid`; here it follows the limits
        expired = self.redeem_by is not None and self.redeem_by <= time.time()
        spent = self.max_redemptions is not None and self.times_redeemed >= self.max_redemptions
        return not expired and not spent

    @valid.setter
    def valid(self, _value: bool) -> None:
        pass

    @classmethod
    def _api_retrieve(cls, id: str) -> "PromotionCoupon":
        coupon = next((c for c in stored(Coupon.object) if c.id == id), None)
        if not isinstance(coupon, PromotionCoupon):
            raise UserError(404, f"No such coupon: '{id}'", {"code": "resource_missing"})
        return coupon

    @classmethod
    def _api_update(
        cls, id: str, name: Any = None, metadata: Any = None, **unknown: Any
    ) -> "PromotionCoupon":
        reject_unknown(unknown)
        coupon = cls._api_retrieve(id)
        if name is not None:
            coupon.name = as_optional_str("name", name)
        if metadata is not None:
            coupon.metadata = merged_metadata(coupon.metadata, metadata)
        return coupon

    def _export(self, expand: Any = None) -> dict[str, Any]:
        values = {
            "id": self.id,
            "object": "coupon",
            "amount_off": self.amount_off,
            "applies_to": None
            if self.applies_to is None
            else shape(stripe.Coupon.AppliesTo, {"products": self.applies_to}),
            "created": self.created,
            "currency": self.currency,
            "duration": self.duration,
            "duration_in_months": self.duration_in_months,
            "livemode": False,
            "max_redemptions": self.max_redemptions,
            "metadata": self.metadata,
            "name": self.name,
            "percent_off": self.percent_off,
            "redeem_by": self.redeem_by,
            "times_redeemed": self.times_redeemed,
            "valid": self.valid,
        }
        return expanded(shape(stripe.Coupon, values, expand=expand or ()), expand or ())

    def amount_of(self, subtotal: int, currency: str) -> int:
        """What this coupon takes off `subtotal` (minor units of `currency`; nothing off a
        credit)."""
        if subtotal <= 0:
            return 0
        if self.percent_off is not None:
            return min(subtotal, math.floor(subtotal * self.percent_off / 100 + 0.5))
        if self.currency != currency or self.amount_off is None:
            return 0
        return min(subtotal, self.amount_off)


def _restrictions(value: Any) -> dict[str, Any]:
    params = dict(value or {})
    if not isinstance(value, dict | None):
        raise param_error("restrictions", "Invalid restrictions: expected a hash")
    first_time = as_bool(
        "restrictions[first_time_transaction]", params.pop("first_time_transaction", False)
    )
    minimum = params.pop("minimum_amount", None)
    currency = params.pop("minimum_amount_currency", None)
    reject_unknown(params, parent="restrictions")
    if (minimum is None) != (currency is None):
        raise param_error(
            "restrictions[minimum_amount_currency]",
            "minimum_amount and minimum_amount_currency go together.",
        )
    return {
        "first_time_transaction": first_time,
        "minimum_amount": None
        if minimum is None
        else as_int("restrictions[minimum_amount]", minimum, minimum=1),
        "minimum_amount_currency": None if currency is None else as_currency(currency),
    }


class PromotionCode(StripeObject):
    """A customer-facing code for a coupon."""

    object = "promotion_code"
    _id_prefix = "promo_"
    code: str
    _active: bool

    def __init__(
        self,
        promotion: Any = None,
        code: Any = None,
        active: Any = True,
        customer: Any = None,
        expires_at: Any = None,
        max_redemptions: Any = None,
        restrictions: Any = None,
        metadata: Any = None,
        **unknown: Any,
    ) -> None:
        reject_unknown(unknown)
        if not isinstance(promotion, dict) or promotion.get("type") != "coupon":
            raise param_error("promotion[type]", "A promotion needs type=coupon and a coupon.")
        coupon = PromotionCoupon._api_retrieve(as_str("promotion[coupon]", promotion.get("coupon")))
        code = as_optional_str("code", code) or random_id(8).upper()
        if not all(c.isalnum() or c == "-" for c in code):
            raise param_error("code", "A code has letters, digits and dashes only.")
        if any(p._active and p.code.lower() == code.lower() for p in _codes()):
            raise param_error("code", "An active promotion code with this code already exists.")
        customer_id = None if customer is None else Customer._api_retrieve(customer).id
        parsed = _restrictions(restrictions)

        super().__init__()
        self.coupon = coupon.id
        self.code = code
        self._active = as_bool("active", active)
        self.customer = customer_id
        self.expires_at = (
            None if expires_at is None else as_int("expires_at", expires_at, minimum=1)
        )
        self.max_redemptions = (
            None
            if max_redemptions is None
            else as_int("max_redemptions", max_redemptions, minimum=1)
        )
        self.restrictions = parsed
        self.metadata = as_metadata(metadata)
        self.times_redeemed = 0

    @property
    def active(self) -> bool:
        """Stripe's `active`: only when the coupon is valid too."""
        return self._active and PromotionCoupon._api_retrieve(self.coupon).valid

    @classmethod
    def _api_retrieve(cls, id: str) -> "PromotionCode":
        try:
            return super()._api_retrieve(id)
        except UserError as error:
            raise UserError(
                404, f"No such promotion code: '{id}'", {"code": "resource_missing"}
            ) from error

    @classmethod
    def _api_update(
        cls, id: str, active: Any = None, metadata: Any = None, **unknown: Any
    ) -> "PromotionCode":
        reject_unknown(unknown)
        promotion_code = cls._api_retrieve(id)
        if active is not None:
            promotion_code._active = as_bool("active", active)
        if metadata is not None:
            promotion_code.metadata = merged_metadata(promotion_code.metadata, metadata)
        return promotion_code

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        limit: Any = None,
        starting_after: Any = None,
        active: Any = None,
        code: Any = None,
        coupon: Any = None,
        customer: Any = None,
        **unknown: Any,
    ) -> Any:
        reject_unknown(unknown)
        page = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        wanted_active = None if active is None else as_bool("active", active)
        page._list = [
            p
            for p in reversed(page._list)
            if (wanted_active is None or p.active == wanted_active)
            # Stripe matches a code regardless of case.
            and (code is None or p.code.lower() == as_str("code", code).lower())
            and (coupon is None or p.coupon == coupon)
            and (customer is None or p.customer == customer)
        ]
        return page

    def _export(self, expand: Any = None) -> dict[str, Any]:
        expand = expand or []
        coupon_paths = expanded_under(expanded_under(expand, "promotion"), "coupon")
        coupon: Any = self.coupon
        if any(path.split(".", 1)[0] == "coupon" for path in expanded_under(expand, "promotion")):
            coupon = PromotionCoupon._api_retrieve(self.coupon)._export(expand=coupon_paths)
        restrictions = shape(
            stripe.PromotionCode.Restrictions, {**self.restrictions, "currency_options": {}}
        )
        values = {
            "id": self.id,
            "object": "promotion_code",
            "active": self.active,
            "code": self.code,
            "created": self.created,
            "customer": self.customer,
            "customer_account": None,
            "expires_at": self.expires_at,
            "livemode": False,
            "max_redemptions": self.max_redemptions,
            "metadata": self.metadata,
            "promotion": shape(
                stripe.PromotionCode.Promotion, {"coupon": coupon, "type": "coupon"}
            ),
            "restrictions": restrictions,
            "times_redeemed": self.times_redeemed,
        }
        rest = [p for p in expand if not p.startswith("promotion.")]
        return expanded(shape(stripe.PromotionCode, values, expand=rest), rest)


def _codes() -> list[PromotionCode]:
    return [p for p in stored(PromotionCode.object) if isinstance(p, PromotionCode)]


class Discount(StripeObject):
    """A coupon applied to a subscription (through a promotion code or not)."""

    object = "discount"
    _id_prefix = "di_"

    def __init__(
        self, *, coupon: PromotionCoupon, promotion_code: str | None, customer: str, start: int
    ) -> None:
        super().__init__()
        self.coupon = coupon.id
        self.promotion_code = promotion_code
        self.customer = customer
        self.subscription: str | None = None
        self.start = start
        self.end = (
            start + coupon.duration_in_months * SECONDS_PER_MONTH
            if coupon.duration_in_months
            else None
        )
        self._used = False  # a `once` discount is spent by the first invoice billing something

    def live_at(self, at: int) -> bool:
        coupon = PromotionCoupon._api_retrieve(self.coupon)
        if coupon.duration == "once":
            return not self._used
        return self.end is None or at < self.end

    def _export(self, expand: Any = None) -> dict[str, Any]:
        expand = expand or []
        coupon: Any = self.coupon
        source_paths = expanded_under(expand, "source")
        if any(path.split(".", 1)[0] == "coupon" for path in source_paths):
            coupon = PromotionCoupon._api_retrieve(self.coupon)._export(
                expand=expanded_under(source_paths, "coupon")
            )
        values = {
            "id": self.id,
            "object": "discount",
            "checkout_session": None,
            "customer": self.customer,
            "customer_account": None,
            "end": self.end,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": self.promotion_code,
            "source": shape(stripe.Discount.Source, {"coupon": coupon, "type": "coupon"}),
            "start": self.start,
            "subscription": self.subscription,
            "subscription_item": None,
        }
        rest = [p for p in expand if not p.startswith("source.")]
        return expanded(shape(stripe.Discount, values, expand=rest), rest)


@dataclass(frozen=True, slots=True)
class Redemption:
    """A discount asked for and checked, not made yet."""

    coupon: PromotionCoupon
    promotion_code: PromotionCode | None
    existing: Discount | None


def _has_paid(customer: str) -> bool:
    return any(
        i.customer == customer and i.status == "paid" and i.amount_paid > 0
        for i in stored(Invoice.object)
    )


def checked_discounts(
    value: Any, *, customer: str, product: str, currency: str, subtotal: int
) -> list[Redemption]:
    """The `discounts` parameter of a subscription (or a preview of one), checked as Stripe
    checks it for a subscription of `product` billing `subtotal` first."""
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise param_error("discounts", "Invalid discounts: expected a list")
    redemptions = []
    for index, entry in enumerate(value):
        param = f"discounts[{index}]"
        if not isinstance(entry, dict) or len(entry) != 1:
            raise param_error(param, "Pass one of coupon, discount or promotion_code.")
        ((kind, given),) = entry.items()
        if kind == "discount":
            existing = Discount._api_retrieve(as_str(f"{param}[discount]", given))
            coupon = PromotionCoupon._api_retrieve(existing.coupon)
            redemptions.append(Redemption(coupon, None, existing))
            continue
        promotion_code = None
        if kind == "promotion_code":
            promotion_code = PromotionCode._api_retrieve(as_str(f"{param}[{kind}]", given))
            _check_code(f"{param}[{kind}]", promotion_code, customer, currency, subtotal)
            coupon = PromotionCoupon._api_retrieve(promotion_code.coupon)
        elif kind == "coupon":
            coupon = PromotionCoupon._api_retrieve(as_str(f"{param}[{kind}]", given))
        else:
            raise param_error(f"{param}[{kind}]", f"Received unknown parameter: {param}[{kind}]")
        if not coupon.valid:
            raise param_error(f"{param}[{kind}]", f"Coupon {coupon.id} is no longer valid.")
        if coupon.applies_to is not None and product not in coupon.applies_to:
            raise param_error(
                f"{param}[{kind}]",
                f"Coupon {coupon.id} does not apply to the product {product}.",
            )
        redemptions.append(Redemption(coupon, promotion_code, None))
    return redemptions


def _check_code(
    param: str, code: PromotionCode, customer: str, currency: str, subtotal: int
) -> None:
    if not code.active:
        raise param_error(param, f"The promotion code {code.code} is not active.")
    if code.expires_at is not None and code.expires_at <= time.time():
        raise param_error(param, f"The promotion code {code.code} has expired.")
    if code.max_redemptions is not None and code.times_redeemed >= code.max_redemptions:
        raise param_error(param, f"The promotion code {code.code} has been fully redeemed.")
    if code.customer is not None and code.customer != customer:
        raise param_error(param, f"The promotion code {code.code} is for another customer.")
    restrictions = code.restrictions
    if restrictions["first_time_transaction"] and _has_paid(customer):
        raise param_error(
            param, f"The promotion code {code.code} is for first-time customers only."
        )
    minimum = restrictions["minimum_amount"]
    if minimum is not None and (
        restrictions["minimum_amount_currency"] != currency or subtotal < minimum
    ):
        raise param_error(
            param, f"The promotion code {code.code} needs a purchase of at least {minimum}."
        )


def redeem(redemptions: Iterable[Redemption], *, customer: str, subscription: str) -> list[str]:
    """Make (or keep) the discounts of checked redemptions; their ids."""
    now = int(time.time())
    ids = []
    for redemption in redemptions:
        discount = redemption.existing
        if discount is None:
            code = redemption.promotion_code
            discount = Discount(
                coupon=redemption.coupon,
                promotion_code=None if code is None else code.id,
                customer=customer,
                start=now,
            )
            redemption.coupon.times_redeemed += 1
            if code is not None:
                code.times_redeemed += 1
        discount.subscription = subscription
        ids.append(discount.id)
    return ids


def discount_amounts(
    discount_ids: Iterable[str], *, subtotal: int, currency: str
) -> list[tuple[str, int]]:
    """What each discount takes off an invoice of `subtotal`, in turn (never below zero)."""
    amounts = []
    left = subtotal
    for discount_id in discount_ids:
        coupon = PromotionCoupon._api_retrieve(Discount._api_retrieve(discount_id).coupon)
        amount = min(left, coupon.amount_of(subtotal, currency))
        left -= amount
        amounts.append((discount_id, amount))
    return amounts


def live_discounts(discount_ids: Iterable[str], at: int) -> list[str]:
    return [d for d in discount_ids if Discount._api_retrieve(d).live_at(at)]


def applied_to(invoice: Invoice, discount_ids: list[str]) -> None:
    """Give `invoice` the subscription's live discounts; a `once` one is spent by an invoice
    that bills something."""
    live = live_discounts(discount_ids, invoice.date)
    invoice._discount_ids = live
    if invoice.subtotal > 0:
        for discount_id in live:
            discount = Discount._api_retrieve(discount_id)
            if PromotionCoupon._api_retrieve(discount.coupon).duration == "once":
                discount._used = True


def invoice_discounts(invoice: Invoice) -> list[tuple[str, int]]:
    return discount_amounts(
        getattr(invoice, "_discount_ids", []), subtotal=invoice.subtotal, currency=invoice.currency
    )


def _invoice_total(invoice: Invoice) -> int:
    discount = sum(amount for _, amount in invoice_discounts(invoice))
    return max(0, invoice.subtotal - discount + invoice.tax - invoice.starting_balance)


def extend_invoice_totals() -> None:
    """localstripe's invoice total, less the invoice's discounts."""
    Invoice.total = property(_invoice_total)
