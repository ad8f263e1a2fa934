"""The token fuzz test: whatever arrives as a session token (bytes that are no JWT, JOSE headers
and payloads of any JSON, correctly SIGNED tokens whose claims have odd types, enormous numbers
or deep nesting, over-long tokens), the verifier answers a Session or an AuthError, nothing else.
"""

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.auth.clerk import MAX_TOKEN_LENGTH, ClerkVerifier, Session
from services.auth.errors import AuthError
from tests.unit.test_clerk_verifier import APP, ISSUER, SIGNING_KEY, public_pem

# Enough examples to have found each defect these tests were written against, few enough for CI.
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
# Claims and header fields the verifier reads; the fuzzer sets them to anything.
CLAIM_NAMES = (
    *("iss", "sub", "sid", "exp", "iat", "nbf", "azp", "sts", "v", "o", "fea"),
    *("org_id", "org_role", "org_permissions", "jti", "aud"),
)
HEADER_NAMES = ("alg", "typ", "cat", "kid", "crit", "b64")
# JSON texts json.loads reads into values that break naive code: huge and special numbers.
ODD_NUMBERS = ("9" * 5000, "-" + "9" * 400, "1e999", "-1e999", "NaN", "Infinity", "-0", "1.5")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["https://clerk.tatame.test", "user_123", "org_abc", "admin", "JWT"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "rol", "per", "fpm", "slg"]) | st.text(max_size=5),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header_json: str, payload_json: str) -> str:
    """A token whose signature is genuine: the fuzz reaches past the signature check."""
    signing_input = f"{b64(header_json.encode())}.{b64(payload_json.encode())}"
    signature = SIGNING_KEY.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def valid_claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": "user_123",
        "sid": "sess_1",
        "azp": APP,
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "v": 2,
    }


def with_raw_values(document: dict[str, Any], raw: dict[str, str]) -> str:
    """`document` as JSON with some members' values replaced by raw JSON text."""
    text = json.dumps(document)
    for name, value in raw.items():
        text = text[:-1] + f', "{name}": {value}}}'
    return text


def outcome(verifier: ClerkVerifier, token: Any, *, carrier: str = "header") -> Session | AuthError:
    """What verify() gives: a Session or an AuthError; any other exception fails the test."""
    try:
        return RUNNER.run(verifier.verify(token, carrier=carrier))  # type: ignore[arg-type]
    except AuthError as error:
        return error


def verifier() -> ClerkVerifier:
    """A PEM verifier without the verified-token cache, so that every example is verified."""
    return ClerkVerifier(
        ISSUER,
        jwt_key=public_pem(SIGNING_KEY),
        authorized_parties=frozenset({APP}),
        per_organization=True,
        verified_cache_seconds=0,
    )


VERIFIER = verifier()
RUNNER = asyncio.Runner()  # one event loop for every example, not one each


@FUZZ
@given(
    token=st.text(max_size=200)
    | st.lists(st.binary(max_size=60).map(b64), min_size=1, max_size=5).map(".".join)
    | st.builds(lambda n: "a." * n, st.integers(0, 10))
    | st.sampled_from(["mt_abc", "oat_abc", "ak_abc", "", " ", "..", "Bearer x"])
    | st.none()
    | st.integers()
    | st.binary(max_size=20)
    | st.lists(st.text(max_size=3), max_size=3),
    carrier=st.sampled_from(["header", "cookie"]),
)
def test_anything_that_is_not_a_jwt_is_an_auth_error(token: Any, carrier: str) -> None:
    assert isinstance(outcome(VERIFIER, token, carrier=carrier), AuthError)


@FUZZ
@given(header=json_values, payload=json_values, signature=st.binary(max_size=300))
def test_unsigned_headers_and_payloads_of_any_json_are_auth_errors(
    header: Any, payload: Any, signature: bytes
) -> None:
    token = (
        f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"
    )
    assert isinstance(outcome(VERIFIER, token), AuthError)


@FUZZ
@given(
    claims=st.dictionaries(st.sampled_from(CLAIM_NAMES), json_values, max_size=6),
    header=st.dictionaries(st.sampled_from(HEADER_NAMES), json_values, max_size=3),
    raw_claims=st.dictionaries(
        st.sampled_from(CLAIM_NAMES), st.sampled_from(ODD_NUMBERS), max_size=2
    ),
    carrier=st.sampled_from(["header", "cookie"]),
)
def test_signed_tokens_with_pathological_claims_give_a_session_or_an_auth_error(
    claims: dict[str, Any], header: dict[str, Any], raw_claims: dict[str, str], carrier: str
) -> None:
    payload = {**valid_claims(), **claims}
    for name in raw_claims:
        payload.pop(name, None)
    token = signed(json.dumps({"alg": "RS256", **header}), with_raw_values(payload, raw_claims))
    result = outcome(VERIFIER, token, carrier=carrier)
    assert isinstance(result, Session | AuthError)
    if isinstance(result, Session):  # what it says was checked, whatever else the token held
        assert result.user_id == payload["sub"]
        assert result.session_id == payload["sid"]


@pytest.mark.parametrize("depth", [10, 900, 1_100, 3_000, 6_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
@pytest.mark.parametrize("where", ["header", "payload", "claim"])
def test_signed_json_nested_however_deep_is_an_auth_error_or_a_session(
    depth: int, opener: str, where: str
) -> None:
    """Python's json gives up with RecursionError past ~1,000 levels (3.11) or more (3.13 reads
    5,000); the cap on token length stops the parse of anything deeper than ~6,000."""
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "0" + closer * depth
    header, payload = json.dumps({"alg": "RS256"}), json.dumps(valid_claims())
    if where == "header":
        header = with_raw_values({"alg": "RS256"}, {"x": nested})
    elif where == "payload":
        payload = nested
    else:
        others = {name: value for name, value in valid_claims().items() if name != "sub"}
        payload = with_raw_values(others, {"sub": nested})
    result = outcome(VERIFIER, signed(header, payload))
    # An unknown header member is ignored, however nested, while json can read it.
    assert isinstance(result, AuthError) or (where == "header" and isinstance(result, Session))
    if depth < 1_000:  # every Python reads that deep: the nesting itself is no refusal
        assert isinstance(result, Session) == (where == "header")


def test_a_token_longer_than_the_cap_is_refused_before_it_is_parsed() -> None:
    nested = "[" * MAX_TOKEN_LENGTH + "]" * MAX_TOKEN_LENGTH
    token = signed(with_raw_values({"alg": "RS256"}, {"x": nested}), "{}")
    error = outcome(VERIFIER, token)
    assert isinstance(error, AuthError)
    assert error.reason == "malformed_token"
