"""Usage ingestion: RecordUsage calls/s through a real billing process beside CheckEntitlement
calls/s (the baseline, a read of the same principals) in the same run, then how fast billing's
usage sender drains what was recorded into the Stripe emulator's meter events API.

`python -m bench.usage` (BENCH_SECONDS, default 10): the dev stack on loopback (one billing
process), 20 principals with customers, 20 concurrent callers on one gRPC channel."""

import asyncio
import itertools
import os
import tempfile
import time
from pathlib import Path

import grpc
import psycopg
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc, usage_pb2
from tatame_devstack import dev_issuer
from tatame_devstack.ports import free_port
from tatame_devstack.run import USAGE_DEV_CALLER, dev_secrets, running_stack

from bench import report
from bench.local import create_customer
from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials

CALLERS = 20
METER = "video_minutes"  # the dev catalog's meter


async def _rate(
    target: str, credentials: ServiceCredentials, principals: list[Principal], seconds: float, call
) -> float:
    """Calls/s of `call(stub, metadata, n)` from CALLERS concurrent callers for `seconds`."""
    counter = itertools.count()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = billing_pb2_grpc.BillingServiceStub(channel)
        deadline = time.monotonic() + seconds
        done = 0

        async def caller(principal: Principal) -> None:
            nonlocal done
            metadata = credentials.metadata(principal)
            while time.monotonic() < deadline:
                await call(stub, metadata, next(counter))
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(caller(p) for p in principals))
        return done / (time.monotonic() - started)


async def _record(stub, metadata, n: int) -> None:
    run = os.getpid()
    await stub.RecordUsage(
        usage_pb2.RecordUsageRequest(meter=METER, value=1, identifier=f"bench-{run}-{n}"),
        metadata=metadata,
        timeout=10,
    )


async def _check(stub, metadata, _n: int) -> None:
    await stub.CheckEntitlement(
        billing_pb2.CheckEntitlementRequest(feature="video_library"), metadata=metadata, timeout=10
    )


def _pending(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM billing.usage_records WHERE state = 'pending'"
        ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    with tempfile.TemporaryDirectory(prefix="tatame-bench-usage-") as tmp:
        directory = Path(tmp)
        billing_port = free_port()
        with running_stack(
            directory=directory,
            gateway_port=free_port(),
            billing_ports=[billing_port],
            stripe_port=0,
            receiver_port=free_port(),
            admin_port=free_port(),
            quiet=True,
        ) as stack:
            users = [f"user_bench_usage_{n}" for n in range(CALLERS)]
            for user in users:
                token = dev_issuer.mint_token(user, directory=directory)
                create_customer(stack.gateway_url, token, f"{user}@example.com")
            principals = [Principal("user", user) for user in users]
            secret = dev_secrets(directory)[USAGE_DEV_CALLER]
            target = f"127.0.0.1:{billing_port}"
            usage = ServiceCredentials(USAGE_DEV_CALLER, secret, audience="billing")
            gateway = ServiceCredentials(
                "gateway", dev_secrets(directory)["gateway"], audience="billing"
            )
            load = report.phase("CheckEntitlement (baseline)")
            baseline = asyncio.run(_rate(target, gateway, principals, seconds, _check))
            load_record = report.phase("RecordUsage")
            recorded = asyncio.run(_rate(target, usage, principals, seconds, _record))
            database_url = stack.database_urls["billing"]
            backlog = _pending(database_url)
            started = time.monotonic()
            while _pending(database_url) > 0:
                time.sleep(0.2)
            drained = backlog / (time.monotonic() - started) if backlog else 0.0
    print(
        f"usage ingestion: {CALLERS} concurrent gRPC callers, {seconds:g} s each, "
        f"{os.cpu_count()} cores, one billing process"
    )
    print(f"  CheckEntitlement (baseline)   {baseline:8.0f} calls/s   load {load}")
    print(
        f"  RecordUsage                   {recorded:8.0f} calls/s   "
        f"({recorded / baseline:.2f} of baseline)   load {load_record}"
    )
    print(f"  sender → Stripe emulator      {drained:8.0f} records/s  (backlog of {backlog})")


if __name__ == "__main__":
    main()
