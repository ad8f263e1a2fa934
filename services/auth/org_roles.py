"""Who may change an organization's billing: members with a configured role or permission."""

from dataclasses import dataclass

from services.auth.clerk import Session
from services.auth.errors import AuthError, AuthReason

DEFAULT_MANAGER_ROLES = frozenset({"org:admin"})


@dataclass(frozen=True, slots=True)
class BillingManagers:
    """Members whose Clerk role is one of `roles`, or who hold one of `permissions`
    (`org:<feature>:<permission>`), manage their organization's billing; the others only read.
    A session billed as its user (no active organization, or billing per user) manages its own."""

    roles: frozenset[str] = DEFAULT_MANAGER_ROLES
    permissions: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.roles and not self.permissions:
            raise ValueError("name at least one organization role or permission for billing")
        for name in (*self.roles, *self.permissions):
            if not name.startswith("org:"):
                raise ValueError(f"organization roles and permissions start with 'org:': {name!r}")

    def check(self, session: Session) -> None:
        """Pass when `session` may change its principal's billing; else raise AuthError."""
        if session.principal.kind != "org":
            return
        if session.org_role in self.roles or session.org_permissions & self.permissions:
            return
        raise AuthError(AuthReason.ORG_ROLE_REQUIRED)
