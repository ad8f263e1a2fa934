"""Invoices, their lines and their payments as Stripe renders them at the pinned API version,
on localstripe's classes (its subscriptions and payment intents drive them). Since 2025-03-31
an invoice names its subscription under `parent` and its PaymentIntent only through its
`payments` (and, when expanded, its `confirmation_secret`)."""

from typing import Any

import stripe
from aiohttp import web
from localstripe import server as localstripe_server
from localstripe.errors import UserError
from localstripe.resources import (
    Invoice,
    InvoiceItem,
    InvoiceLineItem,
    List,
    PaymentIntent,
    Plan,
    Subscription,
)

from tatame_devstack.stripe_emulator.discounts import extend_invoice_totals, invoice_discounts
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.invoice_tax import (
    extend_invoice_tax,
    invoice_automatic_tax,
    line_taxes,
    total_taxes,
)
from tatame_devstack.stripe_emulator.params import as_str, reject_unknown
from tatame_devstack.stripe_emulator.render import expanded, expanded_under, render_list, shape
from tatame_devstack.stripe_emulator.state import stored

INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
HOSTED_INVOICES = "https://invoice.stripe-emulator.invalid/i"
INVOICE = stripe.Invoice
LINE = stripe.InvoiceLineItem
DETAILS = LINE.Parent.SubscriptionItemDetails


def invoice_values(**given: Any) -> dict[str, Any]:
    """The fields every invoice has the same way here (no credit note or shipping; no tax or
    discount unless `given`), with `given`; for `shape(stripe.Invoice, …)`."""
    return {
        "object": "invoice",
        "amount_overpaid": 0,
        "amount_shipping": 0,
        "automatic_tax": shape(INVOICE.AutomaticTax, {"enabled": False}),
        "collection_method": "charge_automatically",
        "customer_tax_ids": [],
        "default_tax_rates": [],
        "discounts": [],
        "issuer": shape(INVOICE.Issuer, {"type": "self"}),
        "livemode": False,
        "metadata": {},
        "payment_settings": shape(INVOICE.PaymentSettings, {}),
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "starting_balance": 0,
        "total_discount_amounts": [],
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        **given,
    }


def discount_amounts_of(discounts: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """An invoice's `total_discount_amounts` from (discount id, amount) pairs."""
    return [
        shape(INVOICE.TotalDiscountAmount, {"amount": amount, "discount": discount})
        for discount, amount in discounts
    ]


def subscription_parent(subscription_id: str, metadata: dict[str, str]) -> dict[str, Any]:
    """An invoice's `parent` when it bills a subscription."""
    details = {"subscription": subscription_id, "metadata": dict(metadata)}
    return shape(
        INVOICE.Parent,
        {
            "type": "subscription_details",
            "subscription_details": shape(INVOICE.Parent.SubscriptionDetails, details),
        },
    )


def line_values(
    *,
    id: str,
    amount: int,
    description: str | None,
    plan: Plan | None,
    currency: str,
    quantity: int,
    period: dict[str, int],
    parent: dict[str, Any],
    invoice: str | None,
    subscription: str | None,
    taxes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A line item, rendered (stored lines and preview lines alike), with its `taxes`."""
    pricing = None
    if plan is not None:
        pricing = shape(
            LINE.Pricing,
            {
                "type": "price_details",
                "price_details": shape(
                    LINE.Pricing.PriceDetails, {"price": plan.id, "product": plan.product}
                ),
                "unit_amount_decimal": str(plan.amount),
            },
        )
    return shape(
        LINE,
        {
            "id": id,
            "object": "line_item",
            "amount": amount,
            "currency": currency,
            "description": description,
            "discount_amounts": [],
            "discountable": True,
            "discounts": [],
            "invoice": invoice,
            "livemode": False,
            "metadata": {},
            "parent": parent,
            "period": shape(LINE.Period, period),
            "pretax_credit_amounts": [],
            "pricing": pricing,
            "quantity": quantity,
            "subscription": subscription,
            "subtotal": amount,
            "taxes": taxes or [],
        },
    )


def subscription_item_parent(
    *, subscription: str | None, subscription_item: str, proration: bool, invoice_item: str | None
) -> dict[str, Any]:
    """A line's `parent` when it bills a subscription item (a period, or a proration)."""
    details = {
        "invoice_item": invoice_item,
        "proration": proration,
        "proration_details": shape(DETAILS.ProrationDetails, {"credited_items": None}),
        "subscription": subscription,
        "subscription_item": subscription_item,
    }
    return shape(
        LINE.Parent,
        {"type": "subscription_item_details", "subscription_item_details": shape(DETAILS, details)},
    )


def _line_parent(line: InvoiceLineItem) -> dict[str, Any]:
    if line.type == "subscription":
        return subscription_item_parent(
            subscription=line.subscription,
            subscription_item=line.subscription_item,
            proration=False,
            invoice_item=None,
        )
    item = InvoiceItem._api_retrieve(line.invoice_item)
    subscription_item = getattr(item, "_subscription_item", None)
    if line.subscription is not None and subscription_item is not None:
        return subscription_item_parent(
            subscription=line.subscription,
            subscription_item=subscription_item,
            proration=line.proration,
            invoice_item=line.invoice_item,
        )
    details = LINE.Parent.InvoiceItemDetails
    return shape(
        LINE.Parent,
        {
            "type": "invoice_item_details",
            "invoice_item_details": shape(
                details,
                {
                    "invoice_item": line.invoice_item,
                    "proration": line.proration,
                    "proration_details": shape(details.ProrationDetails, {"credited_items": None}),
                    "subscription": line.subscription,
                },
            ),
        },
    )


def _export_line(line: InvoiceLineItem, expand: Any = None) -> dict[str, Any]:
    values = line_values(
        id=line.id,
        amount=line.amount,
        description=line.description,
        plan=line.plan,
        currency=line.currency,
        quantity=line.quantity,
        period=line.period,
        parent=_line_parent(line),
        invoice=line.invoice,
        subscription=line.subscription,
        taxes=line_taxes(line),
    )
    return expanded(values, expand or [])


PAYMENT_PREFIX = "inpay_"


def _payment(invoice: Invoice) -> dict[str, Any] | None:
    """The invoice's payment: the PaymentIntent it collects with, if any (one per invoice
    here; Stripe allows several partial ones)."""
    if invoice.payment_intent is None:
        return None
    intent = PaymentIntent._api_retrieve(invoice.payment_intent)
    status = {"succeeded": "paid", "canceled": "canceled"}.get(intent.status, "open")
    paid_at = invoice.status_transitions["paid_at"] if status == "paid" else None
    payment = {
        "id": PAYMENT_PREFIX + intent.id.removeprefix("pi_"),
        "object": "invoice_payment",
        "amount_paid": intent.amount if status == "paid" else None,
        "amount_requested": intent.amount,
        "created": intent.created,
        "currency": intent.currency,
        "invoice": invoice.id,
        "is_default": True,
        "livemode": False,
        "payment": shape(
            stripe.InvoicePayment.Payment,
            {"type": "payment_intent", "payment_intent": intent.id},
        ),
        "status": status,
        "status_transitions": shape(stripe.InvoicePayment.StatusTransitions, {"paid_at": paid_at}),
    }
    return shape(stripe.InvoicePayment, payment)


def _payments(url: str, invoice: Invoice | None) -> dict[str, Any]:
    payment = None if invoice is None else _payment(invoice)
    return render_list(url, [] if payment is None else [payment])


def _invoice_paid_by(payment: Any) -> Invoice | None:
    """`payment[type]=payment_intent&payment[payment_intent]=pi_…`: the invoice it pays."""
    if not isinstance(payment, dict):
        raise UserError(400, "Invalid payment: expected a hash", {"param": "payment"})
    payment = dict(payment)
    as_str("payment[type]", payment.pop("type", None), choices=("payment_intent",))
    intent_id = as_str("payment[payment_intent]", payment.pop("payment_intent", None))
    reject_unknown(payment, parent="payment")
    return next((i for i in stored(Invoice.object) if i.payment_intent == intent_id), None)


async def list_invoice_payments(request: web.Request) -> web.StreamResponse:
    """`GET /v1/invoice_payments?invoice=in_…` (the payments of one invoice) or
    `?payment[type]=payment_intent&payment[payment_intent]=pi_…` (the one of a PaymentIntent)."""
    params = localstripe_server.unflatten_data(request.query)
    params.pop("expand", None)
    params.pop("limit", None)  # an invoice here has one payment at most
    if "payment" in params and "invoice" not in params:
        invoice = _invoice_paid_by(params.pop("payment"))
        url = "/v1/invoice_payments"
    else:
        invoice = Invoice._api_retrieve(as_str("invoice", params.pop("invoice", None)))
        url = f"/v1/invoice_payments?invoice={invoice.id}"
    reject_unknown(params)
    return localstripe_server.json_response(_payments(url, invoice))


async def retrieve_invoice_payment(request: web.Request) -> web.StreamResponse:
    """`GET /v1/invoice_payments/{id}`."""
    id = request.match_info["id"]
    intent_id = "pi_" + id.removeprefix(PAYMENT_PREFIX)
    invoice = next((i for i in stored(Invoice.object) if i.payment_intent == intent_id), None)
    if not id.startswith(PAYMENT_PREFIX) or invoice is None:
        raise UserError(404, f"No such invoice payment: '{id}'", {"code": "resource_missing"})
    return localstripe_server.json_response(_payment(invoice))


def _confirmation_secret(invoice: Invoice) -> dict[str, str] | None:
    if invoice._draft or invoice.payment_intent is None:
        return None
    intent = PaymentIntent._api_retrieve(invoice.payment_intent)
    return shape(
        INVOICE.ConfirmationSecret,
        {"client_secret": intent.client_secret, "type": "payment_intent"},
    )


def _export_invoice(invoice: Invoice, expand: Any = None) -> dict[str, Any]:
    expand = expand or []
    finalized = not invoice._draft
    parent = None
    if invoice.subscription is not None:
        metadata = Subscription._api_retrieve(invoice.subscription).metadata
        parent = subscription_parent(invoice.subscription, metadata)
    amount_due, amount_paid = invoice.amount_due, invoice.amount_paid
    lines: List = invoice.lines
    discounts = invoice_discounts(invoice)
    values = invoice_values(
        id=invoice.id,
        amount_due=amount_due,
        amount_paid=amount_paid,
        amount_remaining=amount_due - amount_paid,
        attempt_count=invoice.attempt_count if finalized else 0,
        attempted=invoice.attempted and finalized,
        automatic_tax=invoice_automatic_tax(invoice),
        auto_advance=invoice.status in ("draft", "open") and not invoice._held,
        billing_reason=invoice.billing_reason,
        confirmation_secret=_confirmation_secret(invoice),
        created=invoice.created,
        currency=invoice.currency,
        customer=invoice.customer,
        customer_email=invoice.customer_email,
        description=invoice.description,
        discounts=[discount for discount, _ in discounts],
        effective_at=invoice.status_transitions["finalized_at"],
        ending_balance=invoice.ending_balance if finalized else None,
        hosted_invoice_url=f"{HOSTED_INVOICES}/{invoice.id}" if finalized else None,
        invoice_pdf=f"{HOSTED_INVOICES}/{invoice.id}/pdf" if finalized else None,
        lines=lines._export(expand=expanded_under(expand, "lines")),
        metadata=invoice.metadata,
        next_payment_attempt=None if invoice._held else invoice.next_payment_attempt,
        number=invoice.id.removeprefix("in_")[:8].upper() + "-0001" if finalized else None,
        parent=parent,
        payments=_payments(f"/v1/invoice_payments?invoice={invoice.id}", invoice),
        period_end=invoice.period_end or invoice.created,
        period_start=invoice.period_start or invoice.created,
        starting_balance=invoice.starting_balance,
        status=invoice.status,
        status_transitions=shape(INVOICE.StatusTransitions, invoice.status_transitions),
        subtotal=invoice.subtotal,
        subtotal_excluding_tax=invoice.subtotal,
        total=invoice.total,
        total_discount_amounts=discount_amounts_of(discounts),
        total_excluding_tax=invoice.total - invoice.tax,
        total_taxes=total_taxes(invoice),
        webhooks_delivered_at=invoice.webhooks_delivered_at if finalized else None,
    )
    return expanded(shape(stripe.Invoice, values, expand=expand), expand)


def extend_invoices() -> None:
    """Render localstripe's invoices and their lines as Stripe does at the pinned version (their
    totals less their discounts), list them by `status` too, and send `invoice.paid` (which
    localstripe lacks) when one is paid."""
    paid = Invoice._on_payment_success

    def on_payment_success(invoice: Any) -> None:
        send_event("invoice.paid", invoice)
        paid(invoice)

    extend_invoice_totals()
    extend_invoice_tax()
    listed = Invoice._api_list_all.__func__

    def list_by_status(
        cls: type[Invoice], /, url: str, *, status: Any = None, **params: Any
    ) -> Any:
        page = listed(cls, url, **params)
        if status is not None:
            wanted = as_str("status", status, choices=INVOICE_STATUSES)
            page._list = [invoice for invoice in page._list if invoice.status == wanted]
        return page

    Invoice._api_list_all = classmethod(list_by_status)
    Invoice._export = _export_invoice
    Invoice._on_payment_success = on_payment_success
    InvoiceLineItem._export = _export_line
