"""The REST shapes of the gateway (what the apps send and read)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from gateway.validation import Text
from services.auth.errors import AuthReason
from services.common.errors import ErrorReason


class PriceTierOut(BaseModel):
    up_to: int | None = Field(description="The tier's last quantity; null for the last tier.")
    unit_amount: int | None = Field(description="Minor units per unit in this tier.")
    flat_amount: int | None = Field(description="Minor units for the tier as a whole.")


class CustomUnitAmountOut(BaseModel):
    minimum: int | None
    maximum: int | None
    preset: int | None


class PriceOut(BaseModel):
    id: str
    lookup_key: str | None
    unit_amount: int | None = Field(
        description="Integer minor units of `currency` per unit (for a metered price, per unit "
        "its `meter` measures); null for a tiered or customer-chosen price."
    )
    currency: str = Field(description="ISO 4217 code, lower case.")
    interval: str = Field(description="day, week, month or year.")
    interval_count: int
    billing_scheme: str = Field(default="per_unit", description="per_unit or tiered.")
    usage_type: str | None = Field(default=None, description="licensed or metered.")
    tiers_mode: str | None = Field(default=None, description="graduated or volume (tiered).")
    tiers: list[PriceTierOut] | None = None
    custom_unit_amount: CustomUnitAmountOut | None = Field(
        default=None, description="Set when the customer chooses the amount."
    )
    fixed_amount: bool = Field(
        default=True,
        description="False for a tiered, metered or customer-chosen price: the app cannot "
        "subscribe to it (400 `price_not_subscribable`).",
    )
    currencies: list[str] = Field(
        default_factory=list,
        description="Every currency the price can be paid in (`currency`, the one shown, "
        "first): pass one as `currency` to subscribe or pay in it.",
    )
    meter: str | None = Field(
        default=None, description="The Stripe billing meter of a metered price (mtr_...)."
    )


class PlanOut(BaseModel):
    id: str = Field(description="Stripe product id.")
    name: str
    description: str
    features: list[str]
    prices: list[PriceOut]


class PlansOut(BaseModel):
    plans: list[PlanOut]
    currency: str | None = Field(
        default=None,
        description="The currency every price is shown in (the one asked for, else the "
        "caller's customer's); null when each price is in its own.",
    )


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: Text = Field(min_length=3, max_length=254)
    name: Text = Field(default="", max_length=256)


class CustomerOut(BaseModel):
    stripe_customer_id: str
    email: str
    name: str
    created_at: datetime
    currency: str | None = Field(
        default=None,
        description="The currency the customer pays in, once its first subscription set it "
        "(Stripe's one currency per customer); null before.",
    )


class ErasureOut(BaseModel):
    state: str = Field(
        description="`done`; an erasure that stopped part way answers 503 and resumes when "
        "asked again."
    )
    requested_by: str = Field(description="`api`, or the Clerk event that asked for it.")
    requested_at: datetime
    completed_at: datetime | None
    stripe_customer_id: str | None = Field(
        description="The Stripe customer deleted (its id stays in accounting's records)."
    )
    canceled_subscription_ids: list[str]
    inbox_events_scrubbed: int = Field(
        description="Stored webhook events blanked of personal data by this erasure."
    )


# What a client may branch on: billing's reasons (400/404/409), the session's (401/503), and the
# request's own (400/413); other statuses carry the gRPC status name (`unavailable`, …).
_DOCUMENTED_CODES = ", ".join(
    f"`{code}`"
    for code in (
        *(reason.value for reason in ErrorReason),
        *(reason.value for reason in AuthReason),
        "invalid_request",
        "invalid_json",
        "payload_too_large",
        "request_timeout",
        "unavailable",
        "deadline_exceeded",
    )
)


class ErrorDetail(BaseModel):
    code: str = Field(description=f"A stable lower_snake error code, one of: {_DOCUMENTED_CODES}.")
    message: str
    request_id: str | None


class ErrorOut(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route that may fail with `statuses` (the one error body)."""
    return {status: {"model": ErrorOut} for status in statuses}


class DiscountOut(BaseModel):
    id: str | None = Field(description="Stripe discount id; null in a preview.")
    coupon_id: str
    name: str | None
    promotion_code: str | None = Field(description="The code the customer typed, if any.")
    percent_off: float | None
    amount_off: int | None = Field(description="Integer minor units of `currency`.")
    currency: str | None
    duration: str = Field(description="once, repeating (duration_in_months) or forever.")
    duration_in_months: int | None
    ends_at: datetime | None = Field(description="When a repeating discount ends.")
    amount: int | None = Field(
        default=None, description="On an invoice or a preview: the minor units it took off."
    )


class PendingUpdateOut(BaseModel):
    price_id: str
    quantity: int
    expires_at: datetime


class PauseCollectionOut(BaseModel):
    behavior: str = Field(
        description="void (invoices voided: access stops at `access_ends_at`), keep_as_draft "
        "(invoices kept as drafts to collect later) or mark_uncollectible (written off); the "
        "last two keep access."
    )
    resumes_at: datetime | None = Field(description="When payments resume; null: until unpaused.")
    access_ends_at: datetime | None = Field(
        description="For void: the end of the period paid before the pause, when access stops "
        "until payments resume."
    )


class SubscriptionOut(BaseModel):
    id: str
    status: str = Field(description="Stripe's status: trialing, active, past_due, canceled, …")
    price_id: str
    quantity: int
    current_period_start: datetime | None
    current_period_end: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    created_at: datetime | None
    scheduled_price_id: str | None = Field(description="A downgrade waiting for the period end.")
    scheduled_change_at: datetime | None
    discounts: list[DiscountOut] = Field(
        default_factory=list, description="Discounts applied (a scheduled downgrade keeps them)."
    )
    pending_update: PendingUpdateOut | None = Field(
        default=None,
        description="An upgrade waiting for its payment: not applied until its invoice is paid; "
        "discarded (and the invoice voided) at `expires_at` otherwise.",
    )
    pause_collection: PauseCollectionOut | None = Field(
        default=None,
        description="Payments paused (the status stays as it was), if they are.",
    )


class SubscriptionsOut(BaseModel):
    subscriptions: list[SubscriptionOut]


class PriceChoice(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    price: Text = Field(min_length=1, max_length=255, description="A price id or lookup_key.")
    currency: Text | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="ISO 4217 code (e.g. `brl`): pay in one of the price's `currencies`. "
        "Default: the customer's currency once it has one, else the price's own. 400 "
        "`invalid_currency` (not a currency code) or `currency_not_offered` (not one of the "
        "price's); 409 `customer_currency_mismatch` when the customer pays in another one.",
    )


class CheckoutSessionIn(PriceChoice):
    success_url: Text = Field(min_length=1, max_length=2048)
    cancel_url: Text = Field(min_length=1, max_length=2048)


class CheckoutSessionOut(BaseModel):
    id: str
    url: str


class CheckoutConfirmationOut(BaseModel):
    status: str = Field(description="open, complete or expired")
    subscription: SubscriptionOut | None
    payment_status: str = Field(
        default="",
        description="paid, no_payment_required (a trial), or unpaid: complete but paid by a "
        "delayed method (a boleto), the subscription incomplete until Stripe reports it paid.",
    )


class PortalSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    return_url: Text = Field(min_length=1, max_length=2048)


class PortalSessionOut(BaseModel):
    url: str


class SubscriptionIn(PriceChoice):
    quantity: StrictInt = Field(default=1, ge=1, le=10_000)
    promotion_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9-]+$",
        description="A promotion code as the customer typed it (any case).",
    )
    stripe_version: Text | None = Field(
        default=None,
        max_length=64,
        description="The mobile SDK's Stripe-Version, for an ephemeral key.",
    )


class SubscriptionCreatedOut(BaseModel):
    subscription: SubscriptionOut
    intent_type: str = Field(
        description="payment_intent, or setup_intent when a trial means nothing is due (the "
        "trial grants its features once this setup intent has saved a card, unless "
        "BILLING_TRIAL_REQUIRES_PAYMENT_METHOD=false)"
    )
    client_secret: str
    customer_id: str
    ephemeral_key_secret: str | None
    trial_applied: bool


class SetupIntentOut(BaseModel):
    id: str
    client_secret: str
    customer_id: str


class EphemeralKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stripe_version: Text | None = Field(default=None, max_length=64)


class EphemeralKeyOut(BaseModel):
    secret: str
    customer_id: str
    expires_at: datetime | None


ProrationBehavior = Literal["create_prorations", "always_invoice", "none"]


class SubscriptionChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    price: Text | None = Field(default=None, min_length=1, max_length=255)
    quantity: StrictInt | None = Field(default=None, ge=1, le=10_000)


class SubscriptionPreviewIn(SubscriptionChangeIn):
    proration_behavior: ProrationBehavior = "create_prorations"


class SubscriptionUpdateIn(SubscriptionChangeIn):
    proration_behavior: ProrationBehavior


class InvoiceLineOut(BaseModel):
    description: str
    amount: int
    proration: bool


class SubscriptionPreviewOut(BaseModel):
    amount_due: int
    currency: str
    lines: list[InvoiceLineOut]
    takes_effect: str = Field(description="now (upgrade) or period_end (downgrade)")
    tax: int = Field(default=0, description="Stripe Tax's tax, included in `amount_due`.")


class PendingPaymentOut(BaseModel):
    invoice_id: str
    action: str = Field(
        description="authenticate (the bank asks the card holder: confirm `client_secret` in "
        "PaymentSheet) or pay (declined: confirm `client_secret` with another card)."
    )
    decline_reason: str | None = Field(
        description="For pay: card_declined, insufficient_funds, expired_card, "
        "incorrect_card_details, payment_authentication_failed or payment_processing_error."
    )
    client_secret: str
    amount_due: int = Field(description="Integer minor units of `currency`.")
    currency: str


class SubscriptionUpdateOut(BaseModel):
    subscription: SubscriptionOut
    takes_effect: str = Field(
        description="now, period_end (a downgrade, scheduled), or after_payment (the upgrade's "
        "payment did not go through: not applied until `payment` is made; the subscription "
        "shows it as its `pending_update`)."
    )
    effective_at: datetime | None
    payment: PendingPaymentOut | None = Field(
        default=None, description="Set for after_payment: what the payment waits for."
    )


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    immediately: StrictBool = False


class InvoicePaymentAttemptOut(BaseModel):
    status: str = Field(
        description="Stripe's PaymentIntent status after the last attempt: "
        "requires_payment_method (declined: pay with another card), requires_action (the bank "
        "asks the customer to authenticate: pay the invoice again), processing, …"
    )
    reason: str | None = Field(
        description="Why it failed, a stable code (card_declined, insufficient_funds, "
        "expired_card, incorrect_card_details, payment_authentication_failed, "
        "payment_processing_error); null when it did not fail."
    )
    decline_code: str | None = Field(description="Stripe's decline code, as the bank gave it.")
    message: str | None = Field(description="Stripe's message, safe to show.")


class InvoiceOut(BaseModel):
    id: str
    subscription_id: str | None
    status: str
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    total: int
    number: str | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    created_at: datetime | None
    period_start: datetime | None
    period_end: datetime | None
    total_discount_amount: int = Field(default=0, description="Minor units taken off.")
    total_tax: int = Field(
        default=0, description="Stripe Tax's tax, included in `total` (minor units)."
    )
    total_excluding_tax: int = Field(default=0, description="`total` without its tax.")
    automatic_tax_status: str | None = Field(
        default=None,
        description="Stripe Tax on this invoice: complete, requires_location_inputs or failed; "
        "null when it is not automatically taxed.",
    )
    discounts: list[DiscountOut] = Field(default_factory=list)
    last_payment: InvoicePaymentAttemptOut | None = Field(
        default=None,
        description="While the invoice is open: how its last payment attempt ended (a declined "
        "renewal, a bank asking for authentication), if one was made.",
    )


class InvoicePayIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    payment_method: Text | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="A saved payment method of the caller's (pm_…); omitted: the one Stripe "
        "charges (the subscription's default, else the customer's).",
    )


class InvoicePaymentOut(BaseModel):
    status: str = Field(
        description="paid; requires_action: confirm the payment with `client_secret` "
        "(PaymentSheet / handleNextAction), the subscription turns active once Stripe reports "
        "it paid; processing: Stripe reports the outcome later."
    )
    client_secret: str | None = Field(description="Set for requires_action.")
    payment_intent_id: str | None
    invoice: InvoiceOut


class PromotionPreviewIn(PriceChoice):
    quantity: StrictInt = Field(default=1, ge=1, le=10_000)
    promotion_code: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9-]+$",
        description="A promotion code as the customer typed it (any case).",
    )


class PromotionPreviewOut(BaseModel):
    discount: DiscountOut
    subtotal: int = Field(description="The first paid invoice before the discount (minor units).")
    total: int = Field(
        description="The first paid invoice after the discount, tax included (minor units)."
    )
    currency: str
    tax: int = Field(
        default=0,
        description="Stripe Tax's tax in `total` (0 while the customer's location is unknown).",
    )


class InvoicesOut(BaseModel):
    invoices: list[InvoiceOut]


class PurchaseOut(BaseModel):
    id: str = Field(description="the payment intent (pi_...)")
    price_id: str
    product_id: str | None
    product_name: str | None
    quantity: int
    amount: int = Field(description="minor units of currency paid")
    currency: str
    status: str = Field(
        description="succeeded, partially_refunded, refunded, disputed (the bank has not "
        "decided) or lost (a dispute lost)"
    )
    amount_refunded: int
    receipt_url: str | None
    paid_at: datetime | None


class PurchasesOut(BaseModel):
    purchases: list[PurchaseOut]


class PaymentMethodOut(BaseModel):
    id: str
    type: str
    card_brand: str | None
    card_last4: str | None
    card_exp_month: int | None
    card_exp_year: int | None
    is_default: bool


class PaymentMethodsOut(BaseModel):
    payment_methods: list[PaymentMethodOut]


class PaymentIn(PriceChoice):
    quantity: StrictInt = Field(default=1, ge=1, le=100)


class PaymentOut(BaseModel):
    id: str
    client_secret: str
    amount: int = Field(description="What is charged, tax included (minor units).")
    currency: str
    customer_id: str
    tax: int = Field(default=0, description="Stripe Tax's tax, included in `amount`.")


class TaxLocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    country: str = Field(
        min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2."
    )
    postal_code: str = Field(
        default="", max_length=200, description="Required by Stripe Tax in the US (ZIP)."
    )
    state: str = Field(
        default="",
        max_length=200,
        description="State, county, province (Canada: required unless postal_code).",
    )
    city: str = Field(default="", max_length=200)
    line1: str = Field(default="", max_length=200)
    line2: str = Field(default="", max_length=200)


class TaxLocationOut(BaseModel):
    country: str | None
    postal_code: str | None
    state: str | None
    city: str | None
    line1: str | None
    line2: str | None
    automatic_tax: str | None = Field(
        description="With Stripe Tax on, what it makes of the address: supported, "
        "not_collecting (no tax collected there), unrecognized_location; null with it off."
    )


class EntitlementOut(BaseModel):
    feature: str
    subscription_id: str = Field(description="the subscription granting it; empty for a purchase")
    subscription_status: str
    grace_ends_at: datetime | None
    payment_intent_id: str | None = Field(
        description="the one-time purchase granting it, when not a subscription"
    )
    expires_at: datetime | None = Field(description="when a purchase's grant ends; null: for good")


class EntitlementsOut(BaseModel):
    entitlements: list[EntitlementOut]


class InvoiceActionOut(BaseModel):
    invoice: InvoiceOut
    action: str = Field(
        description="authenticate (the bank asked for the card holder's authentication), wait "
        "(a payment made outside the app: see pending_payment) or pay."
    )


class DelayedPaymentOut(BaseModel):
    method: str = Field(
        description="Stripe's payment method type: boleto, pix, …; empty when Stripe did not "
        "say (a bank debit processing)."
    )
    status: str = Field(
        description="requires_action (a voucher to pay outside the app) or processing."
    )
    amount: int = Field(description="minor units of currency")
    currency: str
    expires_at: datetime | None = Field(description="When the voucher expires unpaid.")
    hosted_voucher_url: str | None = Field(
        description="Stripe's page with the voucher (boleto number, PDF) or Pix instructions."
    )
    payment_intent_id: str
    invoice_id: str | None = Field(
        description="The subscription invoice it pays; null for a one-time purchase."
    )


class BillingOverviewOut(BaseModel):
    subscription: SubscriptionOut | None = Field(
        description="The live subscription (trial end, scheduled change or cancellation at the "
        "period end, pending update), if any."
    )
    plan: PlanOut | None = Field(description="Its product, with its price.")
    entitlements: list[EntitlementOut]
    invoice_action: InvoiceActionOut | None = Field(
        description="The live subscription's open invoice whose payment waits for the "
        "customer, if any."
    )
    default_payment_method: PaymentMethodOut | None = Field(
        description="The card that pays: brand, last4, expiry."
    )
    pending_payment: DelayedPaymentOut | None = Field(
        default=None,
        description="Waiting for payment: a payment made outside the app (a boleto or Pix "
        "voucher, a bank debit processing) that grants nothing until Stripe reports it paid.",
    )
