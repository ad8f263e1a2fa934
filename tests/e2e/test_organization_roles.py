"""Billing per organization end to end: only its billing managers (role `org:admin`, or the
permission `org:billing:manage` configured here) change it, on every mutating route; every
member reads it."""

import re
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from tatame_devstack.dev_issuer import organization_claims

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.e2e.gateway_client import ISSUER, GatewayHandle, TokenIssuer, assert_error, with_key
from tests.harness import serve_on_loopback

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
MANAGE_PERMISSION = "org:billing:manage"


@pytest.fixture(scope="module")
async def org_gateway(gateway: GatewayHandle) -> AsyncIterator[GatewayHandle]:
    """A second gateway before the same billing, billing per organization."""
    settings = gateway.settings.model_copy(
        update={
            "billing_per_organization": True,
            "billing_org_manager_permissions": (MANAGE_PERMISSION,),
        }
    )
    server, task, port = await serve_on_loopback(create_app(settings))
    yield GatewayHandle(f"http://127.0.0.1:{port}", settings)
    server.should_exit = True
    await task


@pytest.fixture
async def org_client(org_gateway: GatewayHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=org_gateway.url, timeout=30) as client:
        yield client


def member_headers(
    issuer: TokenIssuer, org_id: str, role: str, permissions: tuple[str, ...] = ()
) -> dict[str, str]:
    """A new user's token in `org_id` with `role` and `permissions`, as Clerk writes v2."""
    claims = organization_claims(org_id, role=role, permissions=permissions)
    return issuer.headers("user_" + secrets.token_hex(6), **claims)


def mutating_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the gateway that changes something, compat routes included, as
    its OpenAPI document lists them (from an app that is never started: no secrets needed)."""
    app = create_app(GatewaySettings.model_construct(clerk_issuer=ISSUER))
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method.upper() in MUTATING
    )


ROUTES = mutating_routes()


def test_the_gateway_has_the_mutating_routes_this_test_walks() -> None:
    """Guards the walk below against an empty or shrunken route list."""
    assert len(ROUTES) >= 20, ROUTES
    assert ("DELETE", "/api/stripe/subscriptions/{subscription_id}") in ROUTES
    assert ("PATCH", "/v1/subscriptions/{subscription_id}") in ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_a_member_without_the_billing_role_is_refused_on_every_mutating_route(
    org_client: httpx.AsyncClient, issuer: TokenIssuer, method: str, path: str
) -> None:
    headers = with_key(member_headers(issuer, "org_" + secrets.token_hex(6), "org:member"))
    url = re.sub(r"\{[^}]+\}", "x_1", path)
    response = await org_client.request(method, url, json={}, headers=headers)
    assert_error(response, 403, "org_role_required")


async def test_the_admin_changes_billing_and_a_member_reads_it(
    org_client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    org_id = "org_" + secrets.token_hex(6)
    admin = member_headers(issuer, org_id, "org:admin")
    member = member_headers(issuer, org_id, "org:member")
    refused = await org_client.post(
        "/v1/customer", json={"email": "dojo@example.com"}, headers=member
    )
    assert_error(refused, 403, "org_role_required")
    assert_error(await org_client.get("/v1/customer", headers=admin), 404, "not_found")

    created = await org_client.post(
        "/v1/customer", json={"email": "dojo@example.com"}, headers=admin
    )
    assert created.status_code == 201, created.text
    read = await org_client.get("/v1/customer", headers=member)
    assert read.status_code == 200, read.text
    assert read.json()["stripe_customer_id"] == created.json()["stripe_customer_id"]
    entitlements = await org_client.get("/v1/entitlements", headers=member)
    assert entitlements.status_code == 200, entitlements.text
    assert (await org_client.get("/v1/subscriptions", headers=member)).status_code == 200


async def test_a_member_with_the_configured_permission_manages_billing(
    org_client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    org_id = "org_" + secrets.token_hex(6)
    treasurer = member_headers(issuer, org_id, "org:member", (MANAGE_PERMISSION,))
    reader = member_headers(issuer, org_id, "org:member", ("org:billing:read",))
    created = await org_client.post(
        "/v1/customer", json={"email": "dojo@example.com"}, headers=treasurer
    )
    assert created.status_code == 201, created.text
    assert_error(
        await org_client.post("/v1/setup-intents", headers=with_key(reader)),
        403,
        "org_role_required",
    )
    setup = await org_client.post("/v1/setup-intents", headers=with_key(treasurer))
    assert setup.status_code == 201, setup.text


async def test_a_member_of_another_organization_never_reaches_this_ones_customer(
    org_client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    first, second = "org_" + secrets.token_hex(6), "org_" + secrets.token_hex(6)
    created = await org_client.post(
        "/v1/customer",
        json={"email": "dojo@example.com"},
        headers=member_headers(issuer, first, "org:admin"),
    )
    assert created.status_code == 201, created.text
    outsider = member_headers(issuer, second, "org:admin")
    assert_error(await org_client.get("/v1/customer", headers=outsider), 404, "not_found")
