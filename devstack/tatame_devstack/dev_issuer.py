"""The dev-only token issuer standing in for Clerk: an RSA key kept in `.devdata/`.

Its tokens name `DEV_ISSUER` as issuer and its public key carries a marker line; production
gateway settings refuse both, so nothing it signs can be accepted in production.
"""

import argparse
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.settings import DEV_ISSUER, DEV_KEY_MARKER
from tatame_devstack.paths import devdata_dir

KEY_FILE = "dev-issuer-key.pem"
KID = "tatame-dev-1"
AUTHORIZED_PARTY = "http://127.0.0.1:8080"


def _private_key(directory: Path) -> rsa.RSAPrivateKey:
    path = directory / KEY_FILE
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.touch(mode=0o600)
        path.write_bytes(pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} holds no RSA private key: delete it to make a new one")
    return loaded


def public_key_pem(directory: Path | None = None) -> str:
    """The PEM the gateway verifies dev tokens with (`CLERK_JWT_KEY`), marked as a dev key."""
    key = _private_key(directory or devdata_dir()).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"{DEV_KEY_MARKER}\n{pem.decode()}"


def organization_claims(
    org_id: str, *, role: str = "org:admin", permissions: Sequence[str] = ()
) -> dict[str, Any]:
    """The v2 claims of an active organization as Clerk writes them: `o` {id, rol (without
    `org:`), slg, per, fpm} and `fea`, with permissions `org:<feature>:<name>` encoded as one
    bit mask per feature over the names in `per` (bit i from the right: the i-th name)."""
    features: list[str] = []
    names: list[str] = []
    for permission in permissions:
        prefix, feature, name = [*permission.split(":"), "", ""][:3]
        if prefix != "org" or not feature or not name:
            raise ValueError(f"permissions look like org:<feature>:<name>, not {permission!r}")
        features += [feature] if feature not in features else []
        names += [name] if name not in names else []
    masks = [0] * len(features)
    for permission in permissions:
        _, feature, name = permission.split(":")
        masks[features.index(feature)] |= 1 << names.index(name)
    organization: dict[str, Any] = {"id": org_id, "rol": role.removeprefix("org:"), "slg": org_id}
    if not features:
        return {"o": organization}
    organization |= {"per": ",".join(names), "fpm": ",".join(str(mask) for mask in masks)}
    return {"o": organization, "fea": ",".join(f"o:{feature}" for feature in features)}


def mint_token(
    user_id: str,
    *,
    org_id: str | None = None,
    org_role: str = "org:admin",
    org_permissions: Sequence[str] = (),
    ttl: int = 3600,
    directory: Path | None = None,
) -> str:
    """A Clerk-shaped (v2) session token for `user_id`, valid for `ttl` seconds; with `org_id`,
    in that organization with `org_role` and `org_permissions`."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "sub": user_id,
        "sid": "sess_dev_" + secrets.token_hex(8),
        "azp": AUTHORIZED_PARTY,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "v": 2,
    }
    if org_id is not None:
        claims |= organization_claims(org_id, role=org_role, permissions=org_permissions)
    key = _private_key(directory or devdata_dir())
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


def main() -> None:
    parser = argparse.ArgumentParser(prog="make token", description="Print a dev session token.")
    parser.add_argument("--user", default="user_123")
    parser.add_argument("--org", default=None)
    parser.add_argument("--role", default="org:admin", help="the role in --org")
    parser.add_argument(
        "--permissions", default="", help="comma-separated, e.g. org:billing:manage"
    )
    parser.add_argument("--ttl", type=int, default=3600)
    args = parser.parse_args()
    print(
        mint_token(
            args.user,
            org_id=args.org or None,
            org_role=args.role,
            org_permissions=[p.strip() for p in args.permissions.split(",") if p.strip()],
            ttl=args.ttl,
        )
    )


if __name__ == "__main__":
    main()
