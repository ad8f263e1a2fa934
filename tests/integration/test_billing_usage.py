"""Usage-based prices: internal services report usage over gRPC (RecordUsage), billing stores it
once per identifier and its usage sender delivers it to Stripe's meter events API (the session's
emulator, which counts each identifier once), retrying when Stripe fails; CheckEntitlement
answers a product's `limits.<feature>` with what is left of it this period."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc, usage_pb2

from services.auth.service_credentials import ServiceCredentials
from services.billing.catalog import sync_catalog
from services.billing.grpc_api import start_billing_server
from services.billing.settings import BillingRules
from services.billing.usage.sender import UsageSending
from services.billing.usage.tables import usage_records
from tests.harness import APP_ORIGIN, BillingHandle
from tests.integration.billing_accounts import SECRETS, Account, Stub, stripe_json
from tests.integration.stripe_emulator_helpers import unique

VIDEO = "video"  # the internal service that reports minutes watched
VIDEO_SECRET = secrets.token_urlsafe(32)
METER = "video_minutes"  # the seeded catalog's meter (sum)
CALLERS, RECORDS_EACH = 20, 500


@pytest.fixture(scope="module")
async def stub(billing: BillingHandle) -> AsyncIterator[Stub]:
    """Billing with `video` allowed to report usage and read entitlements, no trials, and a
    usage sender that looks often and backs off briefly."""
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=billing.engine,
        stripe_client=billing.stripe,
        service_secrets={**billing.service_secrets, **SECRETS, VIDEO: VIDEO_SECRET},
        rules=BillingRules(
            allowed_redirect_origins=frozenset({APP_ORIGIN}),
            trial_days=0,
            entitlement_callers=frozenset({VIDEO}),
            usage_callers=frozenset({VIDEO}),
            test_clock_prefix=billing.stripe_target.test_clock_prefix,
        ),
        usage_sending=UsageSending(
            batch_size=200, concurrency=16, poll_seconds=0.05, backoff_base_seconds=0.2
        ),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield billing_pb2_grpc.BillingServiceStub(channel)
    finally:
        await server.stop(0)


async def _account(billing: BillingHandle, stub: Stub) -> tuple[Account, str]:
    account = Account(billing, stub)
    return account, await account.customer_id()


def _video(account: Account) -> tuple[tuple[str, str], ...]:
    """The video service's credential, acting for the account's principal."""
    credentials = ServiceCredentials(VIDEO, VIDEO_SECRET, audience="billing")
    return credentials.metadata(account.principal)


async def _record(account: Account, **fields: Any) -> usage_pb2.RecordUsageResponse:
    fields.setdefault("meter", METER)
    fields.setdefault("identifier", unique("use"))
    request = usage_pb2.RecordUsageRequest(**fields)
    return await account.stub.RecordUsage(request, metadata=_video(account))


async def _refused(account: Account, **fields: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _record(account, **fields)
    return refused.value


async def _all_sent(billing: BillingHandle, principals: list[str]) -> None:
    deadline = time.monotonic() + 180
    query = (
        select(func.count())
        .select_from(usage_records)
        .where(usage_records.c.principal.in_(principals), usage_records.c.state == "pending")
    )
    while time.monotonic() < deadline:
        async with billing.engine.connect() as conn:
            if await conn.scalar(query) == 0:
                return
        await asyncio.sleep(0.2)
    raise AssertionError("usage records still pending")


async def _stripe_total(billing: BillingHandle, customer_id: str) -> float:
    """What Stripe aggregated for the customer on the video_minutes meter, over the last hour."""
    listed = await billing.stripe.v1.billing.meters.list_async(
        params={"status": "active", "limit": 100}
    )
    [meter] = [m async for m in listed.auto_paging_iter() if m.event_name == METER]
    minute = int(time.time()) // 60 * 60
    summaries = await stripe_json(
        billing,
        "get",
        f"/v1/billing/meters/{meter.id}/event_summaries",
        customer=customer_id,
        start_time=minute - 3600,
        end_time=minute + 600,
    )
    return float(sum(s["aggregated_value"] for s in summaries["data"]))


async def test_ten_thousand_records_from_twenty_callers_reach_stripe_once(
    billing: BillingHandle, stub: Stub
) -> None:
    accounts = [await _account(billing, stub) for _ in range(CALLERS)]

    async def caller(account: Account) -> int:
        recorded = 0
        for n in range(RECORDS_EACH):
            identifier = f"{account.principal.id}-{n}"
            reply = await _record(account, value=n % 7 + 1, identifier=identifier)
            recorded += reply.recorded
            if n % 50 == 0:  # a retry of the same report: accepted, counted once
                again = await _record(account, value=n % 7 + 1, identifier=identifier)
                assert not again.recorded
        return recorded

    counts = await asyncio.gather(*(caller(account) for account, _ in accounts))
    await _all_sent(billing, [account.principal.key for account, _ in accounts])

    assert counts == [RECORDS_EACH] * CALLERS
    expected = float(sum(n % 7 + 1 for n in range(RECORDS_EACH)))
    for account, customer_id in accounts:
        assert await _stripe_total(billing, customer_id) == expected, account.principal
    async with billing.engine.connect() as conn:
        states: dict[str, int] = dict(
            (
                await conn.execute(
                    select(usage_records.c.state, func.count())
                    .where(usage_records.c.principal.in_([a.principal.key for a, _ in accounts]))
                    .group_by(usage_records.c.state)
                )
            ).all()
        )
    assert states == {"sent": CALLERS * RECORDS_EACH}


async def test_a_duplicate_identifier_is_accepted_and_not_counted_twice(
    billing: BillingHandle, stub: Stub
) -> None:
    account, customer_id = await _account(billing, stub)
    identifier = unique("minute")

    first = await _record(account, value=30, identifier=identifier)
    again = await _record(account, value=30, identifier=identifier)
    other_value = await _refused(account, value=31, identifier=identifier)
    await _all_sent(billing, [account.principal.key])

    assert (first.recorded, again.recorded) == (True, False)
    assert other_value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert await _stripe_total(billing, customer_id) == 30
    usage = await stub.GetUsage(usage_pb2.GetUsageRequest(), metadata=account.metadata)
    [minutes] = [m for m in usage.meters if m.event_name == METER]
    assert (minutes.value, minutes.pending_records, minutes.formula) == (30, 0, "sum")


async def test_the_sender_retries_while_stripe_fails(billing: BillingHandle, stub: Stub) -> None:
    account, customer_id = await _account(billing, stub)
    await stripe_json(billing, "post", "/_testing/rate_limit", count=3)
    try:
        for value in (5, 6, 7):
            await _record(account, value=value)
        await _all_sent(billing, [account.principal.key])
    finally:
        await stripe_json(billing, "post", "/_testing/rate_limit", count=0)

    assert await _stripe_total(billing, customer_id) == 18
    async with billing.engine.connect() as conn:
        attempts = await conn.scalar(
            select(func.max(usage_records.c.attempts)).where(
                usage_records.c.principal == account.principal.key
            )
        )
    assert attempts is not None
    assert attempts > 1


async def test_only_the_usage_callers_may_record(billing: BillingHandle, stub: Stub) -> None:
    account, _ = await _account(billing, stub)
    request = usage_pb2.RecordUsageRequest(meter=METER, value=1, identifier=unique("use"))

    for metadata in (
        account.metadata,  # the gateway: the apps never report their own usage
        ServiceCredentials(
            "reporting", billing.service_secrets["reporting"], audience="billing"
        ).metadata(account.principal),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.RecordUsage(request, metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_usage_that_stripe_would_refuse_is_refused_at_once(
    billing: BillingHandle, stub: Stub
) -> None:
    account, _ = await _account(billing, stub)
    stranger = Account(billing, stub)  # no customer yet
    old = Timestamp()
    old.FromDatetime(datetime.now(UTC) - timedelta(days=36))

    refusals = [
        await _refused(stranger, value=1),
        await _refused(account, meter="no_such_meter", value=1),
        await _refused(account, value=1, timestamp=old),
        await _refused(account, value=-1),
        await _refused(account, value=1, identifier="x" * 101),
    ]

    assert [r.code() for r in refusals] == [grpc.StatusCode.FAILED_PRECONDITION] + [
        grpc.StatusCode.INVALID_ARGUMENT
    ] * 4


async def test_check_entitlement_answers_the_limit_and_what_is_left(
    billing: BillingHandle, stub: Stub
) -> None:
    lookup_key = unique("video_plan")
    product = await billing.stripe.v1.products.create_async(
        params={
            "name": unique("Video"),
            "metadata": {"features": f"video_library,{METER}", f"limits.{METER}": "600"},
        }
    )
    await billing.stripe.v1.prices.create_async(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 2900,
            "lookup_key": lookup_key,
            "recurring": {"interval": "month"},
        }
    )
    await sync_catalog(engine=billing.engine, stripe_client=billing.stripe)
    try:
        account, _ = await _account(billing, stub)
        await account.subscribe(lookup_key)
        for value in (100, 250):
            await _record(account, value=value)
        check = billing_pb2.CheckEntitlementRequest(feature=METER)

        limited = await stub.CheckEntitlement(check, metadata=_video(account))
        unlimited = await stub.CheckEntitlement(
            billing_pb2.CheckEntitlementRequest(feature="video_library"), metadata=_video(account)
        )
        await _record(account, value=400)
        exhausted = await stub.CheckEntitlement(check, metadata=_video(account))
    finally:
        await billing.stripe.v1.products.update_async(product.id, params={"active": False})
        await sync_catalog(engine=billing.engine, stripe_client=billing.stripe)

    assert (limited.entitled, limited.limit, limited.remaining) == (True, 600, 250)
    assert unlimited.entitled
    assert not unlimited.HasField("limit")
    assert not unlimited.HasField("remaining")
    assert (exhausted.entitled, exhausted.remaining) == (True, 0)
