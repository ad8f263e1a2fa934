"""What the gateway's rate limiter costs per request: an authenticated cheap read
(`GET /v1/customer`, answered from the gateway's customer cache, so that the limiter's share is
not hidden behind a gRPC call) on three gateways of one stack, the limiter off, on with budgets in
process memory, and on with budgets in a private redis-server on loopback. Budgets are set too
large to refuse anything: the figure is the cost of checking (the client address's budget and the
principal's, two Redis round trips per request), not of refusing.

`python -m bench.rate_limits` runs this section alone (its own stack); `make bench` runs it too.
Each variant is measured in ROUNDS alternating rounds and its best kept. The cost per request is
the difference of the saturated gateway's time per request
(1 / req/s, one HTTP worker), so it counts in µs of a loaded core, wrk sharing the machine.
"""

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from tatame_devstack import dev_issuer
from tatame_devstack.ports import free_port
from tatame_devstack.run import Stack, http_ok, running_stack, wait_until

from bench import report
from bench.local import create_customer
from bench.report import RATE_LIMITER_OFF, Figures
from bench.wrk import CONNECTIONS, measure

# Budgets no benchmark reaches: every request is checked, none refused.
# The gateway's settings without the rate limiter: the stacks' gateways under load from one
# address (wrk, the streams), and the baseline of the limiter's cost.
UNLIMITED = {"RATE_LIMIT_ENABLED": "false"}
UNREACHABLE = "100000000/minute"
USER = "user_bench_limits"
ROUNDS = 2


@contextmanager
def private_redis(directory: Path, port: int) -> Iterator[str]:
    """A redis-server on 127.0.0.1:`port` keeping nothing on disk; its URL."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed (Debian's redis-server package)")
    process = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                with redis.Redis.from_url(url, socket_timeout=1) as client:
                    client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None:
                    raise RuntimeError("redis-server exited") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def bench_rate_limits(stack: Stack, directory: Path, *, seconds: int) -> Figures:
    """req/s and p99 of `GET /v1/customer` (cached) with the limiter off, in memory, in Redis."""
    token = dev_issuer.mint_token(USER, directory=directory)
    create_customer(stack.gateway_url, token, f"{USER}@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    budgets = {
        "RATE_LIMIT_ENABLED": "true",
        **{f"RATE_LIMIT_{b}": UNREACHABLE for b in ("IP", "READ", "WRITE")},
    }
    figures: Figures = {}
    with private_redis(directory, free_port()) as redis_url:
        variants = {
            RATE_LIMITER_OFF: UNLIMITED,
            "limiter on, memory storage": budgets,
            "limiter on, Redis storage": {**budgets, "RATE_LIMIT_STORAGE_URL": redis_url},
        }
        urls = {}
        for name, env in variants.items():
            url = f"http://127.0.0.1:{free_port()}"
            stack.processes.start(
                f"gateway-{name}",
                ["-m", "gateway"],
                {**stack.env, **env, "GATEWAY_PORT": url.rsplit(":", 1)[1]},
                stderr=subprocess.DEVNULL,
            )
            urls[name] = url
        for name, url in urls.items():
            wait_until(lambda url=url: http_ok(f"{url}/readyz"), name, stack.processes)
        # Alternating rounds, the best of each kept: drift and other processes' bursts on a
        # shared machine then weigh on no variant more than on another.
        for round_ in range(1, ROUNDS + 1):
            for name, url in urls.items():
                load = report.phase(f"GET /v1/customer (cached), {name}, round {round_}")
                result = measure(f"{url}/v1/customer", seconds, auth)
                best = figures.get(name)
                if best is None or result.requests_per_second > best[0].requests_per_second:
                    figures[name] = (result, load)
        for name in urls:
            stack.processes.retire(f"gateway-{name}")
    return figures


def main() -> None:
    seconds = int(os.environ.get("BENCH_SECONDS", "10"))
    workers = int(os.environ.get("BENCH_WORKERS", "1"))
    with tempfile.TemporaryDirectory(prefix="tatame-bench-limits-") as tmp:
        directory = Path(tmp)
        with running_stack(
            directory=directory,
            gateway_port=free_port(),
            billing_ports=[free_port()],
            stripe_port=0,
            receiver_port=free_port(),
            admin_port=free_port(),
            workers=workers,
            quiet=True,
            settings=UNLIMITED,
        ) as stack:
            figures = bench_rate_limits(stack, directory, seconds=seconds)
    report.print_rate_limits(figures, header(seconds, workers, CONNECTIONS))


def header(seconds: int, workers: int, connections: int) -> str:
    return (
        f"rate limiter cost: wrk {connections} connections, {seconds} s each, "
        f"HTTP workers={workers}, {os.cpu_count()} cores, best of {ROUNDS} alternating rounds "
        "(µs/request: 1/req/s vs off)"
    )


if __name__ == "__main__":
    main()
