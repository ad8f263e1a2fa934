"""Check a Stripe API request against stripe-python's request types, as Stripe checks it.

The route table comes from the SDK's service classes (`stripe/**/_*_service.py`): each method
calls `self._request("post", "/v1/...{id}...", ...)` and annotates `params: "XxxParams"`, a
`TypedDict` in `stripe.params`. Parameters arrive form-encoded (`items[0][price]=...`,
`expand[]=x`) and are decoded into nested dicts before the check.
"""

import ast
import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import stripe

from ._schema import (
    AnyOf,
    AnyValue,
    ArrayOf,
    Enum,
    MapOf,
    Node,
    Nullable,
    Scalar,
    Shape,
    shape_of,
)
from ._violations import Violation

EMULATOR_ONLY_PREFIXES = ("/_testing/", "/_config/")
_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Route:
    method: str
    template: tuple[str, ...]  # path segments; "{…}" for an id
    params_module: str | None
    params_class: str | None

    @property
    def params(self) -> Shape | None:
        if self.params_module is None or self.params_class is None:
            return None
        module = importlib.import_module(self.params_module)
        return shape_of(getattr(module, self.params_class))


def check_request(
    method: str, path: str, query: Iterable[tuple[str, str]], form: Iterable[tuple[str, str]]
) -> list[Violation]:
    """Violations in one request: its route, then its parameters (query string and form body)."""
    if not is_stripe_api_path(path):
        return []
    route = find_route(method, path)
    if route is None:
        return [Violation(f"{method.upper()} {path}", "unknown_route", "no such Stripe endpoint")]
    params = route.params
    if params is None:
        return []
    violations: list[Violation] = []
    _check_shape(params, decode_form([*query, *form]), "", violations)
    return violations


def is_stripe_api_path(path: str) -> bool:
    """A path of Stripe's API (`/v1/...`), as opposed to the emulator's own (`/_testing/...`)."""
    return path.startswith("/v1/") and not path.startswith(EMULATOR_ONLY_PREFIXES)


def stripe_error_body(violation: Violation) -> dict[str, Any]:
    """Stripe's 400 body for a request violation."""
    return {
        "error": {
            "type": "invalid_request_error",
            "param": violation.path,
            "message": violation.message,
        }
    }


# --- Routes -------------------------------------------------------------------------------------


def find_route(method: str, path: str) -> Route | None:
    """The SDK route for `method path`: literal segments win over ids, left to right."""
    segments = tuple(path.strip("/").split("/"))
    best: Route | None = None
    best_rank: tuple[bool, ...] = ()
    for route in _routes().get((method.lower(), len(segments)), ()):
        rank = []
        for expected, actual in zip(route.template, segments, strict=True):
            literal = not expected.startswith("{")
            if literal and expected != actual:
                break
            rank.append(literal)
        else:
            if best is None or tuple(rank) > best_rank:
                best, best_rank = route, tuple(rank)
    return best


@cache
def _routes() -> dict[tuple[str, int], list[Route]]:
    package = Path(stripe.__file__).parent
    table: dict[tuple[str, int], list[Route]] = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for source in sorted(package.rglob("_*_service.py")):
        if "v2" in source.relative_to(package).parts:
            continue
        for route in _service_routes(source):
            if route.template[0] != "v1" or (route.method, route.template) in seen:
                continue
            seen.add((route.method, route.template))
            table.setdefault((route.method, len(route.template)), []).append(route)
    return table


def _service_routes(source: Path) -> Iterable[Route]:
    tree = ast.parse(source.read_text())
    imports = {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        call = next(
            (
                node
                for node in ast.walk(function)
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "_request"
            ),
            None,
        )
        if call is None or len(call.args) < 2:
            continue
        method, template = call.args[0], _template(call.args[1])
        if not isinstance(method, ast.Constant) or not isinstance(method.value, str):
            continue
        if template is None:
            continue
        params_class = _params_class(function)
        yield Route(
            method=method.value,
            template=tuple(template.strip("/").split("/")),
            params_module=imports.get(params_class) if params_class else None,
            params_class=params_class,
        )


def _template(node: ast.expr) -> str | None:
    """`"/v1/x"` or `"/v1/x/{id}".format(...)`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        node = node.func.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _params_class(function: ast.FunctionDef) -> str | None:
    """The name in `params: "X"` or `params: Optional["X"]`."""
    for argument in function.args.args + function.args.kwonlyargs:
        if argument.arg != "params" or argument.annotation is None:
            continue
        annotation = argument.annotation
        if isinstance(annotation, ast.Subscript):
            annotation = annotation.slice
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            return annotation.value
    return None


# --- Form decoding ------------------------------------------------------------------------------

_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding into nested dicts: `a[b][0][c]=v` -> {"a": {"b": {"0": {"c": v}}}}.

    `a[]=x` appends to a list; numeric keys stay dict keys until the check knows a list is
    expected (a metadata key may be "0").
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            root[key] = value
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        container: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            following = None if last else parts[index + 1]
            child: Any = value if last else ([] if following == "" else {})
            if part == "" and isinstance(container, list):
                container.append(child)
                container = child
            elif isinstance(container, dict):
                if last:
                    container[part] = value
                else:
                    container = container.setdefault(part, child)
            else:
                break  # `a=x&a[b]=y`: a scalar and a hash under one name; the scalar wins
    return root


# --- Checking -----------------------------------------------------------------------------------


def _check_shape(shape: Shape, value: dict[str, Any], prefix: str, out: list[Violation]) -> None:
    fields = shape.fields
    for key, element in value.items():
        name = _param(prefix, key)
        node = fields.get(key)
        if node is None:
            out.append(Violation(name, "unknown_parameter", f"Received unknown parameter: {name}"))
        else:
            _check(node, element, name, out)
    for key in sorted(shape.required - value.keys()):
        name = _param(prefix, key)
        out.append(Violation(name, "missing_parameter", f"Missing required param: {name}."))


def _check(node: Node, value: Any, name: str, out: list[Violation]) -> None:
    match node:
        case Nullable(inner):
            _check(inner, value, name, out)
        case Scalar(kind):
            if (message := _scalar_error(kind, value)) is not None:
                out.append(Violation(name, "invalid_parameter", message))
        case Enum(values):
            if value not in [str(v) for v in values]:
                allowed = _one_of([str(v) for v in values if v != ""])
                out.append(
                    Violation(
                        name, "invalid_parameter", f"Invalid {name}: must be one of {allowed}"
                    )
                )
        case ArrayOf(item):
            items = _as_list(value)
            if items is None:
                out.append(Violation(name, "invalid_parameter", f"Invalid array: {name}"))
                return
            for index, element in enumerate(items):
                _check(item, element, f"{name}[{index}]", out)
        case MapOf() | Shape() if not isinstance(value, dict):
            out.append(Violation(name, "invalid_parameter", f"Invalid object: {name}"))
        case MapOf(inner):
            for key, element in value.items():
                _check(inner, element, f"{name}[{key}]", out)
        case Shape():
            _check_shape(node, value, name, out)
        case AnyOf(options):
            _check_any_of(options, value, name, out)
        case AnyValue():
            pass


def _check_any_of(options: tuple[Node, ...], value: Any, name: str, out: list[Violation]) -> None:
    """Accept what one option accepts; otherwise report the option that best fits the value."""
    failures = []
    for option in options:
        attempt: list[Violation] = []
        _check(option, value, name, attempt)
        if not attempt:
            return
        failures.append((_fit(option, value), attempt))
    out.extend(max(failures, key=lambda failure: failure[0])[1])


def _fit(node: Node, value: Any) -> tuple[bool, int]:
    """How well an option explains a refused value: its shape first, then how telling it is."""
    if isinstance(node, Enum) and node.values == ("",):
        return False, 0  # Stripe's "unset" explains no other value
    structured = isinstance(node, Shape | MapOf | ArrayOf)
    same_shape = structured == isinstance(value, dict | list)
    return same_shape, 2 if isinstance(node, Scalar) else 1


def _scalar_error(kind: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"Invalid {kind}: {value!r}"
    if kind in ("integer", "int64_string") and not _INTEGER.fullmatch(value):
        return f"Invalid integer: {value}"
    if kind == "boolean" and value not in ("true", "false"):
        return f"Invalid boolean: {value}"
    if kind in ("number", "decimal_string"):
        try:
            Decimal(value)
        except InvalidOperation:
            return f"Invalid decimal: {value}"
    return None


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(key.isdigit() for key in value):
        return [value[key] for key in sorted(value, key=int)]
    return None


def _one_of(values: list[str]) -> str:
    if not values:
        return '""'
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + f", or {values[-1]}"


def _param(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key
