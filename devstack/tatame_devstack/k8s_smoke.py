"""Cluster-less smoke test of a rendered overlay (`make k8s-check`, after the static checks).

Takes `kubectl kustomize <root>/overlays/<overlay>` and, on this machine:

1. starts an embedded Postgres with one role and schema per database Secret (`billing-secrets`
   -> role `billing`), and the local Stripe emulator seeded with the demo catalog;
2. runs each migration Job's command (`app.kubernetes.io/component: migration`);
3. starts each Deployment's container command as a local process, with the environment its
   manifests give it: ConfigMap values as rendered, Secret keys from `k8s_check.SecretTestValues`;
4. polls every readiness probe (HTTP GET on its path and port, or a grpc.health.v1 Check for a
   `grpc` probe) until it passes, or fails the run after a timeout;
5. runs each CronJob's command once (it must exit 0), then one request through the gateway that
   crosses into billing with the gateway's service credential, and a scrape of every
   Deployment's `metrics` port.

That proves the commands, ports, variable names and probe paths in the manifests are the real
ones. A container whose module does not exist yet (`python -m services.webhooks …` before the
webhooks service lands) is reported as skipped, not failed.

Cluster addresses become loopback in one place only, `LoopbackNetwork`; the only other change to
a manifest's environment is `SMOKE_ONLY_ENV` (the Stripe emulator's address). Every process is
reached on 127.0.0.1 only.

Usage: python -m tatame_devstack.k8s_smoke [--root deploy/k8s] [--overlay dev] [--timeout 60]
"""

import argparse
import importlib.util
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import stripe
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tatame_devstack.catalog_seed import seed_demo_catalog
from tatame_devstack.k8s_check import (
    COMPONENT_LABEL,
    MIGRATION,
    TEST_STRIPE_KEY,
    PodOwner,
    Rendered,
    SecretTestValues,
    container_env,
    database_role,
    parse_command,
    print_notes,
    render,
    resolve_env,
)
from tatame_devstack.ports import free_port
from tatame_devstack.postgres import create_database, embedded_postgres, provision_service_role
from tatame_devstack.run import Processes, http_ok, wait_until

JOB_TIMEOUT_SECONDS = 120
EMULATOR_START_SECONDS = 30
LISTENING_LINE = re.compile(r"stripe-emulator listening on (http://127\.0\.0\.1:\d+)")
# Variables a pod does not get from its manifests but a local process needs to run at all.
PROCESS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
# One request per Deployment that crosses a service boundary (not just a probe): the gateway's
# plans come from billing over gRPC, with the gateway's service credential from its Secret.
CROSSING_REQUESTS = {"gateway": "/v1/plans"}
# The container port Prometheus scrapes (`GET /metrics`), which every Deployment declares.
METRICS_PORT = "metrics"


def smoke_only_env(env: Mapping[str, str], stripe_api_base: str) -> dict[str, str]:
    """SMOKE_ONLY_ENV: what the smoke test adds to a manifest's environment, and nothing else.

    A container given a Stripe key calls the local emulator instead of api.stripe.com
    (STRIPE_API_BASE; the dev overlay's TATAME_ENV=dev allows it, production refuses it).
    """
    return {"STRIPE_API_BASE": stripe_api_base} if "STRIPE_SECRET_KEY" in env else {}


@dataclass
class LoopbackNetwork:
    """THE one place where cluster addresses become loopback addresses.

    - Every container port of every Deployment gets its own free port on 127.0.0.1.
    - A Service, named as `<name>`, `<name>.<ns>`, `<name>.<ns>.svc` or
      `<name>.<ns>.svc.cluster.local` followed by `:<service port>` anywhere in a value, becomes
      `127.0.0.1:<the free port of the container port its targetPort names>`.
    - In a Deployment container's own environment, a bind address `0.0.0.0` becomes
      `127.0.0.1`, `0.0.0.0:<container port>` becomes `127.0.0.1:<its free port>`, and a `*_PORT`
      variable equal to one of its container ports becomes that port's free port; a bind to a
      port the container does not declare is an error. Jobs and CronJobs serve nothing: a bind
      address in their environment (from a shared ConfigMap) is left as it is.
    Nothing else is rewritten.
    """

    namespace: str
    ports: dict[tuple[str, str, int], int] = field(
        default_factory=dict
    )  # (deployment, container, port)
    services: list[tuple[re.Pattern[str], int]] = field(default_factory=list)

    @classmethod
    def allocate(cls, rendered: Rendered) -> "LoopbackNetwork":
        namespace = next((n["metadata"]["name"] for n in rendered.of_kind("Namespace")), "default")
        network = cls(namespace)
        for owner in rendered.deployments():
            for c in owner.spec.get("containers", []):
                for port in c.get("ports", []):
                    network.ports[(owner.name, c["name"], port["containerPort"])] = free_port()
        for service in rendered.of_kind("Service"):
            network._add_service(rendered, service)
        return network

    def _add_service(self, rendered: Rendered, service: dict) -> None:
        name, selector = service["metadata"]["name"], service["spec"]["selector"]
        owner = next(
            (
                o
                for o in rendered.deployments()
                if all(o.labels.get(k) == v for k, v in selector.items())
            ),
            None,
        )
        if owner is None:
            return  # the static checks report a Service that selects no Deployment
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for c in owner.spec.get("containers", []):
                for declared in c.get("ports", []):
                    if target in (declared.get("name"), declared["containerPort"]):
                        names = rf"{re.escape(name)}(?:\.{re.escape(self.namespace)}(?:\.svc(?:\.cluster\.local)?)?)?"
                        pattern = re.compile(rf"(?<![\w.-]){names}:{port['port']}(?!\d)")
                        self.services.append(
                            (
                                pattern,
                                self.ports[(owner.name, c["name"], declared["containerPort"])],
                            )
                        )

    def port(self, owner: PodOwner, container: dict, port: object) -> int:
        """The free port standing for a container port (given by name or number)."""
        for declared in container.get("ports", []):
            if port in (declared.get("name"), declared["containerPort"]):
                return self.ports[(owner.name, container["name"], declared["containerPort"])]
        raise LookupError(f"{owner.ref}/{container['name']} declares no port {port!r}")

    def rewrite(self, owner: PodOwner, container: dict, env: Mapping[str, str]) -> dict[str, str]:
        own = {p["containerPort"] for p in container.get("ports", [])}
        rewritten = {}
        for name, value in env.items():
            for pattern, port in self.services:
                value = pattern.sub(f"127.0.0.1:{port}", value)
            if owner.kind != "Deployment":
                pass
            elif value == "0.0.0.0":  # noqa: S104 (matching, not binding)
                value = "127.0.0.1"
            elif bind := re.fullmatch(r"0\.0\.0\.0:(\d+)", value):
                value = f"127.0.0.1:{self.port(owner, container, int(bind.group(1)))}"
            elif name.endswith("_PORT") and value.isdigit() and int(value) in own:
                value = str(self.port(owner, container, int(value)))
            rewritten[name] = value
        return rewritten


def module_exists(module: str) -> bool:
    """Whether `python -m module` has something to run."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return False
    if spec is None:
        return False
    if spec.submodule_search_locations is not None:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return True


def grpc_serving(port: int, service: str) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def readiness(
    owner: PodOwner, container: dict, network: LoopbackNetwork
) -> tuple[str, Callable[[], bool]]:
    """What a container's readiness probe asks, on loopback, and a function that asks it once."""
    probe = container["readinessProbe"]
    if "grpc" in probe:
        port = network.port(owner, container, probe["grpc"]["port"])
        service = probe["grpc"].get("service", "")
        what = f"{owner.ref} readiness: grpc.health.v1 Check({service!r}) on 127.0.0.1:{port}"
        return what, lambda: grpc_serving(port, service)
    http = probe["httpGet"]
    url = f"http://127.0.0.1:{network.port(owner, container, http['port'])}{http.get('path', '/')}"
    return f"{owner.ref} readiness: GET {url}", lambda: http_ok(url)


@contextmanager
def postgres(directory: Path) -> Iterator[str]:
    """Admin URL of a fresh database: on TEST_DATABASE_URL's server, else embedded."""
    name = f"tatame_k8s_smoke_{os.getpid()}"
    if given := os.environ.get("TEST_DATABASE_URL"):
        yield create_database(given, name)
        return
    with embedded_postgres(directory / "pg") as admin_url:
        yield admin_url


@dataclass
class Smoke:
    """One smoke run: where processes log, what ran, what was skipped."""

    rendered: Rendered
    directory: Path
    timeout: float
    processes: Processes = field(default_factory=Processes)
    passed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def ok(self, line: str) -> None:
        """Record and print a passed step (as it happens, so a failure shows what came before)."""
        self.passed.append(line)
        print(f"  ok  {line}", flush=True)

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def runnable(self, owner: PodOwner, container: dict) -> list[str] | None:
        """The container's `python -m …` arguments, or None (skipped) if its module is not built."""
        module, args = parse_command(container.get("command"))
        if module_exists(module):
            return ["-m", module, *args]
        self.skipped.append(
            f"{owner.ref}/{container['name']}: `python -m {module}` does not exist yet"
        )
        return None

    def environment(
        self,
        owner: PodOwner,
        container: dict,
        network: LoopbackNetwork,
        secrets: SecretTestValues,
        stripe_api_base: str,
    ) -> dict[str, str]:
        declared, problems = container_env(container, self.rendered)
        values, missing = resolve_env(declared, secrets)
        if problems or missing:
            raise RuntimeError(f"{owner.ref}/{container['name']}: {'; '.join(problems + missing)}")
        env = network.rewrite(owner, container, values)
        env |= smoke_only_env(env, stripe_api_base)
        return (
            {k: os.environ[k] for k in PROCESS_ENV if k in os.environ}
            | {"PYTHONUNBUFFERED": "1"}
            | env
        )

    def run_to_completion(self, owner: PodOwner, container: dict, env: dict[str, str]) -> None:
        args = self.runnable(owner, container)
        if args is None:
            return
        name = f"{owner.name}-{container['name']}"
        started = time.monotonic()
        with self.log(name).open("wb") as log:
            result = subprocess.run(
                [sys.executable, *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=JOB_TIMEOUT_SECONDS,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(
                f"{owner.ref}: `python {' '.join(args)}` exited {result.returncode}\n{self.tail(name)}"
            )
        self.ok(
            f"{owner.ref}: `python {' '.join(args)}` exited 0 ({time.monotonic() - started:.1f} s)"
        )

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log(name)
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return "\n".join(f"    | {line}" for line in text)


def start_emulator(smoke: Smoke) -> str:
    log = smoke.log("stripe-emulator").open("wb")
    child = smoke.processes.start(
        "stripe-emulator",
        ["-m", "tatame_devstack.stripe_emulator", "--port", "0"],
        {k: os.environ[k] for k in PROCESS_ENV if k in os.environ},
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    log.close()
    assert child.stdout is not None  # stdout=PIPE
    ready, _, _ = select.select([child.stdout], [], [], EMULATOR_START_SECONDS)
    line = child.stdout.readline().strip() if ready else ""
    listening = LISTENING_LINE.fullmatch(line)
    if listening is None:
        raise RuntimeError(
            f"the Stripe emulator did not start ({line!r})\n{smoke.tail('stripe-emulator')}"
        )
    return listening.group(1)


def run_smoke(root: Path, overlay: str, timeout: float) -> Smoke:
    """The whole smoke run of one overlay; raises on the first failure."""
    rendered = Rendered(overlay, render(root / "overlays" / overlay))
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="k8s-smoke-")))
        smoke = Smoke(rendered, directory, timeout)
        admin_url = stack.enter_context(postgres(directory))
        stack.callback(smoke.processes.stop)
        stripe_api_base = start_emulator(smoke)
        seed_demo_catalog(
            stripe.StripeClient(TEST_STRIPE_KEY, base_addresses={"api": stripe_api_base})
        )
        database_urls = {
            secret: provision_service_role(admin_url, database_role(secret))
            for secret, key in sorted(rendered.secret_refs())
            if key == "DATABASE_URL"
        }
        secrets = SecretTestValues(database_urls=database_urls)
        network = LoopbackNetwork.allocate(rendered)

        def env_of(owner: PodOwner, container: dict) -> dict[str, str]:
            return smoke.environment(owner, container, network, secrets, stripe_api_base)

        for job in rendered.pod_owners("Job"):
            if job.labels.get(COMPONENT_LABEL) == MIGRATION:
                for c in job.spec["containers"]:
                    smoke.run_to_completion(job, c, env_of(job, c))

        probes = []
        for owner in rendered.deployments():
            for c in owner.spec["containers"]:
                args = smoke.runnable(owner, c)
                if args is None:
                    continue
                name = f"{owner.name}-{c['name']}"
                with smoke.log(name).open("wb") as log:
                    smoke.processes.start(
                        name, args, env_of(owner, c), stdout=log, stderr=subprocess.STDOUT
                    )
                probes.append((owner, c))

        for owner, c in probes:
            what, ready = readiness(owner, c, network)
            started = time.monotonic()
            try:
                wait_until(ready, what, smoke.processes, timeout=timeout)
            except RuntimeError as e:
                logs = "\n".join(
                    f"  {n}:\n{smoke.tail(n)}" for n in (f"{o.name}-{k['name']}" for o, k in probes)
                )
                raise RuntimeError(f"{e}\n{logs}") from e
            smoke.ok(f"{what}: passed ({time.monotonic() - started:.1f} s)")

        for cronjob in rendered.pod_owners("CronJob"):
            for c in cronjob.spec["containers"]:
                smoke.run_to_completion(cronjob, c, env_of(cronjob, c))

        for owner, c in probes:
            if path := CROSSING_REQUESTS.get(owner.name):
                port = network.port(owner, c, c["readinessProbe"]["httpGet"]["port"])
                url = f"http://127.0.0.1:{port}{path}"
                with urllib.request.urlopen(url, timeout=10) as response:
                    plans = json.loads(response.read())["plans"]
                if not plans:
                    raise RuntimeError(
                        f"GET {url}: no plans, though the catalog was seeded and synced"
                    )
                smoke.ok(f"{owner.ref}: GET {url}: {response.status}, {len(plans)} plans")
        for owner, c in probes:
            if any(p.get("name") == METRICS_PORT for p in c.get("ports", [])):
                url = f"http://127.0.0.1:{network.port(owner, c, METRICS_PORT)}/metrics"
                with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback http)
                    families = response.read().decode().count("# TYPE ")
                if not families:
                    raise RuntimeError(f"GET {url}: no metrics")
                smoke.ok(f"{owner.ref}: GET {url}: {response.status}, {families} metric families")
        return smoke


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tatame_devstack.k8s_smoke", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--root", type=Path, default=Path("deploy/k8s"), help="default: %(default)s"
    )
    parser.add_argument("--overlay", default="dev", help="default: %(default)s")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per readiness probe")
    args = parser.parse_args(argv)
    started = time.monotonic()
    print(f"k8s smoke test of overlay {args.overlay} (no cluster; processes on 127.0.0.1):")
    try:
        smoke = run_smoke(args.root, args.overlay, args.timeout)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        print(f"k8s smoke test of overlay {args.overlay} FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print_notes(smoke.skipped)
    print(f"k8s smoke test took {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
