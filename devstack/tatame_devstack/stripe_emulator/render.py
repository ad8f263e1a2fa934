"""Responses as Stripe renders them at the pinned API version.

`shape` gives an object exactly the fields that stripe-python's resource class (generated from
Stripe's API definition for the SDK's pinned version) declares: a field the class does not
declare is an emulator bug, an optional field without a value is null, and an includable field
(sent only when the request expands it) is left out unless expanded.
"""

import functools
import typing
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

import stripe
from aiohttp import web
from localstripe import server as localstripe_server
from localstripe.errors import UserError
from localstripe.resources import List, StripeObject, store

from tatame_devstack.stripe_conformance import INCLUDABLE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Fields sent only by some objects of a class: `deleted` by deleted objects, an event's
# `data.previous_attributes` by events about a change.
ONLY_WHEN_GIVEN = frozenset({"deleted", "previous_attributes"})


class RenderError(Exception):
    """The emulator tried to send an object that the pinned API version does not have."""


@functools.cache
def fields(resource: type[stripe.StripeObject]) -> Mapping[str, bool]:
    """The wire name of each field `resource` declares, and whether it is optional (nullable)."""
    remapped: Mapping[str, str] = getattr(resource, "_field_remappings", {})
    declared: dict[str, bool] = {}
    for cls in reversed(resource.__mro__):
        for name, annotation in vars(cls).get("__annotations__", {}).items():
            if name.startswith("_") or typing.get_origin(annotation) is typing.ClassVar:
                continue
            declared[remapped.get(name, name)] = _is_optional(annotation)
    return declared


def _is_optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(
        annotation
    )


def includable_fields(resource: type[stripe.StripeObject]) -> frozenset[str]:
    """The fields of `resource` sent only when asked with `expand[]`: the conformance check's
    list (from Stripe's reference), so that the emulator and its check agree."""
    return INCLUDABLE.get(vars(resource).get("OBJECT_NAME", ""), frozenset())


def expanded_under(expand: Collection[str], field: str) -> list[str]:
    """The `expand[]` paths that reach inside `field`, relative to it: what to pass to `shape`
    for the object in `field` (`data` for the objects of a list)."""
    prefix = field + "."
    return [path.removeprefix(prefix) for path in expand if path.startswith(prefix)]


def shape(
    resource: type[stripe.StripeObject],
    values: Mapping[str, Any],
    *,
    expand: Collection[str] = (),
) -> dict[str, Any]:
    """`values` as Stripe sends an object of class `resource` (e.g. `stripe.Subscription` or
    `stripe.Invoice.StatusTransitions`): every declared field, null where optional and not
    given; includable fields only when `expand` (paths relative to this object) names them.
    Raises `RenderError` for a field `resource` does not declare or a required one not given.
    Nested objects are shaped by the caller, each with its own class."""
    # stripe types StripeObject.__hash__ as an instance method; its classes hash as any class.
    declared = fields(resource)  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise RenderError(f"{resource.__qualname__} has no field {', '.join(unknown)}")
    requested = {path.split(".", 1)[0] for path in expand}
    includable = includable_fields(resource)
    shaped: dict[str, Any] = {}
    for name in sorted(declared, key=lambda name: (name not in ("id", "object"), name)):
        if name in includable and name not in requested:
            continue
        if name in values:
            shaped[name] = values[name]
        elif name in ONLY_WHEN_GIVEN:
            continue
        elif declared[name]:
            shaped[name] = None
        else:
            raise RenderError(f"{resource.__qualname__} needs field {name}")
    return shaped


def render_list(url: str, data: list[dict[str, Any]], *, has_more: bool = False) -> dict[str, Any]:
    """A list object of already rendered objects."""
    return {
        "object": "list",
        **shape(stripe.ListObject, {"data": data, "has_more": has_more, "url": url}),
    }


def _export_list(page: List, expand: Any = None) -> dict[str, Any]:
    """localstripe's `List`, one page of objects each rendered with the `data.` paths of
    `expand`."""
    expand = expand or []
    page._compute_starting_pos()
    start = page._starting_pos
    data = [
        obj._export(expand=expanded_under(expand, "data"))
        for obj in page._list[start : start + page._limit]
    ]
    rendered = render_list(page.url, data, has_more=page.has_more)
    return expanded(rendered, [path for path in expand if not path.startswith("data.")])


def extend_lists() -> None:
    """Render localstripe's lists as Stripe does (no `total_count`; expansions inside `data`)."""
    List._export = _export_list


def list_newest_first(*classes: type[StripeObject]) -> None:
    """List these localstripe classes' objects newest first, as Stripe lists: the last made
    first (localstripe lists most in the order they were made, and invoices by their date, so
    two made a second apart could come out oldest first)."""
    for cls in classes:
        listed = cls._api_list_all.__func__

        def newest_first(
            cls: type[StripeObject], /, url: str, *, _listed: Any = listed, **params: Any
        ) -> Any:
            page = _listed(cls, url, **params)
            made = {key: position for position, key in enumerate(store)}
            page._list.sort(key=lambda obj: made[f"{obj.object}:{obj.id}"], reverse=True)
            return page

        cls._api_list_all = classmethod(newest_first)


def _class_for_id(id: str) -> type[StripeObject]:
    """The class whose own id prefix is the longest that `id` starts with (`sub_sched_` over
    `sub_`), among all of localstripe's classes and ours."""
    pending, matching = list(StripeObject.__subclasses__()), []
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if id.startswith(vars(cls).get("_id_prefix", "\0")):
            matching.append(cls)
    if not matching:
        raise UserError(404, f"No such object: '{id}'", {"code": "resource_missing"})
    return max(matching, key=lambda cls: len(cls._id_prefix))


def expanded(rendered: dict[str, Any], expand: Collection[str]) -> dict[str, Any]:
    """`rendered` with the ids that `expand` names replaced by their objects (each id of a list
    of ids too, as `expand[]=discounts`), rendered with the rest of each path. A path through a
    field that is no object id is Stripe's 400."""

    def export(id: str, name: str) -> dict[str, Any]:
        obj = _class_for_id(id)._api_retrieve(id)
        result: dict[str, Any] = obj._export(expand=expanded_under(expand, name))
        return result

    for name in dict.fromkeys(path.split(".", 1)[0] for path in expand):
        if name not in rendered:
            raise UserError(400, f"This property cannot be expanded ({name}).", {"param": "expand"})
        value = rendered[name]
        if isinstance(value, str):
            rendered[name] = export(value, name)
        elif isinstance(value, list):
            rendered[name] = [export(v, name) if isinstance(v, str) else v for v in value]
    return rendered


def error_response(
    status: int, error: dict[str, str], headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error}, status=status, headers=headers)


def dict_handler(func: Callable[..., dict[str, Any]]) -> Handler:
    """An aiohttp handler answering `func(**parameters)`, a plain JSON object."""

    async def handler(request: web.Request) -> web.StreamResponse:
        params = await localstripe_server.get_post_data(request) or {}
        params.pop("expand", None)
        return localstripe_server.json_response(func(**params))

    return handler
