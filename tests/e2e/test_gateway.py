"""The REST edge end to end: HTTP → gateway → gRPC → billing → Postgres and the Stripe emulator."""

import asyncio
import secrets
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tatame_devstack.ports import free_port

from gateway.app import create_app
from services.common.errors import ErrorReason
from tests.e2e.gateway_client import ALLOWED_ORIGIN, MAX_BODY_BYTES, TokenIssuer, assert_error
from tests.harness import serve_on_loopback


def new_user_id() -> str:
    return "user_" + secrets.token_hex(6)


async def test_plans_are_public_and_list_the_demo_catalog(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/plans")
    assert response.status_code == 200
    plans = {p["name"]: p for p in response.json()["plans"]}
    assert {"Tatame Basic", "Tatame Pro"} <= set(plans)
    intervals = {price["interval"] for price in plans["Tatame Pro"]["prices"]}
    assert intervals == {"month", "year"}
    assert all(isinstance(price["unit_amount"], int) for price in plans["Tatame Pro"]["prices"])


async def test_plans_answer_not_modified_to_a_matching_etag(client: httpx.AsyncClient) -> None:
    # Other tests' catalog changes reach billing by webhook at any time: a changed catalog is a
    # 200 with another ETag, and the next conditional request is then a 304.
    etag = (await client.get("/v1/plans")).headers["etag"]
    for _ in range(20):
        again = await client.get("/v1/plans", headers={"If-None-Match": etag})
        if again.status_code == 304:
            return
        assert again.status_code == 200
        assert again.headers["etag"] != etag
        etag = again.headers["etag"]
    raise AssertionError("the catalog kept changing: no 304 in 20 conditional requests")


async def test_customer_is_404_then_created_201_then_200(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    user = new_user_id()
    headers = issuer.headers(user)
    assert_error(await client.get("/v1/customer", headers=headers), 404, "not_found")

    body = {"email": f"{user}@example.com", "name": "Ana Souza"}
    created = await client.post("/v1/customer", json=body, headers=headers)
    assert created.status_code == 201, created.text
    again = await client.post("/v1/customer", json=body, headers=headers)
    assert again.status_code == 200
    fetched = await client.get("/v1/customer", headers=headers)
    assert fetched.status_code == 200
    assert fetched.json()["stripe_customer_id"] == created.json()["stripe_customer_id"]
    assert fetched.json()["email"] == body["email"]


async def test_session_cookie_authenticates_like_the_bearer_header(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    cookie = f"__session={issuer.token(new_user_id())}"  # as the browser sends it
    response = await client.get("/v1/customer", headers={"Cookie": cookie})
    assert_error(response, 404, "not_found")  # authenticated, no customer yet


async def test_a_cookie_token_must_name_an_authorized_party_a_bearer_token_need_not(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    """Cookies travel with cross-site requests; a native app's bearer token may lack `azp`."""
    token = issuer.token(new_user_id(), azp=None)
    refused = await client.get("/v1/customer", headers={"Cookie": f"__session={token}"})
    assert_error(refused, 401, "wrong_party")
    bearer = await client.get("/v1/customer", headers={"Authorization": f"Bearer {token}"})
    assert_error(bearer, 404, "not_found")  # authenticated, no customer yet


@pytest.mark.parametrize("header", [{"typ": "at+jwt"}, {"cat": "cl_B7d4PD222AAA"}])
async def test_an_oauth_or_template_token_signed_by_the_instance_is_not_a_session(
    client: httpx.AsyncClient, issuer: TokenIssuer, header: dict[str, str]
) -> None:
    claims = jwt.decode(issuer.token(new_user_id()), options={"verify_signature": False})
    token = jwt.encode(claims, issuer.key, algorithm="RS256", headers={"kid": "test-1", **header})
    response = await client.get("/v1/customer", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, "not_a_session_token")


async def test_twenty_concurrent_creates_make_exactly_one_stripe_customer(
    client: httpx.AsyncClient, issuer: TokenIssuer, billing
) -> None:
    user = new_user_id()
    email = f"{user}@example.com"
    headers = issuer.headers(user)
    responses = await asyncio.gather(
        *(
            client.post("/v1/customer", json={"email": email, "name": "Ana"}, headers=headers)
            for _ in range(20)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["stripe_customer_id"] for r in responses}) == 1
    listed = await billing.stripe.v1.customers.list_async(params={"email": email, "limit": 100})
    assert len(listed.data) == 1


async def test_another_users_token_never_reaches_the_first_users_customer(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    first, second = new_user_id(), new_user_id()
    created = await client.post(
        "/v1/customer", json={"email": f"{first}@example.com"}, headers=issuer.headers(first)
    )
    assert created.status_code == 201
    assert_error(await client.get("/v1/customer", headers=issuer.headers(second)), 404, "not_found")


def _token_defects(issuer: TokenIssuer) -> dict[str, str]:
    now = int(time.time())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    valid = issuer.token("user_x")
    header, payload, signature = valid.split(".")
    return {
        "expired": issuer.token("user_x", iat=now - 600, nbf=now - 600, exp=now - 60),
        "not_yet_valid": issuer.token("user_x", nbf=now + 120, exp=now + 600),
        "bad_signature": issuer.token("user_x", key=stranger),
        "wrong_issuer": issuer.token("user_x", iss="https://evil.example"),
        "wrong_party": issuer.token("user_x", azp="https://evil.example"),
        "pending_session": issuer.token("user_x", sts="pending"),
        "unsupported_algorithm": jwt.encode(
            {"sub": "user_x", "iss": "x", "exp": now + 60}, "k" * 32, "HS256"
        ),
        "malformed_token": "not.a.jwt",
        "tampered": f"{header}.{payload[:-4]}AAAA.{signature}",
    }


@pytest.mark.parametrize(
    "defect",
    [
        "expired",
        "not_yet_valid",
        "bad_signature",
        "wrong_issuer",
        "wrong_party",
        "pending_session",
        "unsupported_algorithm",
        "malformed_token",
        "tampered",
    ],
)
async def test_each_token_defect_is_401_with_its_reason(
    client: httpx.AsyncClient, issuer: TokenIssuer, defect: str
) -> None:
    token = _token_defects(issuer)[defect]
    response = await client.get("/v1/customer", headers={"Authorization": f"Bearer {token}"})
    expected = {"tampered": ("bad_signature", "malformed_token")}.get(defect, (defect,))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] in expected
    assert response.headers["www-authenticate"] == "Bearer"


async def test_missing_token_is_401_missing_token(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/customer"), 401, "missing_token")


async def test_non_bearer_authorization_is_401_malformed(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.get("/v1/customer", headers={"Authorization": "Basic abc"}),
        401,
        "malformed_token",
    )


async def test_invalid_json_is_400_and_creates_nothing(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    user = new_user_id()
    headers = {**issuer.headers(user), "Content-Type": "application/json"}
    assert_error(
        await client.post("/v1/customer", content=b'{"email": ', headers=headers),
        400,
        "invalid_json",
    )
    assert_error(await client.get("/v1/customer", headers=headers), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"email": 42},
        {"email": ["a@b.co"]},
        {"name": "no email"},
        {"email": "a@b.co", "admin": True},
        [],
    ],
)
async def test_wrong_types_and_unknown_fields_are_400(
    client: httpx.AsyncClient, issuer: TokenIssuer, body: object
) -> None:
    response = await client.post("/v1/customer", json=body, headers=issuer.headers(new_user_id()))
    assert_error(response, 400, "invalid_request")


async def test_invalid_email_is_400_from_billing(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    response = await client.post(
        "/v1/customer", json={"email": "nope"}, headers=issuer.headers(new_user_id())
    )
    assert_error(response, 400, "invalid_argument")


async def test_oversized_body_is_413(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    body = b'{"email": "' + b"a" * (MAX_BODY_BYTES + 1) + b'@example.com"}'
    response = await client.post(
        "/v1/customer",
        content=body,
        headers={**issuer.headers(new_user_id()), "Content-Type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")


async def test_oversized_chunked_body_is_413(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    async def chunks():
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    response = await client.post(
        "/v1/customer",
        content=chunks(),
        headers={**issuer.headers(new_user_id()), "Content-Type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")


async def test_unknown_route_and_wrong_method_use_the_error_body(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(await client.delete("/v1/plans"), 405, "method_not_allowed")


async def test_request_id_is_echoed_when_well_formed_and_replaced_otherwise(
    client: httpx.AsyncClient,
) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert echoed.headers["x-request-id"] == "req-123"
    replaced = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] not in ("", "bad id\twith spaces")


async def test_cors_allows_only_the_allowlisted_origins(client: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = await client.options("/v1/customer", headers={"Origin": ALLOWED_ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    refused = await client.options(
        "/v1/customer", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers


async def test_health_ready_and_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    spec = (await client.get("/openapi.json")).json()
    assert {"/v1/plans", "/v1/customer", "/healthz", "/readyz"} <= set(spec["paths"])
    assert (await client.get("/docs")).status_code == 200


async def test_the_openapi_error_body_lists_every_reason_billing_sends(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    described = spec["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["description"]
    assert all(f"`{reason}`" in described for reason in ErrorReason)


async def test_billing_down_is_503_and_not_ready(gateway, issuer: TokenIssuer) -> None:
    dead_target = f"127.0.0.1:{free_port()}"  # a loopback port where nothing listens
    settings = gateway.settings.model_copy(
        update={"billing_target": dead_target, "gateway_rpc_timeout_seconds": 1.0}
    )
    server, task, port = await serve_on_loopback(create_app(settings))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as down:
            assert_error(await down.get("/readyz"), 503, "billing_unavailable")
            assert_error(await down.get("/v1/plans"), 503, "unavailable")
            response = await down.get("/v1/customer", headers=issuer.headers(new_user_id()))
            assert response.status_code in (503, 504)
            assert "Traceback" not in response.text
    finally:
        server.should_exit = True
        await task
