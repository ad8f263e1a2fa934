"""Parameter parsing: form-encoded values arrive as strings; a bad one is Stripe's 400."""

from collections.abc import Mapping
from typing import Any

from localstripe.errors import UserError
from localstripe.resources import try_convert_to_bool, try_convert_to_int

INTERVALS = ("day", "week", "month", "year")


def param_error(param: str, message: str) -> UserError:
    return UserError(400, message, {"param": param})


def reject_unknown(params: Mapping[str, Any], parent: str | None = None) -> None:
    if params:
        name = next(iter(params))
        if parent is not None:
            name = f"{parent}[{name}]"
        raise param_error(name, f"Received unknown parameter: {name}")


def as_bool(param: str, value: Any) -> bool:
    converted = try_convert_to_bool(value)
    if not isinstance(converted, bool):
        raise param_error(param, f"Invalid boolean: {value}")
    return converted


def as_int(param: str, value: Any, *, minimum: int) -> int:
    converted = try_convert_to_int(value)
    if isinstance(converted, bool) or not isinstance(converted, int):
        raise param_error(param, f"Invalid integer: {value}")
    if converted < minimum:
        raise param_error(param, f"This value must be greater than or equal to {minimum}.")
    return converted


def as_str(param: str, value: Any, *, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise param_error(param, f"Invalid string: {value!r}")
    if choices is not None and value not in choices:
        raise param_error(param, f"Invalid {param}: must be one of {', '.join(choices)}")
    return value


def as_optional_str(param: str, value: Any) -> str | None:
    """A string parameter that may be unset: absent or `""`."""
    return None if value is None or value == "" else as_str(param, value)


def as_metadata(value: Any) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise param_error("metadata", "Invalid metadata: expected a hash of strings")
    return dict(value)


def merged_metadata(current: Mapping[str, str], update: Any) -> dict[str, str]:
    """Stripe's update semantics: keys merge, an empty value deletes, `""` clears all."""
    if update == "":
        return {}
    merged = {**current, **as_metadata(update)}
    return {key: value for key, value in merged.items() if value != ""}


def as_currency(value: Any) -> str:
    currency = as_str("currency", value).lower()
    if len(currency) != 3 or not currency.isalpha():
        raise param_error("currency", f"Invalid currency: {value}")
    return currency
