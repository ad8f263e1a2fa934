"""The dev-only token issuer standing in for Clerk: an RSA key kept in `.devdata/`.

Its tokens name `DEV_ISSUER` as issuer and its public key carries a marker line; production
gateway settings refuse both, so nothing it signs can be accepted in production.
"""

import argparse
import secrets
import time
from pathlib import Path

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


def mint_token(
    user_id: str,
    *,
    org_id: str | None = None,
    ttl: int = 3600,
    directory: Path | None = None,
) -> str:
    """A Clerk-shaped (v2) session token for `user_id`, valid for `ttl` seconds."""
    now = int(time.time())
    claims = {
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
        claims["o"] = {"id": org_id, "rol": "admin", "slg": org_id}
    key = _private_key(directory or devdata_dir())
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


def main() -> None:
    parser = argparse.ArgumentParser(prog="make token", description="Print a dev session token.")
    parser.add_argument("--user", default="user_123")
    parser.add_argument("--org", default=None)
    parser.add_argument("--ttl", type=int, default=3600)
    args = parser.parse_args()
    print(mint_token(args.user, org_id=args.org or None, ttl=args.ttl))


if __name__ == "__main__":
    main()
