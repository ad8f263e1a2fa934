"""`make run`: the whole system on loopback, with embedded defaults for whatever is not configured.

Postgres: `DATABASE_URL`, else embedded (pgserver) under `.devdata/postgres`.
Stripe: `STRIPE_SECRET_KEY`, else the local emulator on 127.0.0.1:8420, seeded with the demo catalog.
Clerk: `CLERK_ISSUER` (+ `CLERK_JWKS_URL` or `CLERK_JWT_KEY`), else the dev token issuer.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tatame_devstack import dev_issuer
from tatame_devstack.paths import devdata_dir
from tatame_devstack.postgres import embedded_postgres, provision_service_role

from services.common.settings import DEV_ISSUER

GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8080"))
BILLING_PORT = int(os.environ.get("BILLING_PORT", "50051"))
STRIPE_EMULATOR_PORT = int(os.environ.get("STRIPE_EMULATOR_PORT", "8420"))
DEV_STRIPE_KEY = "sk_test_tatame_local_emulator"


def _dev_secrets(directory: Path) -> dict[str, str]:
    """Service secrets generated once per checkout and kept in `.devdata/` (never committed)."""
    path = directory / "dev-secrets.json"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(json.dumps({"gateway": secrets.token_urlsafe(32)}))
    return json.loads(path.read_text())


class Processes:
    """Child processes started by the dev stack, stopped together (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self._children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
        child = subprocess.Popen([sys.executable, *args], env=env, **kwargs)
        self._children.append((name, child))
        return child

    def check(self) -> None:
        for name, child in self._children:
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with status {child.returncode}")

    def stop(self) -> None:
        for _, child in reversed(self._children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, child in reversed(self._children):
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()


def run_once(args: list[str], env: dict[str, str]) -> None:
    subprocess.run([sys.executable, *args], env=env, check=True)


def wait_until(ready, what: str, processes: Processes, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check()
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready in {timeout:.0f} s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback URL)
            return response.status == 200
    except OSError:
        return False


@contextmanager
def database(directory: Path) -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    with embedded_postgres(directory / "postgres") as admin_url:
        yield provision_service_role(admin_url, "billing")


@contextmanager
def stripe(processes: Processes, directory: Path, env: dict[str, str]) -> Iterator[dict[str, str]]:
    if os.environ.get("STRIPE_SECRET_KEY"):
        yield {}
        return
    child = processes.start(
        "stripe-emulator",
        [
            "-m",
            "tatame_devstack.stripe_emulator",
            "--port",
            str(STRIPE_EMULATOR_PORT),
            "--state-file",
            str(directory / "stripe-emulator.pickle"),
        ],
        env,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = child.stdout.readline().strip()
    if "listening on" not in line:
        raise RuntimeError(f"the Stripe emulator did not start: {line!r}")
    api_base = line.rsplit(" ", 1)[-1]
    run_once(["-m", "tatame_devstack.catalog_seed", "--api-base", api_base, "--api-key", DEV_STRIPE_KEY], env)
    yield {"STRIPE_SECRET_KEY": DEV_STRIPE_KEY, "STRIPE_API_BASE": api_base}


def clerk(directory: Path) -> dict[str, str]:
    if os.environ.get("CLERK_ISSUER"):
        return {}
    return {"CLERK_ISSUER": DEV_ISSUER, "CLERK_JWT_KEY": dev_issuer.public_key_pem(directory)}


def main() -> None:
    directory = devdata_dir()
    processes = Processes()
    base_env = {**os.environ, "TATAME_ENV": os.environ.get("TATAME_ENV", "dev"), "PYTHONUNBUFFERED": "1"}
    gateway_secret = _dev_secrets(directory)["gateway"]
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with ExitStack() as stack:
        stack.callback(processes.stop)
        database_url = stack.enter_context(database(directory))
        stripe_env = stack.enter_context(stripe(processes, directory, base_env))
        env = {
            **base_env,
            **stripe_env,
            **clerk(directory),
            "DATABASE_URL": database_url,
            "BILLING_GRPC_ADDRESS": f"127.0.0.1:{BILLING_PORT}",
            "BILLING_SERVICE_SECRETS": f"gateway={gateway_secret}",
            "BILLING_TARGET": f"127.0.0.1:{BILLING_PORT}",
            "GATEWAY_SERVICE_SECRET": gateway_secret,
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(GATEWAY_PORT),
            "CORS_ALLOWED_ORIGINS": os.environ.get(
                "CORS_ALLOWED_ORIGINS", "http://localhost:8081,http://localhost:19006"
            ),
        }
        run_once(["-m", "services.billing", "migrate"], env)
        run_once(["-m", "services.billing", "sync-catalog"], env)
        processes.start("billing", ["-m", "services.billing", "serve"], env)
        processes.start("gateway", ["-m", "gateway"], env)
        gateway = f"http://127.0.0.1:{GATEWAY_PORT}"
        wait_until(lambda: http_ok(f"{gateway}/readyz"), "the gateway", processes)
        print(banner(gateway, stripe_env, env), flush=True)
        while not stop:
            processes.check()
            time.sleep(0.5)
        print("\nstopping…", flush=True)


def banner(gateway: str, stripe_env: dict[str, str], env: dict[str, str]) -> str:
    stripe_line = stripe_env.get("STRIPE_API_BASE", "Stripe (STRIPE_SECRET_KEY from the environment)")
    token_line = (
        "make token USER=user_123        (dev issuer; valid 1 h)"
        if env["CLERK_ISSUER"] == DEV_ISSUER
        else "a Clerk session token from your Clerk instance"
    )
    return f"""
Tatame Billing is running (Ctrl-C stops everything).
  gateway (REST)   {gateway}        docs: {gateway}/docs
  billing (gRPC)   {env['BILLING_TARGET']}
  Stripe           {stripe_line}
  token            {token_line}

  curl {gateway}/v1/plans
  TOKEN=$(make -s token USER=user_123)
  curl -X POST {gateway}/v1/customer -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"email": "ana@example.com", "name": "Ana"}}'
  curl {gateway}/v1/customer -H "Authorization: Bearer $TOKEN"
"""


if __name__ == "__main__":
    main()
