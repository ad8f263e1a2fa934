"""Invoice previews (`POST /v1/invoices/create_preview`) of a change of a subscription's item,
or of a new subscription's first invoice (with its `discounts`): the invoice it leads to,
rendered as an invoice and stored nowhere."""

import time
from typing import Any

import stripe
from localstripe.resources import Customer, Plan, random_id

from tatame_devstack.stripe_emulator.currencies import customer_currency
from tatame_devstack.stripe_emulator.discounts import (
    checked_discounts,
    discount_amounts,
    live_discounts,
)
from tatame_devstack.stripe_emulator.invoices import (
    LINE,
    discount_amounts_of,
    invoice_values,
    line_values,
    subscription_item_parent,
    subscription_parent,
)
from tatame_devstack.stripe_emulator.params import as_int, as_str, param_error, reject_unknown
from tatame_devstack.stripe_emulator.prorations import (
    TIMES,
    add_interval,
    interval_changes,
    new_terms,
    proration_lines,
)
from tatame_devstack.stripe_emulator.render import render_list, shape
from tatame_devstack.stripe_emulator.subscription_params import first_item
from tatame_devstack.stripe_emulator.subscriptions import (
    PRORATION_BEHAVIORS,
    PriceSubscription,
    subscription_named,
)
from tatame_devstack.stripe_emulator.tax import (
    automatic_tax_enabled,
    automatic_tax_of,
    customer_location,
    tax_amount,
    tax_entries,
    taxable_amounts,
)


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
    parent = subscription_item_parent(
        subscription=subscription.id,
        subscription_item=subscription.items._list[0].id,
        proration=proration,
        invoice_item=None,
    )
    return line_values(
        id="il_tmp_" + random_id(14),
        amount=amount,
        description=description,
        plan=plan,
        currency=plan.currency,
        quantity=quantity,
        period={"start": period[0], "end": period[1]},
        parent=parent,
        invoice=None,
        subscription=subscription.id,
    )


def _rendered(
    *,
    lines: list[dict[str, Any]],
    discounts: list[tuple[str, int]],
    customer: str,
    currency: str,
    parent: dict[str, Any] | None,
    now: int,
    taxed: bool,
) -> dict[str, Any]:
    """The preview invoice of `lines`, less `discounts` (id and amount each), with Stripe Tax's
    tax on what is left of each line when `taxed` (none while the customer has no location:
    `automatic_tax.status` says `requires_location_inputs`)."""
    subtotal = sum(line["amount"] for line in lines)
    discount = sum(amount for _, amount in discounts)
    location = customer_location(customer) if taxed else None
    taxables = taxable_amounts([line["amount"] for line in lines], discount)
    for line, taxable in zip(lines, taxables, strict=True):
        line["taxes"] = tax_entries(LINE.Tax, taxable, location)
    tax = sum(tax_amount(taxable, location) for taxable in taxables)
    total = subtotal - discount + tax
    values = invoice_values(
        id="upcoming_in_" + random_id(14),
        amount_due=max(0, total),
        amount_paid=0,
        amount_remaining=max(0, total),
        attempt_count=0,
        attempted=False,
        automatic_tax=automatic_tax_of(
            stripe.Invoice.AutomaticTax, enabled=taxed, located=location is not None
        ),
        billing_reason="upcoming",
        created=now,
        currency=currency,
        customer=customer,
        discounts=[discount for discount, _ in discounts],
        lines=render_list("/v1/invoices/create_preview/lines", lines),
        parent=parent,
        period_end=max(line["period"]["end"] for line in lines),
        period_start=min(line["period"]["start"] for line in lines),
        status="draft",
        status_transitions=shape(stripe.Invoice.StatusTransitions, {}),
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal,
        total=total,
        total_discount_amounts=discount_amounts_of(discounts),
        total_excluding_tax=total - tax,
        total_taxes=tax_entries(stripe.Invoice.TotalTax, sum(taxables), location, amount=tax),
    )
    return shape(stripe.Invoice, values)


def _first_invoice(
    customer: str, details: dict[str, Any], discounts: Any, currency: Any, *, taxed: bool
) -> dict[str, Any]:
    """The first invoice of a new subscription of `subscription_details[items]` (no trial) in
    `currency` (default: the customer's, else the price's), with the `discounts` it would redeem,
    checked as creating it would check them; each new discount under a temporary id (a preview
    makes none)."""
    plan, quantity, _ = first_item(
        details.pop("items", None), currency or customer_currency(customer)
    )
    reject_unknown(details, parent="subscription_details")
    subtotal = plan.amount * quantity
    checked = checked_discounts(
        discounts,
        customer=customer,
        product=plan.product,
        currency=plan.currency,
        subtotal=subtotal,
    )
    now = int(time.time())
    line = line_values(
        id="il_tmp_" + random_id(14),
        amount=subtotal,
        description=f"{quantity} {TIMES} {plan.name}",
        plan=plan,
        currency=plan.currency,
        quantity=quantity,
        period={"start": now, "end": add_interval(now, plan.interval, plan.interval_count)},
        parent=subscription_item_parent(
            subscription=None,
            subscription_item="si_tmp_" + random_id(14),
            proration=False,
            invoice_item=None,
        ),
        invoice=None,
        subscription=None,
    )
    left, amounts = subtotal, []
    for redemption in checked:
        amount = min(left, redemption.coupon.amount_of(subtotal, plan.currency))
        left -= amount
        existing = redemption.existing
        amounts.append((existing.id if existing else "di_tmp_" + random_id(14), amount))
    return _rendered(
        lines=[line],
        discounts=amounts,
        customer=customer,
        currency=plan.currency,
        parent=None,
        now=now,
        taxed=taxed,
    )


def preview_invoice(
    customer: Any = None,
    subscription: Any = None,
    subscription_details: Any = None,
    discounts: Any = None,
    currency: Any = None,
    automatic_tax: Any = None,
    **unknown: Any,
) -> dict[str, Any]:
    """`POST /v1/invoices/create_preview` for a change of a subscription's item. With
    `always_invoice`, the prorations billed now; otherwise the next invoice: prorations (unless
    `none`) and the next period at the new terms, less the subscription's discounts. An interval
    change bills the prorations and a new period now. Without `subscription`, the first invoice
    of a new one. With `automatic_tax[enabled]` (for an existing subscription, its own by
    default), Stripe Tax's tax."""
    reject_unknown(unknown)
    taxed = automatic_tax_enabled("automatic_tax", automatic_tax)
    if subscription_details is not None and not isinstance(subscription_details, dict):
        raise param_error("subscription_details", "Invalid subscription_details: expected a hash")
    if subscription is None:
        buyer = Customer._api_retrieve(as_str("customer", customer)).id
        return _first_invoice(
            buyer, dict(subscription_details or {}), discounts, currency, taxed=taxed
        )
    if discounts is not None or currency is not None:
        raise param_error(
            "discounts" if currency is None else "currency",
            "The emulator previews the discounts and currency of a new subscription.",
        )
    found = subscription_named("subscription", subscription)
    if found.customer != as_str("customer", customer):
        raise param_error("customer", "The subscription belongs to another customer.")
    details = dict(subscription_details or {})
    item = found.items._list[0]
    plan, quantity = new_terms(found, details.pop("items", None)) or (item.plan, item.quantity)
    behavior = as_str(
        "subscription_details[proration_behavior]",
        details.pop("proration_behavior", "create_prorations"),
        choices=PRORATION_BEHAVIORS,
    )
    now = int(time.time())
    at = as_int(
        "subscription_details[proration_date]", details.pop("proration_date", now), minimum=1
    )
    reject_unknown(details, parent="subscription_details")

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
            for line in proration_lines(found, plan, quantity, at)
        ]
    if charged and interval_changes(item.plan, plan):
        start: int | None = at
    elif behavior == "always_invoice" and charged:
        start = None
    else:
        start = found.current_period_end
    if start is not None:
        end = add_interval(start, plan.interval, plan.interval_count)
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
    subtotal = sum(line["amount"] for line in lines)
    return _rendered(
        lines=lines,
        discounts=discount_amounts(
            live_discounts(found._discount_ids, now),
            subtotal=max(0, subtotal),
            currency=plan.currency,
        ),
        customer=found.customer,
        currency=plan.currency,
        parent=subscription_parent(found.id, found.metadata),
        now=now,
        taxed=found._automatic_tax if automatic_tax is None else taxed,
    )
