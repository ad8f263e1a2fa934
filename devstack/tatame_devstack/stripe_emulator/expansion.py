"""`expand[]` on objects rendered at the pinned API version: an id becomes its object.

Stands in for emu's `render.expanded` (same signature) until the branches merge."""

from collections.abc import Collection
from typing import Any

from localstripe.errors import UserError
from localstripe.resources import StripeObject

from tatame_devstack.stripe_emulator.render import expanded_under


def _class_for_id(id: str) -> type[StripeObject]:
    """The class whose id prefix is the longest that `id` starts with."""
    pending, classes = list(StripeObject.__subclasses__()), []
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if id.startswith(vars(cls).get("_id_prefix", "\0")):
            classes.append(cls)
    if not classes:
        raise UserError(404, f"No such object: '{id}'", {"code": "resource_missing"})
    return max(classes, key=lambda cls: len(cls._id_prefix))


def expanded(rendered: dict[str, Any], expand: Collection[str]) -> dict[str, Any]:
    """`rendered` with the ids that `expand` names replaced by their objects, rendered with the
    rest of each path. A path through a field that is no object id is Stripe's 400."""
    for name in dict.fromkeys(path.split(".", 1)[0] for path in expand):
        if name not in rendered:
            raise UserError(400, f"This property cannot be expanded ({name}).", {"param": "expand"})
        value = rendered[name]
        if isinstance(value, str):
            obj = _class_for_id(value)._api_retrieve(value)
            rendered[name] = obj._export(expand=expanded_under(expand, name))
    return rendered
