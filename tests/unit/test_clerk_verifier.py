"""Clerk session-token verification: every refusal reason, org claims, PEM mode and JWKS caching."""

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from services.auth.clerk import ClerkVerifier, Session
from services.auth.errors import AuthError, AuthReason

ISSUER = "https://clerk.tatame.test"
APP = "https://app.tatame.test"
KID = "ins_key_1"
DROP = object()

SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROTATED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(private_key: rsa.RSAPrivateKey) -> str:
    """The PEM of a private key's public half, as Clerk's dashboard shows it."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def public_jwk(private_key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The JWKS entry Clerk publishes for a key."""
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a valid Clerk v2 session token; DROP removes a claim."""
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "user_123",
        "sid": "sess_abc",
        "azp": APP,
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "v": 2,
        "sts": "active",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not DROP}


def sign(
    payload: dict[str, Any],
    *,
    key: rsa.RSAPrivateKey = SIGNING_KEY,
    kid: str | None = KID,
    algorithm: str = "RS256",
) -> str:
    """A token signed like Clerk signs session tokens."""
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def pem_verifier(**options: Any) -> ClerkVerifier:
    """A networkless verifier trusting SIGNING_KEY."""
    return ClerkVerifier(ISSUER, jwt_key=public_pem(SIGNING_KEY), **options)


async def refusal(verifier: ClerkVerifier, token: str) -> AuthReason:
    """The reason the verifier refuses the token (fails the test if it is accepted)."""
    with pytest.raises(AuthError) as excinfo:
        await verifier.verify(token)
    return excinfo.value.reason


# --- accepted tokens and the session they give ------------------------------------------------


async def test_valid_token_yields_the_user_session() -> None:
    payload = claims()
    session = await pem_verifier().verify(sign(payload))
    assert session == Session(
        user_id="user_123",
        session_id="sess_abc",
        org_id=None,
        org_role=None,
        principal=session.principal,
        expires_at=datetime.fromtimestamp(payload["exp"], tz=UTC),
        authorized_party=APP,
    )
    assert session.principal.key == "user:user_123"


async def test_v2_organization_claim_gives_org_id_and_prefixed_role() -> None:
    token = sign(claims(o={"id": "org_abc", "rol": "admin", "slg": "dojo"}))
    session = await pem_verifier().verify(token)
    assert (session.org_id, session.org_role) == ("org_abc", "org:admin")


async def test_v1_organization_claims_give_org_id_and_role() -> None:
    token = sign(claims(v=DROP, org_id="org_abc", org_role="org:member", org_slug="dojo"))
    session = await pem_verifier().verify(token)
    assert (session.org_id, session.org_role) == ("org_abc", "org:member")


async def test_v2_token_ignores_v1_organization_claims() -> None:
    session = await pem_verifier().verify(sign(claims(org_id="org_abc", org_role="org:admin")))
    assert (session.org_id, session.org_role) == (None, None)


async def test_principal_is_the_user_when_billing_is_per_user_even_inside_an_org() -> None:
    token = sign(claims(o={"id": "org_abc", "rol": "admin"}))
    session = await pem_verifier(per_organization=False).verify(token)
    assert session.principal.key == "user:user_123"


@pytest.mark.parametrize(
    "org_claims",
    [{"o": {"id": "org_abc", "rol": "member"}}, {"v": DROP, "org_id": "org_abc"}],
    ids=["v2", "v1"],
)
async def test_principal_is_the_active_org_when_billing_is_per_organization(
    org_claims: dict[str, Any],
) -> None:
    session = await pem_verifier(per_organization=True).verify(sign(claims(**org_claims)))
    assert session.principal.key == "org:org_abc"
    assert session.user_id == "user_123"


async def test_principal_falls_back_to_the_user_without_an_active_org() -> None:
    session = await pem_verifier(per_organization=True).verify(sign(claims()))
    assert session.principal.key == "user:user_123"


# --- malformed input --------------------------------------------------------------------------


async def test_empty_token_is_refused_with_reason_missing_token() -> None:
    assert await refusal(pem_verifier(), "") is AuthReason.MISSING_TOKEN


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30", "éé.éé.éé"],
    ids=["one-segment", "bad-base64", "two-segments", "non-ascii"],
)
async def test_garbage_is_refused_with_reason_malformed_token(token: str) -> None:
    assert await refusal(pem_verifier(), token) is AuthReason.MALFORMED_TOKEN


async def test_oversized_token_is_refused_with_reason_malformed_token() -> None:
    token = sign(claims(padding="x" * 20_000))
    assert await refusal(pem_verifier(), token) is AuthReason.MALFORMED_TOKEN


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "iss"])
async def test_token_without_a_required_claim_is_refused_with_reason_malformed_token(
    claim: str,
) -> None:
    token = sign(claims(**{claim: DROP}))
    assert await refusal(pem_verifier(), token) is AuthReason.MALFORMED_TOKEN


@pytest.mark.parametrize(
    "overrides",
    [
        {"sub": ""},
        {"sub": "user 123"},
        {"exp": "soon"},
        {"sid": 42},
        {"o": "org_abc"},
        {"o": {"id": ["org_abc"]}},
        {"v": DROP, "org_id": "org:abc"},
    ],
    ids=["empty-sub", "bad-sub", "text-exp", "int-sid", "o-not-object", "o-id-list", "bad-org"],
)
async def test_token_with_ill_typed_claims_is_refused_with_reason_malformed_token(
    overrides: dict[str, Any],
) -> None:
    token = sign(claims(**overrides))
    assert await refusal(pem_verifier(per_organization=True), token) is AuthReason.MALFORMED_TOKEN


# --- algorithm and signature ------------------------------------------------------------------


async def test_unsigned_none_token_is_refused_with_reason_unsupported_algorithm() -> None:
    token = jwt.encode(claims(), "", algorithm="none")  # PyJWT's "none" takes no key
    assert await refusal(pem_verifier(), token) is AuthReason.UNSUPPORTED_ALGORITHM


async def test_hs256_token_keyed_with_the_public_pem_is_refused_as_unsupported_algorithm() -> None:
    encode = jwt.utils.base64url_encode
    signing_input = b".".join(
        encode(json.dumps(part).encode()) for part in ({"alg": "HS256", "kid": KID}, claims())
    )
    mac = hmac.new(public_pem(SIGNING_KEY).encode(), signing_input, hashlib.sha256).digest()
    forged = b".".join([signing_input, encode(mac)]).decode()
    assert await refusal(pem_verifier(), forged) is AuthReason.UNSUPPORTED_ALGORITHM


async def test_rs512_token_is_refused_with_reason_unsupported_algorithm() -> None:
    token = sign(claims(), algorithm="RS512")
    assert await refusal(pem_verifier(), token) is AuthReason.UNSUPPORTED_ALGORITHM


async def test_token_signed_by_another_key_is_refused_with_reason_bad_signature() -> None:
    with pytest.raises(AuthError) as excinfo:
        await pem_verifier().verify(sign(claims(), key=ATTACKER_KEY))
    assert excinfo.value.reason is AuthReason.BAD_SIGNATURE
    assert isinstance(excinfo.value.__cause__, jwt.InvalidSignatureError)


async def test_token_with_a_tampered_payload_is_refused_with_reason_bad_signature() -> None:
    header, _, signature = sign(claims()).split(".")
    tampered_payload = jwt.utils.base64url_encode(json.dumps(claims(sub="user_evil")).encode())
    tampered = f"{header}.{tampered_payload.decode()}.{signature}"
    assert await refusal(pem_verifier(), tampered) is AuthReason.BAD_SIGNATURE


# --- time window ------------------------------------------------------------------------------


async def test_expired_token_is_refused_with_reason_expired() -> None:
    token = sign(claims(iat=int(time.time()) - 120, exp=int(time.time()) - 60))
    assert await refusal(pem_verifier(), token) is AuthReason.EXPIRED


async def test_token_expired_within_the_leeway_is_accepted() -> None:
    now = int(time.time())
    token = sign(claims(iat=now - 60, nbf=now - 60, exp=now - 3))
    assert (await pem_verifier(leeway=5).verify(token)).user_id == "user_123"


async def test_token_expired_just_beyond_the_leeway_is_refused_with_reason_expired() -> None:
    now = int(time.time())
    token = sign(claims(iat=now - 60, nbf=now - 60, exp=now - 7))
    assert await refusal(pem_verifier(leeway=5), token) is AuthReason.EXPIRED


async def test_token_valid_from_within_the_leeway_is_accepted() -> None:
    token = sign(claims(nbf=int(time.time()) + 3))
    assert (await pem_verifier(leeway=5).verify(token)).user_id == "user_123"


async def test_token_valid_from_beyond_the_leeway_is_refused_with_reason_not_yet_valid() -> None:
    token = sign(claims(nbf=int(time.time()) + 7))
    assert await refusal(pem_verifier(leeway=5), token) is AuthReason.NOT_YET_VALID


async def test_token_issued_in_the_future_is_refused_with_reason_not_yet_valid() -> None:
    token = sign(claims(iat=int(time.time()) + 7, nbf=DROP))
    assert await refusal(pem_verifier(leeway=5), token) is AuthReason.NOT_YET_VALID


# --- issuer, authorized party, session status -------------------------------------------------


async def test_token_from_another_issuer_is_refused_with_reason_wrong_issuer() -> None:
    token = sign(claims(iss="https://clerk.evil.test"))
    assert await refusal(pem_verifier(), token) is AuthReason.WRONG_ISSUER


async def test_token_for_an_unauthorized_party_is_refused_with_reason_wrong_party() -> None:
    verifier = pem_verifier(authorized_parties=frozenset({APP}))
    token = sign(claims(azp="https://evil.test"))
    assert await refusal(verifier, token) is AuthReason.WRONG_PARTY


@pytest.mark.parametrize("azp", [APP, DROP], ids=["authorized", "absent"])
async def test_token_for_an_authorized_or_unnamed_party_is_accepted(azp: object) -> None:
    verifier = pem_verifier(authorized_parties=frozenset({APP, "exp://mobile"}))
    assert (await verifier.verify(sign(claims(azp=azp)))).user_id == "user_123"


async def test_any_party_is_accepted_when_no_authorized_parties_are_configured() -> None:
    token = sign(claims(azp="https://anywhere.test"))
    assert (await pem_verifier().verify(token)).user_id == "user_123"


async def test_pending_session_is_refused_with_reason_pending_session() -> None:
    token = sign(claims(sts="pending"))
    assert await refusal(pem_verifier(), token) is AuthReason.PENDING_SESSION


# --- PEM (networkless) mode and construction --------------------------------------------------


async def test_pem_mode_verifies_tokens_whatever_their_kid() -> None:
    verifier = pem_verifier()
    for kid in (None, "some-other-kid"):
        assert (await verifier.verify(sign(claims(), kid=kid))).user_id == "user_123"


@pytest.mark.parametrize(
    "transform",
    [
        lambda pem: pem.replace("\n", " "),
        lambda pem: pem.replace("\n", "\\n"),
        lambda pem: f"dev key, never valid in production\n{pem}trailing note\n",
    ],
    ids=["spaces", "escaped-newlines", "explanatory-text"],
)
async def test_pem_key_in_one_line_or_with_surrounding_text_is_accepted(
    transform: Callable[[str], str],
) -> None:
    verifier = ClerkVerifier(ISSUER, jwt_key=transform(public_pem(SIGNING_KEY)))
    assert (await verifier.verify(sign(claims()))).user_id == "user_123"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"jwks_url": "https://clerk.tatame.test/.well-known/jwks.json", "jwt_key": "pem"},
        {"jwt_key": "not a pem"},
        {"jwt_key": public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))},  # noqa: S505
        {
            "jwt_key": ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        },
        {"jwks_url": "http://clerk.tatame.test/.well-known/jwks.json"},
    ],
    ids=["no-key-source", "both-key-sources", "bad-pem", "short-rsa", "ec-key", "plain-http"],
)
def test_verifier_refuses_a_bad_key_configuration(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"jwks_url|jwt_key"):
        ClerkVerifier(ISSUER, **options)


# --- JWKS: served through httpx.MockTransport, on a clock the test moves ---------------------


@dataclass
class ManualClock:
    """A clock that moves only when the test advances it (wall and monotonic together)."""

    now: float = field(default_factory=time.time)

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class JwksServer:
    """A JWKS endpoint whose keys and status a test controls; counts fetches and can hold them."""

    keys: list[dict[str, Any]]
    url: str = "https://clerk.tatame.test/.well-known/jwks.json"
    status: int = 200
    fetches: int = 0
    clock: ManualClock = field(default_factory=ManualClock)
    fetch_started: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    verifiers: list[ClerkVerifier] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.released.set()
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self._serve))

    def hold_fetches(self) -> None:
        """Keep every fetch waiting until `release_fetches`."""
        self.released.clear()

    def release_fetches(self) -> None:
        self.released.set()

    def verifier(self, **options: Any) -> ClerkVerifier:
        """A verifier reading this endpoint's JWKS on the test's clock, closed when the test ends."""
        options.setdefault("http_client", self.client)
        verifier = ClerkVerifier(ISSUER, jwks_url=self.url, clock=self.clock, **options)
        self.verifiers.append(verifier)
        return verifier

    async def _serve(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == self.url
        self.fetches += 1
        self.fetch_started.set()
        await self.released.wait()
        if self.status != 200:
            return httpx.Response(self.status)
        return httpx.Response(200, json={"keys": self.keys})


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    """A JWKS endpoint serving SIGNING_KEY as KID."""
    server = JwksServer(keys=[public_jwk(SIGNING_KEY, KID)])
    yield server
    for verifier in server.verifiers:
        await verifier.aclose()
    await server.client.aclose()


async def test_jwks_is_fetched_once_and_its_keys_cached_by_kid(jwks: JwksServer) -> None:
    verifier = jwks.verifier()
    for _ in range(3):
        assert (await verifier.verify(sign(claims()))).user_id == "user_123"
    assert jwks.fetches == 1


async def test_unknown_kid_forces_a_refresh_that_finds_the_rotated_key(jwks: JwksServer) -> None:
    verifier = jwks.verifier(min_refresh_interval=0)
    await verifier.verify(sign(claims()))
    jwks.keys = [public_jwk(SIGNING_KEY, KID), public_jwk(ROTATED_KEY, "ins_key_2")]
    session = await verifier.verify(sign(claims(), key=ROTATED_KEY, kid="ins_key_2"))
    assert session.user_id == "user_123"
    assert jwks.fetches == 2


async def test_kid_still_unknown_after_the_refresh_is_refused_with_reason_unknown_key(
    jwks: JwksServer,
) -> None:
    verifier = jwks.verifier()
    assert await refusal(verifier, sign(claims(), kid="ghost")) is AuthReason.UNKNOWN_KEY
    assert jwks.fetches == 1


async def test_forced_refreshes_are_rate_limited_by_min_refresh_interval(jwks: JwksServer) -> None:
    verifier = jwks.verifier(min_refresh_interval=30)
    await verifier.verify(sign(claims()))
    ghost = sign(claims(), kid="ghost")
    for _ in range(3):
        assert await refusal(verifier, ghost) is AuthReason.UNKNOWN_KEY
    jwks.clock.advance(29.9)
    assert await refusal(verifier, ghost) is AuthReason.UNKNOWN_KEY
    assert jwks.fetches == 1
    jwks.clock.advance(0.1)
    assert await refusal(verifier, ghost) is AuthReason.UNKNOWN_KEY
    assert await refusal(verifier, ghost) is AuthReason.UNKNOWN_KEY
    assert jwks.fetches == 2


async def test_concurrent_misses_share_one_fetch(jwks: JwksServer) -> None:
    jwks.hold_fetches()
    verifier = jwks.verifier()
    pending = asyncio.gather(*(verifier.verify(sign(claims())) for _ in range(20)))
    await jwks.fetch_started.wait()  # by now the other 19 callers wait behind the first
    jwks.release_fetches()
    sessions = await pending
    assert {session.user_id for session in sessions} == {"user_123"}
    assert jwks.fetches == 1


async def test_a_cancelled_fetch_does_not_hold_back_the_next_caller(jwks: JwksServer) -> None:
    jwks.hold_fetches()
    verifier = jwks.verifier()
    abandoned = asyncio.create_task(verifier.verify(sign(claims())))
    await jwks.fetch_started.wait()
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    jwks.release_fetches()
    assert (await verifier.verify(sign(claims()))).user_id == "user_123"
    assert jwks.fetches == 2


async def test_jwks_fetch_failure_without_a_cached_key_is_refused_with_reason_keys_unavailable(
    jwks: JwksServer,
) -> None:
    jwks.status = 503
    verifier = jwks.verifier()
    assert await refusal(verifier, sign(claims())) is AuthReason.KEYS_UNAVAILABLE


async def test_unreachable_jwks_is_refused_with_reason_keys_unavailable() -> None:
    # The verifier's own HTTP client, against a loopback port where nothing listens.
    verifier = ClerkVerifier(ISSUER, jwks_url="http://127.0.0.1:9/jwks.json", fetch_timeout=2)
    try:
        assert await refusal(verifier, sign(claims())) is AuthReason.KEYS_UNAVAILABLE
    finally:
        await verifier.aclose()


async def test_jwks_without_a_usable_rs256_key_is_refused_with_reason_keys_unavailable(
    jwks: JwksServer,
) -> None:
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1())))
    short_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    jwks.keys = [
        public_jwk(short_key, KID),
        {**ec_jwk, "kid": "ec"},
        {**public_jwk(SIGNING_KEY, "enc"), "use": "enc"},
    ]
    assert await refusal(jwks.verifier(), sign(claims())) is AuthReason.KEYS_UNAVAILABLE


async def test_cached_keys_keep_working_while_the_jwks_endpoint_fails(jwks: JwksServer) -> None:
    verifier = jwks.verifier(min_refresh_interval=0)
    await verifier.verify(sign(claims()))
    jwks.status = 500
    assert (await verifier.verify(sign(claims()))).user_id == "user_123"
    assert await refusal(verifier, sign(claims(), kid="new")) is AuthReason.KEYS_UNAVAILABLE
    assert (await verifier.verify(sign(claims()))).user_id == "user_123"
    assert jwks.fetches == 2


async def test_jwks_token_without_a_kid_is_refused_with_reason_malformed_token(
    jwks: JwksServer,
) -> None:
    assert await refusal(jwks.verifier(), sign(claims(), kid=None)) is AuthReason.MALFORMED_TOKEN
    assert jwks.fetches == 0


async def test_injected_http_client_is_used_and_left_open(jwks: JwksServer) -> None:
    verifier = jwks.verifier(http_client=jwks.client)
    await verifier.verify(sign(claims()))
    await verifier.aclose()
    assert not jwks.client.is_closed
    assert jwks.fetches == 1


# --- the verified-token cache ------------------------------------------------------------------


async def test_a_verified_token_is_answered_from_the_cache_without_a_second_rsa_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = pem_verifier()
    token = sign(claims())
    first = await verifier.verify(token)

    def no_second_decode(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the token was decoded again")

    monkeypatch.setattr(verifier._jwt, "decode", no_second_decode)
    assert await verifier.verify(token) == first
    with pytest.raises(AssertionError):  # a different token is still checked
        await verifier.verify(sign(claims(sub="user_other")))


async def test_a_cached_token_is_refused_once_it_expires() -> None:
    clock = ManualClock()
    verifier = pem_verifier(leeway=0, clock=clock)
    now = int(time.time())
    token = sign(claims(iat=now, nbf=now, exp=now + 1))
    assert (await verifier.verify(token)).user_id == "user_123"
    clock.advance(2.1)
    assert await refusal(verifier, token) is AuthReason.EXPIRED


async def test_the_cache_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = pem_verifier(verified_cache_seconds=0)
    decode = verifier._jwt.decode
    decoded: list[str] = []

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(verifier._jwt, "decode", counting_decode)
    token = sign(claims())
    await verifier.verify(token)
    await verifier.verify(token)
    assert decoded == [token, token]  # checked in full each time
