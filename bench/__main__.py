"""`make bench`: every figure of issue 11 beside its target, each against a baseline of the same run.

Everything runs on this machine's loopback: embedded Postgres, the Stripe emulator, billing, the
gateway, the webhooks receiver and relay, and the baselines (a bare FastAPI app and a naive
webhook handler) on the gateway's HTTP server and settings. In order:

1. reads: wrk at 64 connections on the bare app, `GET /v1/plans`, `GET /v1/customer` with the
   gateway's customer cache on and off;
   then the rate limiter's cost per request: a cached `GET /v1/customer` on gateways with the
   limiter off, on in memory, on in Redis (bench/rate_limits.py; alone: `python -m
   bench.rate_limits`);
2. webhook ingest: the naive handler and the receiver, the relay paused (bench/webhooks.py);
3. per billing process count (most first; the others are stopped in between): the
   receive-to-applied lag at 200 and at 1,000 events/s, and the relay draining a backlog, with
   the CPU that billing and the relay spent per event (bench/delivery.py), all with the realistic
   event mix of bench/stripe_mix.py for customers created through the gateway beforehand;
4. billing streams: 1,000 open GET /v1/billing/stream on the gateway, change-to-arrival time
   beside a bare LISTEN's, memory per stream (bench/streams.py; under a minute).

The stacks' gateways run without the rate limiter (`UNLIMITED`): wrk and the 1,000 streams all
come from 127.0.0.1, whose budget would answer most of them 429; section 1 measures the limiter on
gateways of its own.

BENCH_SECONDS (default 10), BENCH_WORKERS (HTTP server workers of the gateway, the receiver and
the baselines, default 1), BENCH_BILLING_PROCESSES (comma-separated counts, default "1,2"),
BENCH_ONLY=streams (section 4 alone, on a stack of its own with one billing process).
"""

import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from tatame_devstack import dev_issuer
from tatame_devstack.ports import free_port
from tatame_devstack.run import Stack, http_ok, running_stack, wait_until

from bench import report
from bench.delivery import Drain, Lag, measure_drain, measure_lag
from bench.local import create_customer
from bench.rate_limits import UNLIMITED, bench_rate_limits
from bench.rate_limits import header as rate_limits_header
from bench.streams import PER_PRINCIPAL, STREAMS, StreamFigures, measure_streams
from bench.stripe_mix import LIFE, EventMix
from bench.webhooks import bench_ingest, prepare_naive_table
from bench.wrk import CONNECTIONS, measure

DRAIN_EVENTS = 5040  # two lives of 7 events of each customer
CUSTOMERS = 360
LAG_RATES = {200: 10, 1000: 5}  # events/s: seconds of sending
SEED_CONCURRENCY = 8


def serve_app_args(factory: str, url: str, workers: int) -> list[str]:
    """A baseline app on the gateway's HTTP server and settings (bench/serve_app.py)."""
    return ["-m", "bench.serve_app", factory, url.rsplit(":", 1)[1], str(workers)]


def seed_customers(stack: Stack, directory: Path, count: int) -> list[str]:
    """Create `count` customers through the gateway (billing's CreateCustomer, Stripe's customer
    and billing's row); return their Stripe ids."""
    users = [f"user_bench_{n}" for n in range(count)]

    def create(user: str) -> None:
        token = dev_issuer.mint_token(user, directory=directory)
        create_customer(stack.gateway_url, token, f"{user}@example.com")

    with ThreadPoolExecutor(SEED_CONCURRENCY) as pool:
        list(pool.map(create, users))
    with psycopg.connect(stack.database_urls["billing"]) as conn:
        rows = conn.execute(
            "SELECT stripe_customer_id FROM billing.customers WHERE principal = ANY(%s)",
            ([f"user:{user}" for user in users],),
        ).fetchall()
    if len(rows) != count:
        raise RuntimeError(f"seeding made {len(rows)} of {count} customers")
    return [row[0] for row in rows]


def start_baselines(stack: Stack, workers: int) -> tuple[str, str, str]:
    """The bare app, a second gateway with its customer cache off, the naive webhook handler."""
    bare_url = f"http://127.0.0.1:{free_port()}"
    stack.processes.start(
        "bare", serve_app_args("bench.bare_app:create_app", bare_url, workers), stack.env
    )
    uncached_url = f"http://127.0.0.1:{free_port()}"
    stack.processes.start(
        "gateway-uncached",
        ["-m", "gateway"],
        {
            **stack.env,
            "GATEWAY_PORT": uncached_url.rsplit(":", 1)[1],
            "GATEWAY_CUSTOMER_CACHE_SECONDS": "0",
        },
        stderr=subprocess.DEVNULL,
    )
    naive_url = f"http://127.0.0.1:{free_port()}"
    prepare_naive_table(stack.database_urls["webhooks"])
    stack.processes.start(
        "naive-webhooks",
        serve_app_args("bench.naive_webhook_app:create_app", naive_url, workers),
        {**stack.env, "DATABASE_URL": stack.database_urls["webhooks"]},
    )
    wait_until(lambda: http_ok(f"{bare_url}/bare"), "the bare app", stack.processes)
    wait_until(lambda: http_ok(f"{uncached_url}/readyz"), "the second gateway", stack.processes)
    wait_until(lambda: http_ok(f"{naive_url}/healthz"), "the naive app", stack.processes)
    return bare_url, uncached_url, naive_url


def stream_figures(stack: Stack, directory: Path) -> StreamFigures:
    """Section 4 on `stack`, whose first customers (user_bench_N) exist."""
    users = [f"user_bench_{n}" for n in range(STREAMS // PER_PRINCIPAL)]
    return measure_streams(
        stack.gateway_url,
        stack.database_urls["billing"],
        {f"user:{user}": dev_issuer.mint_token(user, directory=directory) for user in users},
        gateway_pid=stack.processes.child("gateway").pid,
        billing_pids=[process.pid for process in stack.processes.named("billing-")],
    )


def streams_only() -> None:
    """BENCH_ONLY=streams: section 4 on a stack of its own."""
    with tempfile.TemporaryDirectory(prefix="tatame-bench-") as tmp:
        directory = Path(tmp)
        with running_stack(
            directory=directory,
            gateway_port=free_port(),
            billing_ports=[free_port()],
            stripe_port=0,
            receiver_port=free_port(),
            admin_port=free_port(),
            quiet=True,
            settings=UNLIMITED,
        ) as stack:
            # Their rows alone: a stream reads billing's mirror, never Stripe.
            with psycopg.connect(stack.database_urls["billing"]) as conn:
                conn.cursor().executemany(
                    "INSERT INTO billing.customers (principal, stripe_customer_id, email, name)"
                    " VALUES (%s, %s, %s, 'Bench')",
                    [
                        (f"user:user_bench_{n}", f"cus_bench_{n}", f"user_bench_{n}@example.com")
                        for n in range(STREAMS // PER_PRINCIPAL)
                    ],
                )
            load = report.phase(f"{STREAMS} billing streams")
            figures = stream_figures(stack, directory)
    report.print_streams(figures, load)


def main() -> None:
    if os.environ.get("BENCH_ONLY") == "streams":
        streams_only()
        return
    seconds = int(os.environ.get("BENCH_SECONDS", "10"))
    workers = int(os.environ.get("BENCH_WORKERS", "1"))
    counts = sorted(
        {int(n) for n in os.environ.get("BENCH_BILLING_PROCESSES", "1,2").split(",")},
        reverse=True,
    )
    lags: dict[int, list[tuple[Lag, str]]] = {}
    drains: dict[int, tuple[Drain, str]] = {}
    with tempfile.TemporaryDirectory(prefix="tatame-bench-") as tmp:
        directory = Path(tmp)
        with running_stack(
            directory=directory,
            gateway_port=free_port(),
            billing_ports=[free_port() for _ in range(counts[0])],
            stripe_port=0,
            receiver_port=free_port(),
            admin_port=free_port(),
            workers=workers,
            quiet=True,
            settings=UNLIMITED,
        ) as stack:
            bare_url, uncached_url, naive_url = start_baselines(stack, workers)
            report.phase(f"seeding {CUSTOMERS} customers through the gateway")
            mix = EventMix(
                stack.env["STRIPE_WEBHOOK_SECRET"],
                seed_customers(stack, directory, CUSTOMERS),
                plan_price_id(stack),
            )
            token = dev_issuer.mint_token("user_bench_0", directory=directory)
            auth = {"Authorization": f"Bearer {token}"}
            reads = {}
            for name, url, headers in (
                (report.BARE, f"{bare_url}/bare", None),
                ("GET /v1/plans", f"{stack.gateway_url}/v1/plans", None),
                ("GET /v1/customer (customer cache on)", f"{stack.gateway_url}/v1/customer", auth),
                (
                    "GET /v1/customer (cache off: gRPC+Postgres)",
                    f"{uncached_url}/v1/customer",
                    auth,
                ),
            ):
                load = report.phase(name)
                reads[name] = (measure(url, seconds, headers), load)
            limits = bench_rate_limits(stack, directory, seconds=seconds)
            ingest_load = report.phase("webhook ingest: naive handler, then the receiver")
            ingest = bench_ingest(
                stack, directory, naive_url=naive_url, seconds=seconds, connections=CONNECTIONS
            )
            relay = stack.processes.child("webhooks-relay")
            webhooks_url = stack.database_urls["webhooks"]
            for count in counts:
                for n in range(count + 1, counts[0] + 1):
                    if stack.processes.named(f"billing-{n}"):
                        stack.processes.retire(f"billing-{n}")
                lags[count] = []
                for rate, lag_seconds in LAG_RATES.items():
                    load = report.phase(f"lag at {rate} events/s, billing processes {count}")
                    events = mix.phase(rate * lag_seconds)
                    lag = measure_lag(stack.receiver_url, webhooks_url, events, rate=rate)
                    lag.outcomes.check(f"lag at {rate} events/s")
                    lags[count].append((lag, load))
                load = report.phase(f"drain of {DRAIN_EVENTS} events, billing processes {count}")
                drain = measure_drain(
                    stack.receiver_url,
                    webhooks_url,
                    mix.phase(DRAIN_EVENTS),
                    relay=relay,
                    billing=stack.processes.named("billing-"),
                )
                drain.outcomes.check("drain")
                drains[count] = (drain, load)
            stream_load = report.phase(f"{STREAMS} billing streams")
            stream_results = stream_figures(stack, directory)
    report.print_reads(
        reads,
        f"reads: wrk {CONNECTIONS} connections, {seconds} s each, HTTP workers={workers}, "
        f"{os.cpu_count()} cores, billing processes {counts[0]}",
    )
    report.print_rate_limits(limits, rate_limits_header(seconds, workers, CONNECTIONS))
    report.print_ingest(
        ingest,
        ingest_load,
        f"webhook ingest: signed 3 KB events, {CONNECTIONS} connections, {seconds} s each",
    )
    naive = ingest.naive.requests_per_second
    print(f"\ndelivery: the event mix ({', '.join(LIFE)}) for customers billing knows")
    for count in sorted(counts):
        for lag, load in lags[count]:
            report.print_lag(lag, count, load)
        drain, load = drains[count]
        report.print_drain(drain, count, load, naive)
    report.print_streams(stream_results, stream_load)


def plan_price_id(stack: Stack) -> str:
    """A recurring price of the catalog billing mirrors (the subscriptions' price)."""
    with psycopg.connect(stack.database_urls["billing"]) as conn:
        row = conn.execute(
            "SELECT id FROM billing.prices WHERE active AND type = 'recurring' ORDER BY id LIMIT 1"
        ).fetchone()
    if row is None:
        raise RuntimeError("billing mirrors no recurring price")
    return row[0]


if __name__ == "__main__":
    main()
