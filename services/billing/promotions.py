"""Promotion codes in the app: a code as the customer typed it, resolved through Stripe and
checked as Stripe checks it before a subscription redeems it, so that the app gets a stable
reason (`promotion_code_*`) rather than Stripe's prose. Stripe then applies it itself
(`discounts=[{"promotion_code": id}]` on the subscription) and checks again.

What is checked, in order: the code exists (`promotion_code_invalid`); it and its coupon are
active and valid (`promotion_code_inactive`, `promotion_code_expired` past its `expires_at` or
the coupon's `redeem_by`, `promotion_code_fully_redeemed` at its or the coupon's
`max_redemptions`); it applies to this customer, to the price's product (the coupon's
`applies_to`) and currency (`promotion_code_not_applicable`); a first-time-only code is for a
customer with no paid invoice yet (`promotion_code_first_time_only`); the first invoice reaches
its `minimum_amount` (`promotion_code_minimum_amount`).
"""

import re
import time
from dataclasses import dataclass
from typing import Any

import stripe

from services.billing.catalog import PriceRecord
from services.billing.customers import CustomerRecord
from services.billing.errors import Conflict, InvalidArgument
from services.billing.mirror import integer, mapping, optional, string
from services.billing.stripe_errors import translated_stripe_errors
from services.common.errors import ErrorReason

# Stripe's characters for a code: letters, digits and dashes.
_CODE = re.compile(r"[A-Za-z0-9-]{1,200}")
_EXPAND = ["data.promotion.coupon.applies_to"]


@dataclass(frozen=True, slots=True)
class PromotionCode:
    """A code checked for one subscription: Stripe's id, the code, its coupon."""

    id: str
    code: str
    coupon: dict[str, Any]


def _refused(reason: ErrorReason, message: str) -> Conflict:
    return Conflict(message, reason=reason)


async def _find(stripe_client: stripe.StripeClient, code: str) -> dict[str, Any]:
    """The promotion code with this code (any case): the active one if there is one."""
    if not _CODE.fullmatch(code):
        raise InvalidArgument(
            "a promotion code has letters, digits and dashes only",
            reason=ErrorReason.PROMOTION_CODE_INVALID,
        )
    async with translated_stripe_errors("look up the promotion code"):
        listed = await stripe_client.v1.promotion_codes.list_async(
            params={"code": code, "limit": 10, "expand": _EXPAND}
        )
    found = [p.to_dict() for p in listed.data]
    if not found:
        raise InvalidArgument(
            f"no promotion code {code!r}", reason=ErrorReason.PROMOTION_CODE_INVALID
        )
    return next((p for p in found if p["active"]), found[0])


def _check_limits(found: dict[str, Any], coupon: dict[str, Any], now: float) -> None:
    code = string(found["code"])
    expires = [
        optional(integer, found.get("expires_at")),
        optional(integer, coupon.get("redeem_by")),
    ]
    if any(at is not None and at <= now for at in expires):
        raise _refused(ErrorReason.PROMOTION_CODE_EXPIRED, f"the promotion code {code} has expired")
    for limited in (found, coupon):
        most = optional(integer, limited.get("max_redemptions"))
        if most is not None and integer(limited["times_redeemed"]) >= most:
            raise _refused(
                ErrorReason.PROMOTION_CODE_FULLY_REDEEMED,
                f"the promotion code {code} has been fully redeemed",
            )
    if not found["active"] or not coupon["valid"]:
        raise _refused(
            ErrorReason.PROMOTION_CODE_INACTIVE, f"the promotion code {code} is not active"
        )


def _check_fit(
    found: dict[str, Any],
    coupon: dict[str, Any],
    *,
    customer: CustomerRecord,
    price: PriceRecord,
    subtotal: int,
) -> None:
    code = string(found["code"])
    not_applicable = _refused(
        ErrorReason.PROMOTION_CODE_NOT_APPLICABLE,
        f"the promotion code {code} does not apply to this plan",
    )
    owner = found.get("customer")
    if owner is not None and owner != customer.stripe_customer_id:
        raise not_applicable
    applies_to = optional(mapping, coupon.get("applies_to"))
    if applies_to is not None and price.product_id not in applies_to.get("products", []):
        raise not_applicable
    if coupon.get("amount_off") is not None and coupon.get("currency") != price.currency:
        raise not_applicable
    restrictions = mapping(found["restrictions"])
    minimum = optional(integer, restrictions.get("minimum_amount"))
    if minimum is not None:
        if restrictions.get("minimum_amount_currency") != price.currency:
            raise not_applicable
        if subtotal < minimum:
            raise _refused(
                ErrorReason.PROMOTION_CODE_MINIMUM_AMOUNT,
                f"the promotion code {code} needs a first invoice of at least {minimum}",
            )


async def _has_paid(stripe_client: stripe.StripeClient, customer: CustomerRecord) -> bool:
    """Whether the customer has paid an invoice of some amount (Stripe's record, not the
    mirror's, which may lag)."""
    async with translated_stripe_errors("list the customer's paid invoices"):
        listed = await stripe_client.v1.invoices.list_async(
            params={"customer": customer.stripe_customer_id, "status": "paid", "limit": 100}
        )
        return any([invoice.amount_paid > 0 async for invoice in listed.auto_paging_iter()])


async def checked_promotion_code(
    *,
    stripe_client: stripe.StripeClient,
    code: str,
    customer: CustomerRecord,
    price: PriceRecord,
    quantity: int,
) -> PromotionCode:
    """The promotion code `code` when it applies to a new subscription of `quantity` of
    `price` for `customer`; else the reason it does not (see the module's docstring)."""
    found = await _find(stripe_client, code.strip())
    coupon = mapping(mapping(found["promotion"])["coupon"])
    _check_limits(found, coupon, time.time())
    _check_fit(found, coupon, customer=customer, price=price, subtotal=price.unit_amount * quantity)
    first_time = mapping(found["restrictions"]).get("first_time_transaction")
    if first_time and await _has_paid(stripe_client, customer):
        raise _refused(
            ErrorReason.PROMOTION_CODE_FIRST_TIME_ONLY,
            f"the promotion code {found['code']} is for a first purchase only",
        )
    return PromotionCode(id=string(found["id"]), code=string(found["code"]), coupon=coupon)
