"""A bounded schemathesis run against the gateway's own OpenAPI document: generated requests, valid
and invalid, to every operation of a real gateway in front of real billing and the Stripe
emulator, signed in as a user with a customer. No answer may be a 5xx, a status the operation does
not document, or a body or content type other than the documented one."""

import asyncio

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from tests.e2e.gateway_client import GatewayHandle

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The probes answer 503 by design whenever billing's readiness check fails (under load, too).
PROBES = {"/healthz", "/readyz"}
# Per operation and mode: ~30 operations x 2 modes, bounded to stay well under a minute.
EXAMPLES = 4


def fuzz(schema: schemathesis.BaseSchema, base_url: str, headers: dict[str, str]) -> list[str]:
    """Run every operation's positive and negative examples; the failures, described."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the document does not describe an operation: {result.err()}")
            continue
        operation = result.ok()
        if operation.path in PROBES:
            continue
        # Invalid requests for what a client can get wrong: a body, a path, a query.
        modes = [GenerationMode.POSITIVE]
        if len(operation.body) or len(operation.path_parameters) or len(operation.query):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                # No shrinking: a failure is reported as found (shrinking costs many requests).
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(
                    base_url=base_url, headers=headers, checks=CHECKS, timeout=30
                )

            try:
                check()
            except Unsatisfiable:
                continue  # no invalid request of this kind can be made for the operation
            except Exception as e:  # every failure is collected, then reported together
                failures.append(f"{operation.label} ({mode.value}): {e}")
    return failures


async def test_generated_requests_meet_the_documented_statuses_and_shapes(
    gateway: GatewayHandle, client: httpx.AsyncClient, new_user
) -> None:
    user = await new_user()
    document = (await client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    failures = await asyncio.to_thread(fuzz, schema, gateway.url, user.headers)
    assert not failures, "\n\n".join(failures)
