"""`make bench`: the gateway's read paths against a bare FastAPI endpoint measured in the same run.

Everything runs on this machine's loopback: embedded Postgres, the Stripe emulator, billing, the
gateway and a bare FastAPI app on the same uvicorn settings, loaded by wrk at 64 connections.
BENCH_SECONDS (default 10) and BENCH_WORKERS (uvicorn workers for both servers, default 1).
"""

import json
import os
import socket
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from tatame_devstack import dev_issuer
from tatame_devstack.run import http_ok, running_stack, wait_until

from bench.webhooks import DRAIN_EVENTS, IngestFigures, bench_webhooks, prepare_naive_table
from bench.wrk import WrkResult, run_wrk

CONNECTIONS = 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def uvicorn_args(app: str, url: str, workers: int) -> list[str]:
    """The gateway's server settings (uvicorn, uvloop, httptools, no access log) for `app`."""
    port = url.rsplit(":", 1)[1]
    return [
        "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", port, "--workers", str(workers),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def create_customer(gateway_url: str, token: str) -> None:
    request = urllib.request.Request(  # noqa: S310 (loopback URL)
        f"{gateway_url}/v1/customer",
        data=json.dumps({"email": "bench@example.com", "name": "Bench"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status in (200, 201)


def measure(url: str, seconds: int, headers: dict[str, str] | None = None) -> WrkResult:
    run_wrk(url, connections=CONNECTIONS, seconds=2, headers=headers)  # warm-up
    return run_wrk(url, connections=CONNECTIONS, seconds=seconds, headers=headers)


def main() -> None:
    seconds = int(os.environ.get("BENCH_SECONDS", "10"))
    workers = int(os.environ.get("BENCH_WORKERS", "1"))
    with tempfile.TemporaryDirectory(prefix="tatame-bench-") as tmp:
        directory = Path(tmp)
        with running_stack(
            directory=directory,
            gateway_port=free_port(),
            billing_port=free_port(),
            stripe_port=0,
            receiver_port=free_port(),
            admin_port=free_port(),
            workers=workers,
            quiet=True,
        ) as stack:
            bare_url = f"http://127.0.0.1:{free_port()}"
            stack.processes.start(
                "bare", uvicorn_args("bench.bare_app:app", bare_url, workers), stack.env
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
            wait_until(lambda: http_ok(f"{bare_url}/bare"), "the bare app", stack.processes)
            wait_until(
                lambda: http_ok(f"{uncached_url}/readyz"), "the second gateway", stack.processes
            )
            naive_url = f"http://127.0.0.1:{free_port()}"
            prepare_naive_table(stack.database_urls["webhooks"])
            stack.processes.start(
                "naive-webhooks",
                uvicorn_args("bench.naive_webhook_app:app", naive_url, workers),
                {**stack.env, "DATABASE_URL": stack.database_urls["webhooks"]},
            )
            wait_until(lambda: http_ok(f"{naive_url}/healthz"), "the naive app", stack.processes)
            token = dev_issuer.mint_token("user_bench", directory=directory)
            create_customer(stack.gateway_url, token)
            auth = {"Authorization": f"Bearer {token}"}
            results = {
                "bare FastAPI GET (ceiling)": measure(f"{bare_url}/bare", seconds),
                "GET /v1/plans": measure(f"{stack.gateway_url}/v1/plans", seconds),
                "GET /v1/customer (customer cache on)": measure(
                    f"{stack.gateway_url}/v1/customer", seconds, auth
                ),
                "GET /v1/customer (cache off: gRPC+Postgres)": measure(
                    f"{uncached_url}/v1/customer", seconds, auth
                ),
            }
            webhooks = bench_webhooks(
                stack, directory, naive_url=naive_url, seconds=seconds, connections=CONNECTIONS
            )
    ceiling = results["bare FastAPI GET (ceiling)"].requests_per_second
    print(
        f"\nwrk {CONNECTIONS} connections, {seconds} s each, uvicorn workers={workers}, {os.cpu_count()} cores"
    )
    print(f"{'path':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8} {'errors':>7}")
    for name, r in results.items():
        print(
            f"{name:44} {r.requests_per_second:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
            f"{r.requests_per_second / ceiling:8.2f} {r.non_2xx + r.errors:7d}"
        )
    print_webhooks(webhooks, seconds)


def print_webhooks(w: IngestFigures, seconds: int) -> None:
    naive = w.naive.requests_per_second
    print(f"\nwebhook ingest: signed 3 KB events, {CONNECTIONS} connections, {seconds} s each")
    print(
        f"{'what':44} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs naive':>8} {'stored':>7} "
        f"{'errors':>7}"
    )
    print(f"{'Postgres single-row INSERT, 1 conn (ceiling)':44} {w.ceiling:9.0f}")
    for name, r, rows in (
        ("naive handler (verify + 1 INSERT/request)", w.naive, w.naive_rows),
        ("receiver (group commit)", w.receiver, w.receiver_rows),
    ):
        print(
            f"{name:44} {r.requests_per_second:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
            f"{r.requests_per_second / naive:8.2f} {rows:7d} {r.non_2xx + r.errors:7d}"
        )
    lag = w.lag
    print(
        f"receive-to-applied lag at 200 events/s: p50 {lag.p50_ms:.1f} ms, p99 {lag.p99_ms:.1f} ms "
        f"({lag.applied}/{lag.sent} applied)"
    )
    print(f"relay draining a backlog of {DRAIN_EVENTS} events: {w.drain:.0f} events/s")


if __name__ == "__main__":
    main()
