"""Clerk session-token verification: RS256 with keys from a cached JWKS or a networkless PEM key.

Whatever arrives, however malformed, ends as a Session or an AuthError: never another exception."""

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import cachetools
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.utils import base64url_decode

from services.auth.errors import AuthError, AuthReason
from services.auth.principal import Principal
from services.auth.session_claims import (
    active_membership,
    check_session_claims,
    check_session_header,
    optional_str,
    refuse_machine_token,
)

logger = logging.getLogger(__name__)

_ALGORITHM = "RS256"
_REQUIRED_CLAIMS = ["sub", "exp", "iat", "iss"]  # and `sid`: check_session_claims
# Clerk's session tokens are 1-3 KiB; nothing longer is parsed (also bounds JSON nesting).
MAX_TOKEN_LENGTH = 16 * 1024
_MIN_KEY_BITS = 2048
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_PEM_HEADER = "-----BEGIN PUBLIC KEY-----"
_PEM_FOOTER = "-----END PUBLIC KEY-----"


class Clock(Protocol):
    """Where the verifier reads time: the `time` module, or a test's clock that it moves itself."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (token expiry)."""
        ...

    def monotonic(self) -> float:
        """Seconds that only move forward (refresh throttle, cache ages)."""
        ...


# Where the token came from: the `Authorization` header, or the `__session` cookie.
Carrier = Literal["header", "cookie"]


@dataclass(frozen=True, slots=True)
class Session:
    """A verified Clerk session: who signed in, in which organization with which role and
    permissions, billed as which principal, and for which authorized party (`azp`)."""

    user_id: str
    session_id: str
    org_id: str | None
    org_role: str | None
    principal: Principal
    expires_at: datetime
    org_permissions: frozenset[str] = frozenset()
    authorized_party: str | None = None


class ClerkVerifier:
    """Verifies Clerk session tokens; keys come from a JWKS URL (cached by `kid`) or a PEM key."""

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        jwt_key: str | None = None,
        authorized_parties: frozenset[str] = frozenset(),
        per_organization: bool = False,
        leeway: float = 5,
        http_client: httpx.AsyncClient | None = None,
        min_refresh_interval: float = 30,
        fetch_timeout: float = 5,
        verified_cache_seconds: float = 60,
        verified_cache_size: int = 10_000,
        clock: Clock = time,
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        if leeway < 0:
            raise ValueError("leeway must be >= 0")
        self._key_source: _PemKey | _JwksKeys
        if jwks_url is not None and jwt_key is None:
            self._key_source = _JwksKeys(
                jwks_url,
                http_client=http_client,
                min_refresh_interval=min_refresh_interval,
                fetch_timeout=fetch_timeout,
                clock=clock,
            )
        elif jwt_key is not None and jwks_url is None:
            self._key_source = _PemKey(jwt_key)
        else:
            raise ValueError("exactly one of jwks_url and jwt_key is required")
        self._issuer = issuer
        self._authorized_parties = frozenset(authorized_parties)
        self._per_organization = per_organization
        self._leeway = leeway
        self._clock = clock
        self._jwt = jwt.PyJWT(options={"require": _REQUIRED_CLAIMS, "verify_aud": False})
        # A token that verified once verifies the same way until it expires: remembering it
        # saves the RSA check (~75 µs) on every later request that presents it.
        self._verified: cachetools.TTLCache[str, Session] | None = (
            cachetools.TTLCache(
                maxsize=verified_cache_size, ttl=verified_cache_seconds, timer=clock.monotonic
            )
            if verified_cache_seconds > 0
            else None
        )

    async def aclose(self) -> None:
        """Release the HTTP client if this verifier created it."""
        await self._key_source.aclose()

    async def verify(self, token: str, *, carrier: Carrier = "header") -> Session:
        """Verify a session token and return its session, or raise AuthError with the reason.

        A token from the `__session` cookie must name one of the authorized parties (cookies
        travel with cross-site requests); one from the header may omit `azp` (native apps)."""
        if not token:
            raise AuthError(AuthReason.MISSING_TOKEN)
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise AuthError(AuthReason.MALFORMED_TOKEN)
        session = self._verified.get(token) if self._verified is not None else None
        if session is None:
            session = await self._verify_uncached(token)
        elif session.expires_at.timestamp() + self._leeway <= self._clock.time():
            raise AuthError(AuthReason.EXPIRED)
        if carrier == "cookie" and session.authorized_party not in self._authorized_parties:
            raise AuthError(
                AuthReason.WRONG_PARTY,
                "A session token sent as a cookie must name an authorized party (azp).",
            )
        return session

    async def _verify_uncached(self, token: str) -> Session:
        """The full check: header, key, signature and time window, then the session claims."""
        refuse_machine_token(token)
        header = _unverified_header(token)
        check_session_header(header)
        key = await self._key_source.key_for(header)
        claims = self._decode(token, key)
        self._check_session_claims(claims)
        session = self._session(claims)
        if self._verified is not None:
            self._verified[token] = session
        return session

    def _decode(self, token: str, key: RSAPublicKey) -> dict[str, Any]:
        """Check signature, time window, issuer and required claims with PyJWT."""
        try:
            return self._jwt.decode(
                token, key, algorithms=[_ALGORITHM], issuer=self._issuer, leeway=self._leeway
            )
        except jwt.InvalidSignatureError as e:
            raise AuthError(AuthReason.BAD_SIGNATURE) from e
        except jwt.ExpiredSignatureError as e:
            raise AuthError(AuthReason.EXPIRED) from e
        except jwt.ImmatureSignatureError as e:
            raise AuthError(AuthReason.NOT_YET_VALID) from e
        except jwt.InvalidIssuerError as e:
            raise AuthError(AuthReason.WRONG_ISSUER) from e
        except jwt.MissingRequiredClaimError as e:
            raise AuthError(
                AuthReason.MALFORMED_TOKEN, f"The session token lacks the '{e.claim}' claim."
            ) from e
        except jwt.PyJWTError as e:
            raise AuthError(AuthReason.MALFORMED_TOKEN) from e

    def _check_session_claims(self, claims: Mapping[str, Any]) -> None:
        """Refuse non-session tokens, tokens for another party and pending sessions."""
        check_session_claims(claims)
        azp = optional_str(claims, "azp")
        if azp and self._authorized_parties and azp not in self._authorized_parties:
            raise AuthError(AuthReason.WRONG_PARTY)
        if optional_str(claims, "sts") == "pending":
            raise AuthError(AuthReason.PENDING_SESSION)

    def _session(self, claims: Mapping[str, Any]) -> Session:
        """Build the session from verified claims, reading v2 (`o`) or v1 (`org_*`) org claims."""
        membership = active_membership(claims)
        try:
            user = Principal("user", claims["sub"])
            org = Principal("org", membership.org_id) if membership else None
            expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC)
        except (ValueError, OverflowError, OSError) as e:
            raise AuthError(AuthReason.MALFORMED_TOKEN) from e
        return Session(
            user_id=user.id,
            session_id=claims["sid"],
            org_id=org.id if org else None,
            org_role=membership.role if membership else None,
            principal=org if org and self._per_organization else user,
            expires_at=expires_at,
            org_permissions=membership.permissions if membership else frozenset(),
            authorized_party=optional_str(claims, "azp"),
        )


class _PemKey:
    """A single networkless key: every token is checked against it, whatever its `kid`."""

    def __init__(self, pem: str) -> None:
        self._key = _load_pem_key(pem)

    async def key_for(self, header: Mapping[str, Any]) -> RSAPublicKey:  # noqa: ARG002 (the KeySource call)
        """Return the configured key."""
        return self._key

    async def aclose(self) -> None:
        """Nothing to release."""


class _JwksKeys:
    """RS256 keys from a JWKS URL cached by `kid`; an unknown `kid` forces a throttled refresh."""

    def __init__(
        self,
        url: str,
        *,
        http_client: httpx.AsyncClient | None,
        min_refresh_interval: float,
        fetch_timeout: float,
        clock: Clock,
    ) -> None:
        if min_refresh_interval < 0 or fetch_timeout <= 0:
            raise ValueError("min_refresh_interval must be >= 0 and fetch_timeout > 0")
        self._url = _check_jwks_url(url)
        self._min_refresh_interval = min_refresh_interval
        self._fetch_timeout = fetch_timeout
        self._clock = clock
        self._owns_client = http_client is None
        self._client = (
            httpx.AsyncClient(timeout=fetch_timeout) if http_client is None else http_client
        )
        self._keys: dict[str, RSAPublicKey] = {}
        self._lock = asyncio.Lock()
        self._last_attempt: float | None = None
        self._last_attempt_failed = False

    async def key_for(self, header: Mapping[str, Any]) -> RSAPublicKey:
        """Return the key for the token's `kid`, refreshing the JWKS once when it is unknown."""
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError(AuthReason.MALFORMED_TOKEN, "The session token has no key id.")
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._keys.get(kid)
            if key is None and self._may_refresh():
                await self._refresh()
                key = self._keys.get(kid)
        if key is not None:
            return key
        if self._last_attempt_failed:
            raise AuthError(AuthReason.KEYS_UNAVAILABLE)
        raise AuthError(AuthReason.UNKNOWN_KEY)

    async def aclose(self) -> None:
        """Close the HTTP client if it was created here."""
        if self._owns_client:
            await self._client.aclose()

    def _may_refresh(self) -> bool:
        """Whether min_refresh_interval has passed since the last fetch attempt."""
        return (
            self._last_attempt is None
            or self._clock.monotonic() - self._last_attempt >= self._min_refresh_interval
        )

    async def _refresh(self) -> None:
        """Fetch the JWKS and replace the cache; on failure keep the cache and note the failure."""
        try:
            keys = await self._fetch()
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as e:
            self._last_attempt, self._last_attempt_failed = self._clock.monotonic(), True
            logger.warning("fetching the Clerk JWKS from %s failed: %r", self._url, e)
            return
        self._keys = keys
        self._last_attempt, self._last_attempt_failed = self._clock.monotonic(), False
        logger.info("loaded %d Clerk signing key(s) from %s", len(keys), self._url)

    async def _fetch(self) -> dict[str, RSAPublicKey]:
        """GET and parse the JWKS; a cancelled fetch leaves no trace, so the next caller retries."""
        response = await self._client.get(
            self._url, timeout=self._fetch_timeout, headers={"Accept": "application/json"}
        )
        response.raise_for_status()
        return _parse_jwks(response.json())


def _unverified_header(token: str) -> dict[str, Any]:
    """Read the JOSE header and refuse anything but RS256 before any key is looked up."""
    if token.count(".") != 2:
        raise AuthError(AuthReason.MALFORMED_TOKEN)
    # Only routes to a key: PyJWT re-reads the header strictly when it checks the signature. This
    # avoids a second full strict parse, which would cost about half of the verification time.
    try:
        header = json.loads(base64url_decode(token.partition(".")[0]))
    except (ValueError, UnicodeError, RecursionError) as e:  # RecursionError: deep nesting
        raise AuthError(AuthReason.MALFORMED_TOKEN) from e
    if not isinstance(header, dict):
        raise AuthError(AuthReason.MALFORMED_TOKEN)
    if header.get("alg") != _ALGORITHM:
        raise AuthError(AuthReason.UNSUPPORTED_ALGORITHM)
    return header


def _parse_jwks(document: object) -> dict[str, RSAPublicKey]:
    """Keep the RS256 signing keys of a JWKS document, by `kid`."""
    if not isinstance(document, dict):
        raise ValueError("the JWKS document is not a JSON object")
    keys = {
        jwk.key_id: jwk.key
        for jwk in jwt.PyJWKSet.from_dict(document)
        if jwk.key_id
        and jwk.algorithm_name == _ALGORITHM
        and jwk.public_key_use in (None, "sig")
        and isinstance(jwk.key, RSAPublicKey)
        and jwk.key.key_size >= _MIN_KEY_BITS
    }
    if not keys:
        raise ValueError("the JWKS has no usable RS256 signing key")
    return keys


def _load_pem_key(pem: str) -> RSAPublicKey:
    """Load an RSA public key from PEM, also in one-line form, ignoring text around the block."""
    text = pem.replace("\\n", "\n")
    start, end = text.find(_PEM_HEADER), text.find(_PEM_FOOTER)
    if 0 <= start < end:
        text = text[start + len(_PEM_HEADER) : end]  # drops explanatory text around the block
    body = "".join(text.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    normalized = "\n".join([_PEM_HEADER, *lines, _PEM_FOOTER, ""])
    try:
        key = load_pem_public_key(normalized.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as e:
        raise ValueError("jwt_key is not a PEM public key") from e
    if not isinstance(key, RSAPublicKey) or key.key_size < _MIN_KEY_BITS:
        raise ValueError(f"jwt_key must be an RSA public key of at least {_MIN_KEY_BITS} bits")
    return key


def _check_jwks_url(url: str) -> str:
    """Require https, allowing plain http only on a loopback host (local development, tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
        return url
    raise ValueError("jwks_url must use https (plain http only on a loopback host)")
