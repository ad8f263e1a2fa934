"""What makes a Clerk-signed JWT a session token, and what its claims say about the organization.

Clerk signs more than session tokens with an instance's key: OAuth access tokens (JOSE `typ`
`at+jwt`, RFC 9068), machine-to-machine JWTs (subject `mch_…`), JWT-template tokens, and its
opaque machine tokens carry the prefixes `mt_`, `oat_` and `ak_`. Clerk's backend SDK, asked
for session tokens (its default), refuses all of them; so do we, with the same tests, plus two of
our own that every Clerk session token meets: a `typ` header, when present, of `JWT`, and a
string `sid` (session id) claim.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.auth.errors import AuthError, AuthReason

# JOSE header `cat` values Clerk stamps on the JWTs it signs (clerk/javascript
# packages/backend/src/tokens/jwtCategories.ts): the session category, and the value instances
# with "ignore JWT category" stamp on every class. Any other category is not a session.
SESSION_CATEGORY = "cl_B7d4PD111AAA"
UNCATEGORIZED = "cl_I7d4PD111III"
_MACHINE_TOKEN_PREFIXES = ("mt_", "oat_", "ak_")
_MACHINE_SUBJECT_PREFIX = "mch_"
# Unix times: integers, not booleans, strings or floats, and before the year 10000.
_TIME_CLAIMS = ("exp", "iat", "nbf")
_MAX_TIME = 253_402_300_799
_MAX_ORG_ENTRIES = 256


def refuse_machine_token(token: str) -> None:
    """Refuse Clerk's opaque machine tokens (M2M, OAuth, API keys) by their prefix."""
    if token.startswith(_MACHINE_TOKEN_PREFIXES):
        raise AuthError(AuthReason.NOT_A_SESSION_TOKEN)


def check_session_header(header: Mapping[str, Any]) -> None:
    """Refuse OAuth access tokens (`typ: at+jwt`), any other non-JWT `typ`, and JWTs whose
    Clerk category (`cat`) is not the session token's."""
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
        raise AuthError(AuthReason.NOT_A_SESSION_TOKEN)  # at+jwt (OAuth) among others
    category = header.get("cat")
    if category is not None and category not in (SESSION_CATEGORY, UNCATEGORIZED):
        raise AuthError(AuthReason.NOT_A_SESSION_TOKEN)


def check_session_claims(claims: Mapping[str, Any]) -> None:
    """Refuse verified claims that are not a session's: no `sid`, a machine subject, or time
    claims that are not plain integers."""
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is None:
            continue
        if type(value) is not int or not 0 <= value <= _MAX_TIME:
            raise AuthError(AuthReason.MALFORMED_TOKEN, f"The '{name}' claim must be a Unix time.")
    if not optional_str(claims, "sid"):
        raise AuthError(AuthReason.NOT_A_SESSION_TOKEN)  # a JWT-template token, for one
    subject = claims.get("sub")
    if isinstance(subject, str) and subject.startswith(_MACHINE_SUBJECT_PREFIX):
        raise AuthError(AuthReason.NOT_A_SESSION_TOKEN)


@dataclass(frozen=True, slots=True)
class Membership:
    """The caller's active organization: its id, the caller's role (`org:admin`) and the
    permissions that role grants (`org:billing:manage`)."""

    org_id: str
    role: str | None
    permissions: frozenset[str]


def active_membership(claims: Mapping[str, Any]) -> Membership | None:
    """The active organization of v2 (`o`, `fea`) or v1 (`org_*`) claims, None without one."""
    if claims.get("v") == 2:
        return _v2_membership(claims)
    org_id = optional_str(claims, "org_id")
    if not org_id:
        return None
    permissions = claims.get("org_permissions")
    if permissions is None:
        permissions = []
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise AuthError(
            AuthReason.MALFORMED_TOKEN, "The 'org_permissions' claim must be a list of strings."
        )
    return Membership(org_id, optional_str(claims, "org_role"), frozenset(permissions))


def _v2_membership(claims: Mapping[str, Any]) -> Membership | None:
    """v2: `o` {id, rol (without `org:`), per, fpm} and `fea`; the role gets its `org:` prefix
    back, and the permissions are decoded as Clerk's SDKs do (see _v2_permissions)."""
    organization = claims.get("o")
    if organization is None:
        return None
    if not isinstance(organization, Mapping):
        raise AuthError(AuthReason.MALFORMED_TOKEN, "The 'o' claim must be an object.")
    org_id = optional_str(organization, "id")
    if not org_id:
        return None
    role = optional_str(organization, "rol")
    return Membership(
        org_id,
        f"org:{role}" if role else None,
        _v2_permissions(
            features=optional_str(claims, "fea"),
            names=optional_str(organization, "per"),
            masks=optional_str(organization, "fpm"),
        ),
    )


def _v2_permissions(
    *, features: str | None, names: str | None, masks: str | None
) -> frozenset[str]:
    """`org:<feature>:<permission>` for each bit set in a feature's mask: `fea` lists features
    (`o:billing,u:chat`), `per` the permission names (`manage,read`), and `fpm` one integer per
    feature whose bit i (from the right) grants the i-th name (Clerk's session token docs)."""
    if not features or not names or not masks:
        return frozenset()
    feature_list = features.split(",")[:_MAX_ORG_ENTRIES]
    name_list = [name.strip() for name in names.split(",")[:_MAX_ORG_ENTRIES]]
    granted: set[str] = set()
    for feature, mask in zip(feature_list, masks.split(","), strict=False):
        scope, _, feature_name = feature.strip().partition(":")
        mask = mask.strip()
        if (
            "o" not in scope
            or not feature_name
            or not (mask.isascii() and mask.isdigit())
            or len(mask) > 20
        ):
            continue
        bits = int(mask)
        granted.update(
            f"org:{feature_name}:{name}"
            for index, name in enumerate(name_list)
            if name and bits >> index & 1
        )
    return frozenset(granted)


def optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    """Return a string claim, None when absent, and refuse any other type."""
    value = claims.get(name)
    if value is None or isinstance(value, str):
        return value
    raise AuthError(AuthReason.MALFORMED_TOKEN, f"The '{name}' claim must be a string.")
