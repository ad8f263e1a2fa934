"""The emulator's state: in memory (never localstripe's shared pickle), or in a state file."""

import pickle
from pathlib import Path
from typing import Any

from aiohttp import web
from localstripe.resources import Store, store

from tatame_devstack.stripe_emulator.idempotency import IdempotencyLayer
from tatame_devstack.stripe_emulator.render import Handler

MUTATING_METHODS = frozenset({"POST", "DELETE"})
STATE_FORMAT = "tatame-stripe-emulator/1"


def stored(object_type: str) -> list[Any]:
    """Every stored object of `object_type` (localstripe keys them `type:id`)."""
    return [obj for key, obj in store.items() if key.startswith(object_type + ":")]


class MemoryStore(Store):
    """localstripe's Store without its dump to /tmp/localstripe.pickle on every write."""

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)

    def dump_to_disk(self) -> None:
        """Do nothing: `StateFile` persists the state when asked to."""

    def try_load_from_disk(self) -> None:
        """Do nothing: `StateFile` persists the state when asked to."""


class StateFile:
    """The emulator's state (localstripe's objects, idempotency outcomes) in one pickle file."""

    def __init__(self, path: Path, idempotency: IdempotencyLayer) -> None:
        self.path = path
        self._idempotency = idempotency

    def load(self) -> None:
        """Replace the in-memory state with the file's, if the file exists."""
        not_a_state_file = ValueError(f"{self.path} is not a Stripe emulator state file")
        try:
            with self.path.open("rb") as file:
                state = pickle.load(file)  # noqa: S301 - our own dev-only file, as localstripe's
        except FileNotFoundError:
            return
        except Exception as error:  # unpickling junk fails in many ways
            raise not_a_state_file from error
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise not_a_state_file
        store.clear()
        store.update(state["objects"])
        self._idempotency.restore(state["idempotency"])

    def save(self) -> None:
        """Write the state atomically (a crash mid-write leaves the previous file)."""
        state = {
            "format": STATE_FORMAT,
            "objects": dict(store),
            "idempotency": self._idempotency.snapshot(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("wb") as file:
            pickle.dump(state, file, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(self.path)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Save after every request that may have changed the state."""
        try:
            return await handler(request)
        finally:
            if request.method in MUTATING_METHODS:
                self.save()
