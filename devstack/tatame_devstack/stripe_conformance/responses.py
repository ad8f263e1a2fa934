"""Check a Stripe JSON response against stripe-python's resource classes.

Every dict with an `object` name is checked against the SDK class for that name; nested dicts
against the nested class of their annotation. Beyond `_documented.py`, two rules are derived
from the SDK itself: in a hash with a `type` field, a nullable sub-hash may be left out (only the
one for the current type is sent: `payment_method.card`, `next_action.redirect_to_url`), and a
hash declaring the fields of the SDK's `ErrorObject` (`last_payment_error`, ...) carries
only the fields that apply, like an error body.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from stripe._api_version import _ApiVersion
from stripe._error_object import ErrorObject
from stripe._event import Event
from stripe._list_object import ListObject
from stripe._search_result_object import SearchResultObject

from ._documented import INCLUDABLE, may_be_absent
from ._schema import (
    SCALAR_KINDS,
    AnyOf,
    AnyValue,
    ArrayOf,
    Enum,
    Expandable,
    ListOf,
    MapOf,
    Node,
    Nullable,
    Scalar,
    Shape,
    shape_for_object_name,
    shape_of,
)
from ._violations import Kind, Violation

# Fields every deleted object carries (`{"id": ..., "object": ..., "deleted": true}`).
DELETED_FIELDS = frozenset({"id", "object", "deleted"})


@dataclass
class _Walk:
    expanded: frozenset[str]
    violations: list[Violation] = field(default_factory=list)

    def flag(self, path: str, kind: Kind, message: str) -> None:
        self.violations.append(Violation(path, kind, message))


def check_response(
    method: str, path: str, status: int, body: Any, expanded: Iterable[str] = ()
) -> list[Violation]:
    """Violations in one response body of `method path` (`expanded`: the request's `expand[]`).

    The body names its own object; the route only appears in messages about the body as a whole.
    """
    walk = _Walk(_with_prefixes(expanded))
    if isinstance(body, dict) and "error" in body:
        _check_error_body(body, walk)
    elif status >= 400:
        walk.flag("$", "wrong_type", f"{method} {path}: a {status} without Stripe's error body")
    elif not isinstance(body, dict) or not isinstance(body.get("object"), str):
        walk.flag("$", "wrong_type", f"{method} {path}: not a Stripe object with an `object` name")
    else:
        _check_resource(body, body["object"], "", walk)
    return walk.violations


def _with_prefixes(expanded: Iterable[str]) -> frozenset[str]:
    """`a.b.c` expands `a` and `a.b` on the way."""
    paths: set[str] = set()
    for path in expanded:
        parts = path.split(".")
        paths.update(".".join(parts[: index + 1]) for index in range(len(parts)))
    return frozenset(paths)


def _check_error_body(body: dict[str, Any], walk: _Walk) -> None:
    for key in body.keys() - {"error"}:
        walk.flag(key, "unknown_field", "an error body has only `error`")
    error = body["error"]
    if not isinstance(error, dict):
        walk.flag("error", "wrong_type", "`error` must be an object")
        return
    shape = shape_of(ErrorObject)
    _check_fields(shape, error, "error", "", walk, optional=shape.fields.keys() - {"type"})


def _check_resource(value: Any, path: str, expand_path: str, walk: _Walk) -> None:
    """A value that must name its own class in `object` (a response root, `event.data.object`)."""
    if not isinstance(value, dict) or not isinstance(value.get("object"), str):
        walk.flag(path, "wrong_type", "expected a Stripe object with an `object` name")
        return
    name = value["object"]
    if name in ("list", "search_result"):
        _check(ListOf(AnyValue(), name), value, path, expand_path, walk)
        return
    shape = shape_for_object_name(name)
    if shape is None:
        walk.flag(path, "unknown_object", f"stripe-python knows no object named {name!r}")
        return
    _check_shape(shape, value, path, expand_path, walk)


def _check(node: Node, value: Any, path: str, expand_path: str, walk: _Walk) -> None:
    match node:
        case Nullable(inner):
            if value is not None:
                _check(inner, value, path, expand_path, walk)
        case Scalar(kind):
            if not _scalar_ok(kind, value):
                walk.flag(path, "wrong_type", f"expected {kind}, got {_describe(value)}")
        case Enum(values):
            if not any(value == v and type(value) is type(v) for v in values):
                allowed = ", ".join(map(str, values))
                walk.flag(path, "bad_enum", f"{value!r} is not one of: {allowed}")
        case ArrayOf(item):
            if not isinstance(value, list):
                walk.flag(path, "wrong_type", f"expected an array, got {_describe(value)}")
                return
            for index, element in enumerate(value):
                _check(item, element, f"{path}[{index}]", expand_path, walk)
        case MapOf(inner):
            if not isinstance(value, dict):
                walk.flag(path, "wrong_type", f"expected a hash, got {_describe(value)}")
                return
            for key, element in value.items():
                _check(inner, element, f"{path}.{key}", expand_path, walk)
        case Expandable(target):
            _check_expandable(target, value, path, expand_path, walk)
        case ListOf(item, object_name):
            _check_list(item, object_name, value, path, expand_path, walk)
        case AnyOf(options):
            _check_any_of(options, value, path, expand_path, walk)
        case Shape():
            if not isinstance(value, dict):
                walk.flag(path, "wrong_type", f"expected a hash, got {_describe(value)}")
                return
            _check_shape(node, value, path, expand_path, walk)
        case AnyValue():
            if isinstance(value, dict) and isinstance(value.get("object"), str):
                _check_resource(value, path, expand_path, walk)


def _check_shape(
    shape: Shape, value: dict[str, Any], path: str, expand_path: str, walk: _Walk
) -> None:
    if shape.object_name is not None and value.get("object") != shape.object_name:
        walk.flag(path, "wrong_type", f"expected object {shape.object_name!r}")
        return
    if value.get("deleted") is True and shape.object_name is not None:
        for key in value.keys() - DELETED_FIELDS:
            walk.flag(_join(path, key), "unknown_field", "a deleted object has id, object, deleted")
        return
    _check_fields(shape, value, path, expand_path, walk, optional=_optional_fields(shape.cls))
    version = value.get("api_version")
    if shape.cls is Event and version is not None and version != _ApiVersion.CURRENT:
        message = f"{version!r}: these types describe {_ApiVersion.CURRENT!r}"
        walk.flag(_join(path, "api_version"), "wrong_api_version", message)


def _check_fields(
    shape: Shape,
    value: dict[str, Any],
    path: str,
    expand_path: str,
    walk: _Walk,
    optional: frozenset[str] | set[str],
) -> None:
    includable = INCLUDABLE.get(shape.object_name or "", frozenset())
    fields = shape.fields
    for key, element in value.items():
        node = fields.get(key)
        here, field_expand = _join(path, key), _join(expand_path, key)
        if node is None:
            walk.flag(here, "unknown_field", f"{shape.name} declares no field {key!r}")
            continue
        if key in includable and field_expand not in walk.expanded:
            walk.flag(here, "includable_not_expanded", f"sent only with expand[]={field_expand}")
        if shape.cls is Event.Data and key == "object":
            _check_resource(element, here, "", walk)  # untyped in the SDK: check by its name
        elif not (shape.cls is Event.Data and key == "previous_attributes"):
            _check(node, element, here, field_expand, walk)
    for key in sorted(fields.keys() - value.keys()):
        field_expand = _join(expand_path, key)
        if key in includable and field_expand not in walk.expanded:
            continue
        if key in optional or key == "deleted":
            continue
        walk.flag(_join(path, key), "missing_field", f"{shape.name} always has {key!r}")


@cache
def _optional_fields(cls: type) -> frozenset[str]:
    """Fields of an SDK class that Stripe may leave out (documented and derived rules)."""
    shape = shape_of(cls)
    fields = shape.fields
    optional = {name for name in fields if may_be_absent(cls, name)}
    if "type" in fields:  # hashes keyed by type: only the current type's sub-hash is sent
        optional |= {
            name
            for name, node in fields.items()
            if isinstance(node, Nullable)
            and isinstance(node.inner, Shape)
            and not _is_resource(node.inner)
        }
    if shape.object_name is None and _error_shaped(fields.keys()):
        optional |= fields.keys() - {"type"}
    return frozenset(optional)


def _error_shaped(names: Iterable[str]) -> bool:
    """A hash declaring the SDK's error fields (`last_payment_error`, `last_setup_error`, ...)."""
    names = set(names)
    return {"type", "code", "message", "param"} <= names <= shape_of(ErrorObject).fields.keys()


def _is_resource(shape: Shape) -> bool:
    return shape.object_name is not None


def _check_expandable(target: Node, value: Any, path: str, expand_path: str, walk: _Walk) -> None:
    requested = expand_path in walk.expanded
    if isinstance(value, str):
        if requested:
            walk.flag(path, "not_expanded", f"expand[]={expand_path} asked for the object")
        return
    if not requested:
        walk.flag(path, "unexpected_expansion", f"an id unless expand[]={expand_path}")
    _check(target, value, path, expand_path, walk)


def _check_list(
    item: Node, object_name: str, value: Any, path: str, expand_path: str, walk: _Walk
) -> None:
    if not isinstance(value, dict) or value.get("object") != object_name:
        walk.flag(path, "wrong_type", f"expected a {object_name!r} object")
        return
    expected: dict[str, Node] = {"object": Scalar("string"), "data": ArrayOf(item)}
    expected.update(_list_fields(object_name))
    for key in value.keys() - expected.keys():
        walk.flag(_join(path, key), "unknown_field", f"a {object_name} has no {key!r}")
    for key, node in expected.items():
        if key not in value:
            walk.flag(_join(path, key), "missing_field", f"a {object_name} always has {key!r}")
        elif key == "data":
            _check(node, value[key], _join(path, key), _join(expand_path, key), walk)
        else:
            _check(node, value[key], _join(path, key), expand_path, walk)


@cache
def _list_fields(object_name: str) -> dict[str, Node]:
    """`has_more` and `url` (`next_page` for a search result, null on the last page)."""
    cls = SearchResultObject if object_name == "search_result" else ListObject
    scalars: dict[str, Node] = {
        name: Scalar(SCALAR_KINDS[annotation])
        for name, annotation in cls.__annotations__.items()
        if annotation in SCALAR_KINDS
    }
    if "next_page" in scalars:
        scalars["next_page"] = Nullable(scalars["next_page"])
    return scalars


def _check_any_of(
    options: tuple[Node, ...], value: Any, path: str, expand_path: str, walk: _Walk
) -> None:
    name = value.get("object") if isinstance(value, dict) else None
    named = [o for o in options if isinstance(o, Shape) and o.object_name == name]
    if name is not None and named:
        _check(named[0], value, path, expand_path, walk)
        return
    attempts: list[list[Violation]] = []
    for option in options:
        attempt = _Walk(walk.expanded)
        _check(option, value, path, expand_path, attempt)
        if not attempt.violations:
            return
        attempts.append(attempt.violations)
    fewest = min(attempts, key=len)
    walk.violations.extend(fewest)


def _scalar_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "int64_string":
        return isinstance(value, str) and value.lstrip("-").isdigit()
    if not isinstance(value, str):  # decimal_string
        return False
    try:
        Decimal(value)
    except InvalidOperation:
        return False
    return True


def _describe(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"[:80]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
