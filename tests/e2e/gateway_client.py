"""Calling the gateway under test as the apps do: Clerk-shaped tokens signed with the key it
trusts, users with their customer, and what every error answer must look like."""

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.settings import GatewaySettings

ISSUER = "https://clerk.tatame.test"
AUTHORIZED_PARTY = "https://app.tatame.test"
ALLOWED_ORIGIN = "https://app.tatame.test"
MAX_BODY_BYTES = 16 * 1024
SUCCESS_URL = f"{ALLOWED_ORIGIN}/billing/done"
CANCEL_URL = f"{ALLOWED_ORIGIN}/billing/cancelled"


@dataclass(frozen=True)
class TokenIssuer:
    """Signs Clerk-shaped session tokens with the key the gateway under test trusts."""

    key: rsa.RSAPrivateKey

    def token(self, user_id: str, *, key: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user_id,
            "sid": "sess_test",
            "azp": AUTHORIZED_PARTY,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "v": 2,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": "test-1"})

    def headers(self, user_id: str, **overrides: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, **overrides)}"}


@dataclass(frozen=True)
class GatewayHandle:
    url: str
    settings: GatewaySettings


@dataclass
class User:
    id: str
    headers: dict[str, str]
    customer_id: str


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    """`response` is the one error body with `status` and `code`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


def with_key(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    """`headers` with an `Idempotency-Key` (a new random one unless given)."""
    return {**headers, "Idempotency-Key": key or str(uuid.uuid4())}
