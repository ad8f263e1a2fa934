"""The parameters of `POST /v1/subscriptions`, checked as Stripe checks them."""

from typing import Any

from localstripe.resources import Plan

from tatame_devstack.stripe_emulator.catalog import recurring_plan
from tatame_devstack.stripe_emulator.params import (
    as_int,
    as_metadata,
    as_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.prorations import DAY_SECONDS

MAX_TRIAL_DAYS = 730


def first_item(items: Any, currency: Any = None) -> tuple[Plan, int, dict[str, str]]:
    """The plan (in `currency`, if given), quantity and metadata of `items` on create: one item
    with a recurring price."""
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        raise param_error("items", "The emulator creates subscriptions of exactly one item.")
    params = dict(items[0])
    plan = recurring_plan("items[0][price]", params.pop("price", None), currency)
    quantity = as_int("items[0][quantity]", params.pop("quantity", 1), minimum=1)
    metadata = as_metadata(params.pop("metadata", None))
    reject_unknown(params, parent="items[0]")
    return plan, quantity, metadata


def trial_end_of(trial_period_days: Any, trial_end: Any, now: int) -> int | None:
    """When the trial that `trial_period_days` or `trial_end` asks for ends, if any."""
    if trial_period_days is not None and trial_end is not None:
        raise param_error(
            "trial_end", "You may only specify one of trial_end and trial_period_days."
        )
    if trial_period_days is not None:
        days = as_int("trial_period_days", trial_period_days, minimum=0)
        if days > MAX_TRIAL_DAYS:
            raise param_error("trial_period_days", f"Trials last at most {MAX_TRIAL_DAYS} days.")
        return now + days * DAY_SECONDS if days else None
    if trial_end is None or trial_end == "now":
        return None
    return as_int("trial_end", trial_end, minimum=now + 1)


def check_billing_mode(value: Any) -> None:
    """`billing_mode`: the emulator bills in flexible mode, Stripe's default at this version."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise param_error("billing_mode", "Invalid billing_mode: expected a hash")
    params = dict(value)
    as_str("billing_mode[type]", params.pop("type", None), choices=("flexible",))
    flexible = params.pop("flexible", None)
    if flexible is not None:
        if not isinstance(flexible, dict):
            raise param_error("billing_mode[flexible]", "Invalid flexible: expected a hash")
        flexible = dict(flexible)
        as_str(
            "billing_mode[flexible][proration_discounts]",
            flexible.pop("proration_discounts", "included"),
            choices=("included",),
        )
        reject_unknown(flexible, parent="billing_mode[flexible]")
    reject_unknown(params, parent="billing_mode")


def saves_payment_method(value: Any) -> bool:
    """Whether `payment_settings` saves the paying method as the subscription's default."""
    if value is None:
        return False
    if not isinstance(value, dict):
        raise param_error("payment_settings", "Invalid payment_settings: expected a hash")
    settings = dict(value)
    settings.pop("payment_method_types", None)  # read by payment_method_types_of
    saves = as_str(
        "payment_settings[save_default_payment_method]",
        settings.pop("save_default_payment_method", "off"),
        choices=("on_subscription", "off"),
    )
    reject_unknown(settings, parent="payment_settings")
    return saves == "on_subscription"


def payment_method_types_of(payment_settings: Any) -> list[str] | None:
    """`payment_settings[payment_method_types]`: what may pay the invoices (card, boleto);
    None, the account's methods for the currency (what Stripe offers when it is unset)."""
    types = (
        payment_settings.get("payment_method_types") if isinstance(payment_settings, dict) else None
    )
    if types is None or types == "":
        return None
    if not isinstance(types, list) or not types or not set(types) <= {"card", "boleto"}:
        raise param_error(
            "payment_settings[payment_method_types]",
            "The emulator takes card and boleto payments only.",
        )
    return sorted(set(types))


def missing_payment_method_of(trial_settings: Any) -> str:
    """`trial_settings[end_behavior][missing_payment_method]`: what ends a trial without a
    payment method, `create_invoice` (Stripe's default) or `cancel` (the emulator has no
    paused subscriptions)."""
    if trial_settings is None:
        return "create_invoice"
    if not isinstance(trial_settings, dict):
        raise param_error("trial_settings", "Invalid trial_settings: expected a hash")
    settings = dict(trial_settings)
    end_behavior = settings.pop("end_behavior", None)
    reject_unknown(settings, parent="trial_settings")
    if not isinstance(end_behavior, dict):
        raise param_error(
            "trial_settings[end_behavior]", "Missing required param: trial_settings[end_behavior]."
        )
    behavior = dict(end_behavior)
    missing = as_str(
        "trial_settings[end_behavior][missing_payment_method]",
        behavior.pop("missing_payment_method", None),
        choices=("cancel", "create_invoice"),
    )
    reject_unknown(behavior, parent="trial_settings[end_behavior]")
    return missing


def restarts_cycle(billing_cycle_anchor: Any, proration_behavior: str, status: str) -> bool:
    """Whether an update's `billing_cycle_anchor[type]` starts a new period now (`now`) rather
    than keeping it (`unchanged`, or absent). The emulator restarts the cycle of an active or
    past_due subscription only, without prorations (`proration_behavior=none`)."""
    if billing_cycle_anchor is None:
        return False
    if not isinstance(billing_cycle_anchor, dict):
        raise param_error("billing_cycle_anchor", "Invalid billing_cycle_anchor: expected a hash")
    params = dict(billing_cycle_anchor)
    anchor = as_str(
        "billing_cycle_anchor[type]", params.pop("type", None), choices=("now", "unchanged")
    )
    reject_unknown(params, parent="billing_cycle_anchor")
    if anchor == "unchanged":
        return False
    if status not in ("active", "past_due"):
        raise param_error(
            "billing_cycle_anchor", f"The billing cycle of a {status} subscription cannot reset."
        )
    if proration_behavior != "none":
        raise param_error(
            "proration_behavior",
            "The emulator resets the billing cycle only with proration_behavior=none.",
        )
    return True
