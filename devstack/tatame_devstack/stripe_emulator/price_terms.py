"""The terms of a price (`POST /v1/prices`, a product's `default_price_data`): its amount per
unit, its tiers, or the amount the customer chooses; recurring or one-time."""

from typing import Any

from tatame_devstack.stripe_emulator.currencies import parse_currency_options
from tatame_devstack.stripe_emulator.meters import Meter
from tatame_devstack.stripe_emulator.params import (
    INTERVALS,
    as_bool,
    as_currency,
    as_int,
    as_metadata,
    as_optional_str,
    as_str,
    param_error,
    reject_unknown,
)

USAGE_TYPES = ("licensed", "metered")
TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")


def _as_recurring(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise param_error("recurring", "Invalid recurring: expected a hash")
    params = dict(value)
    if "interval" not in params:
        raise param_error("recurring[interval]", "Missing required param: recurring[interval].")
    recurring = {
        "interval": as_str("recurring[interval]", params.pop("interval"), choices=INTERVALS),
        "interval_count": as_int(
            "recurring[interval_count]", params.pop("interval_count", 1), minimum=1
        ),
        "meter": as_optional_str("recurring[meter]", params.pop("meter", None)),
        "trial_period_days": None,
        "usage_type": as_str(
            "recurring[usage_type]", params.pop("usage_type", "licensed"), choices=USAGE_TYPES
        ),
    }
    reject_unknown(params, parent="recurring")
    if (recurring["usage_type"] == "metered") != (recurring["meter"] is not None):
        raise param_error(
            "recurring[meter]",
            "A metered price needs a billing meter (`recurring[meter]`); a licensed one has none.",
        )
    if isinstance(meter := recurring["meter"], str):
        Meter._api_retrieve(meter)  # Stripe's 404 for an unknown meter
    return recurring


def _as_tiers(value: Any) -> list[dict[str, Any]]:
    """`tiers`: each up to a quantity (the last `inf`), with a unit and/or a flat amount."""
    if not isinstance(value, list) or not value:
        raise param_error("tiers", "A tiered price needs tiers.")
    tiers = []
    for index, tier in enumerate(value):
        param = f"tiers[{index}]"
        params = dict(tier) if isinstance(tier, dict) else {}
        last = index == len(value) - 1
        up_to = params.pop("up_to", None)
        if (up_to == "inf") != last:
            raise param_error(f"{param}[up_to]", "Only the last tier goes up to `inf`.")
        amounts = {
            name: None
            if params.get(name) is None
            else as_int(f"{param}[{name}]", params.pop(name), minimum=0)
            for name in ("unit_amount", "flat_amount")
        }
        reject_unknown({k: v for k, v in params.items() if v is not None}, parent=param)
        if amounts == {"unit_amount": None, "flat_amount": None}:
            raise param_error(param, "A tier needs unit_amount or flat_amount.")
        tiers.append(
            {
                **amounts,
                "flat_amount_decimal": None
                if amounts["flat_amount"] is None
                else str(amounts["flat_amount"]),
                "unit_amount_decimal": None
                if amounts["unit_amount"] is None
                else str(amounts["unit_amount"]),
                "up_to": None if last else as_int(f"{param}[up_to]", up_to, minimum=1),
            }
        )
    return tiers


def _as_custom_unit_amount(value: Any) -> dict[str, Any]:
    params = dict(value) if isinstance(value, dict) else {}
    if not as_bool("custom_unit_amount[enabled]", params.pop("enabled", None)):
        raise param_error("custom_unit_amount[enabled]", "custom_unit_amount needs enabled=true.")
    bounds = {
        name: None
        if params.get(name) is None
        else as_int(f"custom_unit_amount[{name}]", params.pop(name), minimum=0)
        for name in ("maximum", "minimum", "preset")
    }
    reject_unknown(params, parent="custom_unit_amount")
    return bounds


def price_terms(
    currency: Any = None,
    unit_amount: Any = None,
    recurring: Any = None,
    tax_behavior: Any = "unspecified",
    metadata: Any = None,
    billing_scheme: Any = "per_unit",
    tiers: Any = None,
    tiers_mode: Any = None,
    custom_unit_amount: Any = None,
    currency_options: Any = None,
    **unknown: Any,
) -> dict[str, Any]:
    """Validate the terms shared by `POST /v1/prices` and a product's `default_price_data`: a
    per-unit amount, tiers (`billing_scheme=tiered`), or an amount the customer chooses
    (`custom_unit_amount`, one-time prices only); per-unit ones maybe in other currencies too
    (`currency_options`)."""
    reject_unknown(unknown)
    if currency is None:
        raise param_error("currency", "Missing required param: currency.")
    scheme = as_str("billing_scheme", billing_scheme, choices=("per_unit", "tiered"))
    parsed_recurring = None if recurring is None else _as_recurring(recurring)
    custom = None if custom_unit_amount is None else _as_custom_unit_amount(custom_unit_amount)
    if custom is not None and (parsed_recurring is not None or unit_amount is not None):
        raise param_error(
            "custom_unit_amount", "custom_unit_amount is for one-time prices without unit_amount."
        )
    parsed_tiers = None
    if scheme == "tiered":
        if unit_amount is not None:
            raise param_error("unit_amount", "A tiered price has no unit_amount.")
        parsed_tiers = _as_tiers(tiers)
        tiers_mode = as_str("tiers_mode", tiers_mode, choices=("graduated", "volume"))
    elif tiers is not None or tiers_mode is not None:
        raise param_error("tiers", "Tiers need billing_scheme=tiered.")
    elif unit_amount is None and custom is None:
        raise param_error("unit_amount", "Missing required param: unit_amount.")
    parsed_currency = as_currency(currency)
    return {
        "currency": parsed_currency,
        "currency_options": parse_currency_options(
            currency_options,
            currency=parsed_currency,
            per_unit=scheme == "per_unit" and custom is None,
        ),
        "unit_amount": None
        if unit_amount is None
        else as_int("unit_amount", unit_amount, minimum=0),
        "billing_scheme": scheme,
        "tiers": parsed_tiers,
        "tiers_mode": tiers_mode,
        "custom_unit_amount": custom,
        "recurring": parsed_recurring,
        "tax_behavior": as_str("tax_behavior", tax_behavior, choices=TAX_BEHAVIORS),
        "metadata": as_metadata(metadata),
    }
