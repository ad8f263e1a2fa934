"""Who is billed: a Clerk user, or a Clerk organization when billing is per organization."""

import re
from dataclasses import dataclass
from typing import Literal, Self, cast, get_args

from services.auth.errors import AuthError, AuthReason

PrincipalKind = Literal["user", "org"]

_KINDS: frozenset[str] = frozenset(get_args(PrincipalKind))
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True, slots=True)
class Principal:
    """The party that owns a subscription, identified by a Clerk user or organization id."""

    kind: PrincipalKind
    id: str

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"principal kind must be one of {sorted(_KINDS)}")
        if not isinstance(self.id, str) or not _ID.fullmatch(self.id):
            raise ValueError("principal id must be 1-128 characters of [A-Za-z0-9_-]")

    @property
    def key(self) -> str:
        """The stable string form, e.g. `user:user_123` or `org:org_abc`."""
        return f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, key: str) -> Self:
        """Parse a `kind:id` key; anything else is refused as invalid credentials."""
        refusal = AuthError(AuthReason.INVALID_CREDENTIALS, "The principal key is malformed.")
        if not isinstance(key, str):
            raise refusal
        kind, separator, principal_id = key.partition(":")
        if not separator or kind not in _KINDS:
            raise refusal
        try:
            return cls(cast(PrincipalKind, kind), principal_id)
        except ValueError as e:
            raise refusal from e
