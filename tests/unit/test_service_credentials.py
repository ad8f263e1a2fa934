"""Service-to-service credentials, the principal model and the auth error type."""

import pickle
import re
import time
from typing import Any

import jwt
import pytest

from services.auth.errors import AuthError, AuthReason
from services.auth.principal import Principal
from services.auth.service_credentials import (
    Caller,
    ServiceCredentials,
    ServiceTokenVerifier,
    parse_service_secrets,
)

GATEWAY_SECRET = "g" * 64
RELAY_SECRET = "r" * 64
REPORTING_SECRET = "p" * 64
USER = Principal("user", "user_123")


@pytest.fixture
def verifier() -> ServiceTokenVerifier:
    """Billing's verifier, knowing the gateway and the webhooks relay."""
    return ServiceTokenVerifier(
        {"gateway": GATEWAY_SECRET, "webhooks-relay": RELAY_SECRET}, audience="billing"
    )


def authorization(credentials: ServiceCredentials, principal: Principal | None = USER) -> str:
    """The authorization metadata value the credentials produce."""
    ((key, value),) = credentials.metadata(principal)
    assert key == "authorization"
    return value


def hand_made(secret: str = GATEWAY_SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    """A bearer value for a token built claim by claim; a None override removes the claim."""
    now = int(time.time())
    claims = {"iss": "gateway", "aud": "billing", "iat": now, "exp": now + 60, "jti": "j1"}
    claims.update(overrides)
    token = jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm)
    return f"Bearer {token}"


def refusal(verifier: ServiceTokenVerifier, value: str | None) -> AuthReason:
    """The reason the verifier refuses the value (fails the test if it is accepted)."""
    with pytest.raises(AuthError) as excinfo:
        verifier.verify(value)
    return excinfo.value.reason


# --- round trip -------------------------------------------------------------------------------


def test_credentials_acting_for_a_principal_verify_to_that_caller(
    verifier: ServiceTokenVerifier,
) -> None:
    value = authorization(ServiceCredentials("gateway", GATEWAY_SECRET), USER)
    assert verifier.verify(value) == Caller(service="gateway", principal=USER)


def test_credentials_acting_for_no_one_verify_to_a_caller_without_principal(
    verifier: ServiceTokenVerifier,
) -> None:
    value = authorization(ServiceCredentials("webhooks-relay", RELAY_SECRET), None)
    assert verifier.verify(value) == Caller(service="webhooks-relay", principal=None)


def test_token_names_service_audience_principal_and_lives_for_the_ttl() -> None:
    credentials = ServiceCredentials("gateway", GATEWAY_SECRET, audience="billing", ttl=30)
    token = authorization(credentials).removeprefix("Bearer ")
    claims = jwt.decode(token, GATEWAY_SECRET, algorithms=["HS256"], audience="billing")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("gateway", "billing", "user:user_123")
    assert claims["exp"] - claims["iat"] == 30


def test_every_call_gets_a_fresh_token_id() -> None:
    credentials = ServiceCredentials("gateway", GATEWAY_SECRET)
    ids = {
        jwt.decode(
            authorization(credentials).removeprefix("Bearer "), options={"verify_signature": False}
        )["jti"]
        for _ in range(5)
    }
    assert len(ids) == 5


def test_bearer_scheme_is_case_insensitive(verifier: ServiceTokenVerifier) -> None:
    value = authorization(ServiceCredentials("gateway", GATEWAY_SECRET))
    assert verifier.verify("bearer " + value.removeprefix("Bearer ")).service == "gateway"


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, ""])
def test_absent_credentials_are_refused_with_reason_missing_credentials(
    verifier: ServiceTokenVerifier, value: str | None
) -> None:
    assert refusal(verifier, value) is AuthReason.MISSING_CREDENTIALS


@pytest.mark.parametrize(
    "value",
    ["Basic Z2F0ZXdheTpzZWNyZXQ=", "Bearer", "Bearer ", "Bearer garbage", "Bearer a.b.c"],
    ids=["basic", "no-token", "blank-token", "garbage", "bad-base64"],
)
def test_malformed_credentials_are_refused_with_reason_invalid_credentials(
    verifier: ServiceTokenVerifier, value: str
) -> None:
    assert refusal(verifier, value) is AuthReason.INVALID_CREDENTIALS


def test_unknown_service_is_refused_with_reason_invalid_credentials(
    verifier: ServiceTokenVerifier,
) -> None:
    value = authorization(ServiceCredentials("reporting", REPORTING_SECRET))
    assert refusal(verifier, value) is AuthReason.INVALID_CREDENTIALS


def test_token_claiming_a_service_but_signed_with_another_secret_is_refused(
    verifier: ServiceTokenVerifier,
) -> None:
    forged = hand_made(secret=RELAY_SECRET, iss="gateway")
    assert refusal(verifier, forged) is AuthReason.INVALID_CREDENTIALS


def test_token_for_another_audience_is_refused_with_reason_invalid_credentials(
    verifier: ServiceTokenVerifier,
) -> None:
    value = authorization(ServiceCredentials("gateway", GATEWAY_SECRET, audience="webhooks"))
    assert refusal(verifier, value) is AuthReason.INVALID_CREDENTIALS


def test_expired_token_is_refused_with_reason_invalid_credentials(
    verifier: ServiceTokenVerifier,
) -> None:
    now = int(time.time())
    assert (
        refusal(verifier, hand_made(iat=now - 120, exp=now - 7)) is AuthReason.INVALID_CREDENTIALS
    )


def test_token_expired_within_the_leeway_is_accepted(verifier: ServiceTokenVerifier) -> None:
    now = int(time.time())
    assert verifier.verify(hand_made(iat=now - 120, exp=now - 3)).service == "gateway"


@pytest.mark.parametrize("claim", ["iss", "aud", "iat", "exp", "jti"])
def test_token_without_a_required_claim_is_refused(
    verifier: ServiceTokenVerifier, claim: str
) -> None:
    removed: dict[str, Any] = {claim: None}
    assert refusal(verifier, hand_made(**removed)) is AuthReason.INVALID_CREDENTIALS


@pytest.mark.parametrize("algorithm", ["HS512", "none"])
def test_token_not_signed_with_hs256_is_refused(
    verifier: ServiceTokenVerifier, algorithm: str
) -> None:
    secret = GATEWAY_SECRET if algorithm != "none" else ""  # PyJWT's "none" takes no key
    token = hand_made(secret=secret, algorithm=algorithm)
    assert refusal(verifier, token) is AuthReason.INVALID_CREDENTIALS


@pytest.mark.parametrize("subject", ["user_123", "admin:root", "user:", "user:a b", ""])
def test_token_acting_for_a_malformed_principal_is_refused(
    verifier: ServiceTokenVerifier, subject: str
) -> None:
    assert refusal(verifier, hand_made(sub=subject)) is AuthReason.INVALID_CREDENTIALS


# --- configuration ----------------------------------------------------------------------------


def test_secrets_are_parsed_from_the_environment_format() -> None:
    parsed = parse_service_secrets(f" gateway={GATEWAY_SECRET} , webhooks-relay={RELAY_SECRET}==")
    assert parsed == {"gateway": GATEWAY_SECRET, "webhooks-relay": RELAY_SECRET + "=="}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "gateway",
        f"={GATEWAY_SECRET}",
        "gateway=",
        f"gateway={GATEWAY_SECRET},",
        f"gateway={GATEWAY_SECRET},gateway={RELAY_SECRET}",
        f"Gateway={GATEWAY_SECRET}",
        f"gateway={GATEWAY_SECRET},webhooks-relay={GATEWAY_SECRET}",
        "gateway=short-secret-of-31-characters",
    ],
    ids=[
        "empty",
        "no-equals",
        "no-name",
        "no-secret",
        "trailing-comma",
        "duplicate-service",
        "uppercase-name",
        "shared-secret",
        "short-secret",
    ],
)
def test_malformed_secret_lists_are_refused_without_echoing_secrets(value: str) -> None:
    with pytest.raises(ValueError, match="secret") as excinfo:
        parse_service_secrets(value)
    assert GATEWAY_SECRET not in str(excinfo.value)
    assert "short-secret" not in str(excinfo.value)


@pytest.mark.parametrize(
    "arguments",
    [
        ({"service": "gateway", "secret": "x" * 31}, "at least 32 characters"),
        ({"service": "Gateway!", "secret": GATEWAY_SECRET}, "invalid service name"),
        ({"service": "gateway", "secret": GATEWAY_SECRET, "ttl": 0}, "ttl must be positive"),
        ({"service": "gateway", "secret": GATEWAY_SECRET, "audience": ""}, "audience is required"),
    ],
    ids=["short-secret", "bad-name", "zero-ttl", "no-audience"],
)
def test_credentials_refuse_a_bad_configuration(arguments: tuple[dict[str, Any], str]) -> None:
    values, refusal = arguments
    with pytest.raises(ValueError, match=refusal):
        ServiceCredentials(**values)


@pytest.mark.parametrize(
    "secrets",
    [
        ({}, "at least one service secret"),
        ({"gateway": "x" * 31}, "at least 32 characters"),
        ({"gateway": GATEWAY_SECRET, "reporting": GATEWAY_SECRET}, "its own secret"),
    ],
    ids=["none", "short-secret", "shared-secret"],
)
def test_verifier_refuses_a_bad_secret_set(secrets: tuple[dict[str, str], str]) -> None:
    values, refusal = secrets
    with pytest.raises(ValueError, match=refusal):
        ServiceTokenVerifier(values, audience="billing")


def test_reprs_never_show_secrets(verifier: ServiceTokenVerifier) -> None:
    credentials = ServiceCredentials("gateway", GATEWAY_SECRET)
    assert GATEWAY_SECRET not in repr(credentials)
    assert GATEWAY_SECRET not in repr(verifier)


# --- principal --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["user:user_123", "org:org_2abcXYZ-9"])
def test_principal_key_round_trips_through_parse(key: str) -> None:
    assert Principal.parse(key).key == key


def test_principal_key_names_its_kind_and_id() -> None:
    assert Principal("org", "org_abc").key == "org:org_abc"


@pytest.mark.parametrize(
    "key", ["", "user", "user:", ":user_123", "team:t_1", "user:a:b", "user:é", None, 42]
)
def test_junk_principal_key_is_refused_with_reason_invalid_credentials(key: Any) -> None:
    with pytest.raises(AuthError) as excinfo:
        Principal.parse(key)
    assert excinfo.value.reason is AuthReason.INVALID_CREDENTIALS


@pytest.mark.parametrize(("kind", "principal_id"), [("team", "t_1"), ("user", ""), ("org", "a b")])
def test_principal_refuses_an_unknown_kind_or_bad_id(kind: Any, principal_id: str) -> None:
    with pytest.raises(ValueError, match=r"principal (kind|id) must be"):
        Principal(kind, principal_id)


# --- error type -------------------------------------------------------------------------------


def test_every_reason_is_a_lower_snake_error_code() -> None:
    for reason in AuthReason:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", reason.value)
        assert reason.value == reason.name.lower()


def test_auth_error_has_a_default_safe_message_per_reason_and_survives_pickling() -> None:
    error = AuthError(AuthReason.EXPIRED)
    assert error.message == "The session token has expired."
    assert str(error) == "expired: The session token has expired."
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - round-tripping our own object
    assert (copy.reason, copy.message) == (error.reason, error.message)
