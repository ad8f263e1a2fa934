"""GET /v1/usage end to end: HTTP → gateway → gRPC → billing → Postgres, the caller's own usage
only (the cross-user rule), with usage an internal service reported through another billing
replica on the same database, also in the caller's export; and the metered price of the seeded
catalog in GET /v1/plans."""

import secrets
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from tatame.billing.v1 import billing_pb2_grpc, usage_pb2

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.billing.grpc_api import start_billing_server
from services.billing.settings import BillingRules
from tests.e2e.gateway_client import assert_error
from tests.harness import BillingHandle

VIDEO, VIDEO_SECRET = "video", secrets.token_urlsafe(32)
METER = "video_minutes"


@pytest.fixture(scope="module")
async def video_service(
    billing: BillingHandle,
) -> AsyncIterator[billing_pb2_grpc.BillingServiceStub]:
    """Another billing replica (no usage sender) on which the `video` service reports usage."""
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=billing.engine,
        stripe_client=billing.stripe,
        service_secrets={**billing.service_secrets, VIDEO: VIDEO_SECRET},
        rules=BillingRules(usage_callers=frozenset({VIDEO})),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield billing_pb2_grpc.BillingServiceStub(channel)
    finally:
        await server.stop(0)


async def _watched(stub: billing_pb2_grpc.BillingServiceStub, user_id: str, minutes: int) -> None:
    metadata = ServiceCredentials(VIDEO, VIDEO_SECRET, audience="billing").metadata(
        Principal("user", user_id)
    )
    request = usage_pb2.RecordUsageRequest(
        meter=METER, value=minutes, identifier=f"{user_id}-{secrets.token_hex(8)}"
    )
    await stub.RecordUsage(request, metadata=metadata)


def _minutes(body: dict) -> dict:
    [meter] = [m for m in body["meters"] if m["event_name"] == METER]
    return meter


async def test_usage_is_the_callers_own_this_period(
    client: httpx.AsyncClient, new_user, video_service: billing_pb2_grpc.BillingServiceStub
) -> None:
    watcher, other = await new_user(), await new_user()
    for minutes in (40, 2):
        await _watched(video_service, watcher.id, minutes)

    mine = await client.get("/v1/usage", headers=watcher.headers)
    theirs = await client.get("/v1/usage", headers=other.headers)

    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["period_start"] < body["period_end"]
    meter = _minutes(body)
    assert (meter["value"], meter["formula"], meter["display_name"]) == (42, "sum", "Video minutes")
    assert meter["pending_records"] == 2  # this replica sends nothing; billing's sender will
    assert meter["meter"].startswith("mtr_")
    assert _minutes(theirs.json())["value"] == 0  # another user's usage is not the caller's
    assert_error(await client.get("/v1/usage"), 401, "missing_token")
    exported = (await client.get("/v1/me/export", headers=watcher.headers)).json()
    assert [(r["event_name"], r["value"]) for r in exported["usage_records"]] == [
        (METER, 40),
        (METER, 2),
    ]
    assert (await client.get("/v1/me/export", headers=other.headers)).json()["usage_records"] == []


async def test_a_metered_price_is_listed_with_its_unit_amount_and_meter(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/plans")

    plans = {plan["name"]: plan for plan in response.json()["plans"]}
    [price] = plans["Video on demand"]["prices"]
    assert (price["usage_type"], price["unit_amount"], price["fixed_amount"]) == (
        "metered",
        5,
        False,
    )
    assert price["meter"].startswith("mtr_")
