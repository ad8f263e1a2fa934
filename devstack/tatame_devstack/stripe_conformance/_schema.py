"""stripe-python's type annotations, compiled once into small schema nodes.

The SDK is generated from Stripe's OpenAPI spec for its API version, so its annotations are that
version's definition: resource classes (`stripe._subscription.Subscription`, nested
`StripeObject` classes) for responses, `TypedDict`s in `stripe.params` for requests. This module
turns an annotation into a node the checkers walk; names the SDK only imports under
`TYPE_CHECKING` are resolved from its own import statements, read with `ast`.
"""

import ast
import importlib
import inspect
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any, ForwardRef, Literal, Union

import typing_extensions
from stripe._list_object import ListObject
from stripe._search_result_object import SearchResultObject
from stripe._stripe_object import StripeObject, UntypedStripeObject

SCALAR_KINDS = {str: "string", int: "integer", float: "number", bool: "boolean"}
# `_field_encodings`: values the JSON carries as strings although the SDK types them otherwise.
ENCODED_KINDS = {"decimal_string": "decimal_string", "int64_string": "int64_string"}


@dataclass(frozen=True)
class Scalar:
    kind: str  # string, integer, number, boolean, decimal_string, int64_string


@dataclass(frozen=True)
class Enum:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Nullable:
    inner: "Node"


@dataclass(frozen=True)
class ArrayOf:
    item: "Node"


@dataclass(frozen=True)
class MapOf:
    value: "Node"


@dataclass(frozen=True)
class Expandable:
    """An id string, or the object itself when expanded."""

    target: "Node"


@dataclass(frozen=True)
class ListOf:
    """A `ListObject` (`object: list`) or a `SearchResultObject` (`object: search_result`)."""

    item: "Node"
    object_name: str


@dataclass(frozen=True)
class AnyOf:
    options: tuple["Node", ...]


@dataclass(frozen=True)
class AnyValue:
    pass


@dataclass(eq=False)
class Shape:
    """A class with declared fields: an SDK `StripeObject` class or a request `TypedDict`.

    Its fields are compiled on first use: resolving one class does not compile every class it
    refers to (the SDK's classes refer to each other, some to themselves).
    """

    cls: type
    object_name: str | None  # the `object` value of a resource class
    _fields: dict[str, "Node"] | None = field(default=None, repr=False)
    _required: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def name(self) -> str:
        return self.cls.__qualname__

    @property
    def fields(self) -> Mapping[str, "Node"]:
        if self._fields is None:
            if _is_typed_dict(self.cls):
                self._fields, self._required = _compile_typed_dict(self.cls)
            else:
                self._fields = _compile_stripe_object(self.cls)
        return self._fields

    @property
    def required(self) -> frozenset[str]:
        """Request shapes: the keys a caller must send."""
        _ = self.fields
        return self._required


Node = Scalar | Enum | Nullable | ArrayOf | MapOf | Expandable | ListOf | AnyOf | AnyValue | Shape


def _is_typed_dict(cls: type) -> bool:
    return typing_extensions.is_typeddict(cls)


@cache
def _module_imports(module_name: str) -> dict[str, tuple[str, str]]:
    """Names a module imports (`from x import Y as Z`), including those under TYPE_CHECKING."""
    module = sys.modules[module_name]
    tree = ast.parse(inspect.getsource(module))
    names: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = (node.module, alias.name)
    return names


class _ModuleNames(Mapping[str, Any]):
    """A module's names, importing those it only imports for type checkers on first use."""

    def __init__(self, module_name: str) -> None:
        self._module = sys.modules[module_name]

    def __getitem__(self, name: str) -> Any:
        if name in vars(self._module):
            return vars(self._module)[name]
        source = _module_imports(self._module.__name__).get(name)
        if source is None:
            raise KeyError(name)
        return getattr(importlib.import_module(source[0]), source[1])

    def __iter__(self):  # pragma: no cover - eval only looks names up
        return iter(vars(self._module))

    def __len__(self) -> int:  # pragma: no cover
        return len(vars(self._module))


def resolve(annotation: Any, module_name: str) -> Any:
    """Evaluate a string or `ForwardRef` annotation in the SDK module that wrote it."""
    if isinstance(annotation, ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        module = sys.modules[module_name]
        return eval(annotation, dict(vars(module)), _ModuleNames(module_name))  # noqa: S307
    return annotation


@cache
def shape_of(cls: type) -> Shape:
    """The one (lazily compiled) shape of an SDK class."""
    object_name = getattr(cls, "OBJECT_NAME", None)
    return Shape(cls=cls, object_name=object_name if isinstance(object_name, str) else None)


def compile_annotation(annotation: Any, module_name: str, encoding: str | None = None) -> Node:
    """The node for one annotation written in `module_name`."""
    annotation = resolve(annotation, module_name)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return AnyValue()
    if annotation in SCALAR_KINDS:
        if encoding in ENCODED_KINDS:
            return Scalar(ENCODED_KINDS[encoding])
        return Scalar(SCALAR_KINDS[annotation])
    if annotation is Decimal:
        return Scalar("decimal_string")
    if origin is Literal:
        return Enum(args)
    if origin in (Union, types.UnionType):
        return _compile_union(args, module_name, encoding)
    if origin in (list, typing.List):  # noqa: UP006 - the SDK's spelling
        return ArrayOf(compile_annotation(args[0], module_name, encoding))
    if origin in (dict, typing.Dict):  # noqa: UP006
        return MapOf(compile_annotation(args[1], module_name))
    if isinstance(origin, type) and issubclass(origin, UntypedStripeObject):
        return MapOf(compile_annotation(args[0], module_name))
    if isinstance(origin, type) and issubclass(origin, ListObject | SearchResultObject):
        name = "search_result" if issubclass(origin, SearchResultObject) else "list"
        return ListOf(compile_annotation(args[0], module_name), name)
    if isinstance(annotation, type) and (
        issubclass(annotation, StripeObject) or _is_typed_dict(annotation)
    ):
        return shape_of(annotation)
    raise TypeError(f"unsupported annotation {annotation!r} in {module_name}")


def _compile_union(args: tuple[Any, ...], module_name: str, encoding: str | None) -> Node:
    resolved = [resolve(arg, module_name) for arg in args]
    nullable = type(None) in resolved
    rest = [arg for arg in resolved if arg is not type(None)]
    literals = [arg for arg in rest if typing.get_origin(arg) is Literal]
    values = tuple(value for literal in literals for value in typing.get_args(literal))
    if str in rest and values == ("",) and len(rest) == 2:
        # `Literal[''] | str`: a string parameter that `""` unsets (a name, an email).
        node: Node = compile_annotation(str, module_name, encoding)
    elif str in rest and literals and len(literals) + 1 == len(rest):
        # `Union[Literal[...], str]`: the SDK widens enums with `str` so that newer API versions
        # do not break old clients; at the pinned version the listed values are the contract.
        node = Enum(values)
    elif str in rest and len(rest) == 2:
        # `ExpandableField[X]` is `Union[str, X]`.
        (target,) = (arg for arg in rest if arg is not str)
        node = Expandable(compile_annotation(target, module_name))
    else:
        options = tuple(compile_annotation(arg, module_name, encoding) for arg in rest)
        node = options[0] if len(options) == 1 else AnyOf(options)
    return Nullable(node) if nullable else node


def _declared_annotations(cls: type) -> dict[str, Any]:
    """Field annotations of an SDK class, without ClassVars and private names."""
    annotations: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass in (StripeObject, object, dict) or klass.__module__.startswith("typing"):
            continue
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            if name.startswith("_") or name == "OBJECT_NAME":
                continue
            if typing.get_origin(annotation) is typing.ClassVar:
                continue
            annotations[name] = (annotation, klass.__module__)
    return annotations


def _compile_stripe_object(cls: type) -> dict[str, Node]:
    remap = getattr(cls, "_field_remappings", {})
    encodings = vars(cls).get("_field_encodings", {})
    return {
        remap.get(name, name): compile_annotation(annotation, module_name, encodings.get(name))
        for name, (annotation, module_name) in _declared_annotations(cls).items()
    }


# `NotRequired[X]` / `Required[X]` around a TypedDict field's type.
_KEY_QUALIFIERS: tuple[object, ...] = (typing_extensions.NotRequired, typing_extensions.Required)


def _compile_typed_dict(cls: type) -> tuple[dict[str, Node], frozenset[str]]:
    from stripe._request_options import RequestOptions

    options = set(RequestOptions.__annotations__)
    fields = {}
    for name, annotation in cls.__annotations__.items():
        if name in options:
            continue
        while typing.get_origin(annotation) in _KEY_QUALIFIERS:
            (annotation,) = typing.get_args(annotation)
        fields[name] = compile_annotation(annotation, cls.__module__)
    return fields, frozenset(vars(cls)["__required_keys__"]) - options


def shape_for_object_name(name: str) -> Shape | None:
    """The resource class Stripe names `name` in `object` (`stripe._object_classes`)."""
    cls = _object_class(name)
    return None if cls is None else shape_of(cls)


@cache
def _object_class(name: str) -> type | None:
    from stripe._object_classes import OBJECT_CLASSES

    if name not in OBJECT_CLASSES:
        return None
    module_name, class_name = OBJECT_CLASSES[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    if issubclass(cls, ListObject | SearchResultObject):
        return None
    return cls
