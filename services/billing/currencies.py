"""The currency a customer pays in: a price's own or one of its currency options, and Stripe's
rule that a customer bills in one currency.

A request names a currency, or none: then the customer's (Stripe sets it with the first
subscription or invoice, `customers.currency`), else the price's own. A request in another
currency than the customer's is ALREADY_EXISTS `customer_currency_mismatch`, for one-time
payments too (Stripe enforces it for subscriptions only; billing keeps the customer's purchases
in one currency as well). Should the mirror not know the customer's currency yet, Stripe's own
refusal of a subscription reaches the caller with the same reason (stripe_errors).
"""

from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.catalog import PlanRecord, PriceRecord, list_plans
from services.billing.customers import CustomerRecord, find_customer
from services.billing.errors import Conflict, InvalidArgument
from services.common.errors import ErrorReason


def checked_currency(value: str) -> str | None:
    """A currency from a request, lower case as Stripe writes it; None when empty;
    `invalid_currency` when it is not three letters (ISO 4217)."""
    if not value:
        return None
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise InvalidArgument(
            f"currency {value!r} is not an ISO 4217 code (three letters, e.g. brl)",
            reason=ErrorReason.INVALID_CURRENCY,
        )
    return value.lower()


def priced_in(price: PriceRecord, currency: str) -> PriceRecord:
    """`price` in `currency`; `currency_not_offered` when it has no such option."""
    found = price.in_currency(currency)
    if found is None:
        raise InvalidArgument(
            f"price {price.id!r} is not sold in {currency} (it is in "
            f"{', '.join(price.currencies)})",
            reason=ErrorReason.CURRENCY_NOT_OFFERED,
        )
    return found


def payable_price(price: PriceRecord, *, requested: str, customer: CustomerRecord) -> PriceRecord:
    """`price` in the currency the customer pays it in: `requested` (a request's field, maybe
    empty), else the customer's currency when it has one, else the price's own."""
    currency = checked_currency(requested)
    if currency is not None and customer.currency not in (None, currency):
        raise Conflict(
            f"this customer pays in {customer.currency}, not {currency} (Stripe bills a "
            "customer in one currency)",
            reason=ErrorReason.CUSTOMER_CURRENCY_MISMATCH,
        )
    return priced_in(price, currency or customer.currency or price.currency)


async def plans_in_currency(
    *, engine: AsyncEngine, include_one_time: bool, requested: str, principal: Principal | None
) -> tuple[list[PlanRecord], str | None]:
    """The plans for sale in the currency `requested`, else in the principal's customer's
    currency once it has one, else each price in its own (None); and that currency.
    `currency_not_offered` when nothing is sold in the currency requested."""
    currency = checked_currency(requested)
    if currency is None and principal is not None:
        customer = await find_customer(engine=engine, principal=principal)
        currency = None if customer is None else customer.currency
    plans = await list_plans(engine=engine, include_one_time=include_one_time, currency=currency)
    if requested and not plans:
        raise InvalidArgument(
            f"no plan is sold in {currency}", reason=ErrorReason.CURRENCY_NOT_OFFERED
        )
    return plans, currency
