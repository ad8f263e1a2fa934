"""Service-to-service gRPC credentials: short-lived HS256 JWTs signed with the caller's secret."""

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from secrets import token_hex

import jwt

from services.auth.errors import AuthError, AuthReason
from services.auth.principal import Principal

MIN_SECRET_LENGTH = 32

_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["iss", "aud", "iat", "exp", "jti"]
_MAX_TOKEN_LENGTH = 4096
_SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified internal caller: the calling service and the principal it acts for, if any."""

    service: str
    principal: Principal | None


class ServiceCredentials:
    """The credentials a service holds to call another over gRPC."""

    def __init__(self, service: str, secret: str, audience: str = "billing", ttl: int = 60) -> None:
        _check_service_name(service)
        check_secret(f"the secret of service {service!r}", secret)
        if not audience:
            raise ValueError("audience is required")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._service = service
        self._secret = secret
        self._audience = audience
        self._ttl = ttl

    def __repr__(self) -> str:
        return f"ServiceCredentials(service={self._service!r}, audience={self._audience!r})"

    def metadata(self, principal: Principal | None) -> tuple[tuple[str, str], ...]:
        """gRPC call metadata with a fresh token, acting for `principal` when one is given."""
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": self._service,
            "aud": self._audience,
            "iat": now,
            "exp": now + self._ttl,
            "jti": token_hex(16),
        }
        if principal is not None:
            claims["sub"] = principal.key
        token = jwt.encode(claims, self._secret, algorithm=_ALGORITHM)
        return (("authorization", f"Bearer {token}"),)


class ServiceTokenVerifier:
    """Verifies service tokens against the secret of the service named in their `iss`."""

    def __init__(self, secrets: Mapping[str, str], audience: str, leeway: float = 5) -> None:
        _check_secrets(secrets)
        if not audience:
            raise ValueError("audience is required")
        if leeway < 0:
            raise ValueError("leeway must be >= 0")
        self._secrets = dict(secrets)
        self._audience = audience
        self._leeway = leeway
        self._jwt = jwt.PyJWT(options={"require": _REQUIRED_CLAIMS, "strict_aud": True})

    def __repr__(self) -> str:
        services = sorted(self._secrets)
        return f"ServiceTokenVerifier(services={services}, audience={self._audience!r})"

    def verify(self, authorization: str | None) -> Caller:
        """Verify an `authorization` metadata value (`Bearer <jwt>`) and return the caller."""
        token = _bearer_token(authorization)
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as e:
            raise AuthError(AuthReason.INVALID_CREDENTIALS) from e
        service = unverified.get("iss")
        secret = self._secrets.get(service) if isinstance(service, str) else None
        if not isinstance(service, str) or secret is None:
            raise AuthError(AuthReason.INVALID_CREDENTIALS, "The calling service is unknown.")
        try:
            claims = self._jwt.decode(
                token,
                secret,
                algorithms=[_ALGORITHM],
                audience=self._audience,
                leeway=self._leeway,
            )
        except jwt.PyJWTError as e:
            raise AuthError(AuthReason.INVALID_CREDENTIALS) from e
        subject = claims.get("sub")
        return Caller(
            service=service,
            principal=None if subject is None else Principal.parse(subject),
        )


def parse_service_secrets(value: str) -> dict[str, str]:
    """Parse `gateway=secret1,webhooks-relay=secret2` into a name-to-secret mapping."""
    parsed: dict[str, str] = {}
    # Entries are named by position, never by their text: in a mistyped entry (`secret=name`,
    # no `=`) the text before the `=` is a secret, and these messages are printed at start-up.
    for position, entry in enumerate(value.split(","), start=1):
        name, separator, secret = entry.strip().partition("=")
        name, secret = name.strip(), secret.strip()
        if not separator:
            raise ValueError(f"service secret entry {position} is not of the form name=secret")
        if not _SERVICE_NAME.fullmatch(name):
            raise ValueError(
                f"service secret entry {position}: the name must be lowercase letters, digits "
                "and '-', starting with a letter"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"service secret entry {position}: the secret must be at least "
                f"{MIN_SECRET_LENGTH} characters"
            )
        if name in parsed:
            raise ValueError(f"service secret entry {position} repeats an earlier service name")
        parsed[name] = secret
    _check_secrets(parsed)
    return parsed


def _bearer_token(authorization: str | None) -> str:
    """Extract the token of a `Bearer <token>` value."""
    if not authorization:
        raise AuthError(AuthReason.MISSING_CREDENTIALS)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_LENGTH:
        raise AuthError(AuthReason.INVALID_CREDENTIALS, "Expected a Bearer token.")
    return token


def _check_secrets(secrets: Mapping[str, str]) -> None:
    """Refuse an empty set, bad names, short secrets, and a secret shared by two services."""
    if not secrets:
        raise ValueError("at least one service secret is required")
    for service, secret in secrets.items():
        _check_service_name(service)
        check_secret(f"the secret of service {service!r}", secret)
    if len(set(secrets.values())) != len(secrets):
        raise ValueError("each service needs its own secret; two services share one")


def _check_service_name(service: str) -> None:
    """Require a DNS-label-like service name such as `webhooks-relay`."""
    if not isinstance(service, str) or not _SERVICE_NAME.fullmatch(service):
        raise ValueError(f"invalid service name {service!r}: use lowercase letters, digits, '-'")


def check_secret(what: str, secret: str) -> None:
    """Require a secret (`what` names it in the message) long enough for HS256, without ever
    echoing it: the one rule for every service credential secret."""
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"{what} must be at least {MIN_SECRET_LENGTH} characters")
