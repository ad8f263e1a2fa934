"""The gateway as a real HTTP server on a loopback port, in front of the real billing server."""

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import BillingHandle, serve_on_loopback

ISSUER = "https://clerk.tatame.test"
AUTHORIZED_PARTY = "https://app.tatame.test"
ALLOWED_ORIGIN = "https://app.tatame.test"
MAX_BODY_BYTES = 16 * 1024


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


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass(frozen=True)
class GatewayHandle:
    url: str
    settings: GatewaySettings


@pytest.fixture(scope="session")
async def gateway(billing: BillingHandle, issuer: TokenIssuer) -> AsyncIterator[GatewayHandle]:
    public_pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = GatewaySettings(
        tatame_env="test",
        billing_target=billing.target,
        gateway_service_secret=billing.gateway_secret,
        clerk_issuer=ISSUER,
        clerk_jwt_key=public_pem.decode(),
        clerk_authorized_parties=(AUTHORIZED_PARTY,),
        cors_allowed_origins=(ALLOWED_ORIGIN,),
        gateway_max_body_bytes=MAX_BODY_BYTES,
        gateway_plans_cache_seconds=0,
    )
    server, task, port = await serve_on_loopback(create_app(settings))
    yield GatewayHandle(f"http://127.0.0.1:{port}", settings)
    server.should_exit = True
    await task


@pytest.fixture
async def client(gateway: GatewayHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        yield client


UserFactory = Callable[[], str]
