"""The billing overview: what the app's billing screen draws, in one answer from the mirror
(never Stripe per call).

The principal's live subscription (the newest) with its plan, trial end, scheduled downgrade or
cancellation, and pending update (an upgrade waiting for its payment); the entitlements it
grants now; the open invoice of that subscription whose payment waits for the customer, and
how (`authenticate` when the bank asked for the card holder's authentication, `wait` for a
payment made outside the app, else `pay`); the card that pays; and the payment made outside the
app that the principal waits for (a boleto or Pix voucher of that invoice or of a one-time
purchase, or a debit processing: "waiting for payment").
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.async_payments import (
    PendingPaymentRecord,
    pending_invoice_payment,
    pending_purchase,
)
from services.billing.catalog import PlanRecord, plan_of_price
from services.billing.customers import customer_currency
from services.billing.entitlements import EntitlementRecord, list_entitlements
from services.billing.invoices import InvoiceRecord, PaymentAction, awaiting_payment, payment_action
from services.billing.payment_methods import PaymentMethodRecord, default_card
from services.billing.subscriptions import SubscriptionRecord, list_subscriptions
from services.common.subscription_statuses import LIVE_STATUSES


@dataclass(frozen=True, slots=True)
class InvoiceAction:
    invoice: InvoiceRecord
    action: PaymentAction


@dataclass(frozen=True, slots=True)
class Overview:
    subscription: SubscriptionRecord | None
    plan: PlanRecord | None
    entitlements: list[EntitlementRecord]
    invoice_action: InvoiceAction | None
    default_payment_method: PaymentMethodRecord | None
    # Waiting for a payment made outside the app: the invoice's, else a purchase's.
    pending_payment: PendingPaymentRecord | None = None


async def billing_overview(
    *, engine: AsyncEngine, principal: Principal, grace: timedelta
) -> Overview:
    """The principal's billing overview, from the mirror."""
    live = next(
        (
            subscription
            for subscription in await list_subscriptions(engine=engine, principal=principal)
            if subscription.status in LIVE_STATUSES
        ),
        None,
    )
    async with engine.connect() as conn:
        plan = None
        if live is not None and live.price_id is not None:
            # In the customer's currency, the one its subscriptions bill in.
            currency = await customer_currency(conn, principal)
            plan = await plan_of_price(conn, live.price_id, currency)
        waiting = None if live is None else await awaiting_payment(conn, principal, live.id)
        card = await default_card(conn, principal, None if live is None else live.id)
        now = datetime.now(UTC)
        pending = None if waiting is None else pending_invoice_payment(waiting, now)
        if pending is None:
            pending = await pending_purchase(conn, principal, now)
    return Overview(
        subscription=live,
        plan=plan,
        entitlements=await list_entitlements(engine=engine, principal=principal, grace=grace),
        invoice_action=None
        if waiting is None
        else InvoiceAction(
            waiting,
            payment_action(
                None if waiting.last_payment is None else waiting.last_payment.status,
                None if waiting.last_payment is None else waiting.last_payment.method,
            ),
        ),
        default_payment_method=card,
        pending_payment=pending,
    )
