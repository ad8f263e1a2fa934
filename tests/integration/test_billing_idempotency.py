"""The store of first answers behind `Idempotency-Key`, on the real billing database."""

import secrets
from datetime import timedelta

import grpc
import pytest
from sqlalchemy import select, update
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.billing.errors import IdempotencyKeyReused, InvalidArgument, RequestInProgress
from services.billing.idempotency import LEASE, WINDOW, RequestKey, claim, complete, release
from services.billing.models import idempotent_requests
from services.common.errors import ErrorReason
from services.common.idempotency import IDEMPOTENCY_METADATA
from services.common.rpc import reason_of
from tests.harness import BillingHandle


def new_key(operation: str = "CreatePayment") -> RequestKey:
    principal = Principal("user", "user_" + secrets.token_hex(6))
    return RequestKey.of(principal, operation, secrets.token_urlsafe(16))


async def age(billing: BillingHandle, key: RequestKey, **by: timedelta) -> None:
    """Move a key's times into the past, as if `by` had passed."""
    table = idempotent_requests
    values = {column: getattr(table.c, column) - delta for column, delta in by.items()}
    async with billing.engine.begin() as conn:
        await conn.execute(
            update(table)
            .where(
                table.c.principal == key.principal,
                table.c.operation == key.operation,
                table.c.key_hash == key.key_hash,
            )
            .values(**values)
        )


async def test_a_completed_request_is_replayed_and_another_body_is_refused(
    billing: BillingHandle,
) -> None:
    key = new_key()
    assert await claim(engine=billing.engine, key=key, fingerprint="a") is None
    await complete(engine=billing.engine, key=key, response=b"first answer")
    assert await claim(engine=billing.engine, key=key, fingerprint="a") == b"first answer"
    with pytest.raises(IdempotencyKeyReused) as reused:
        await claim(engine=billing.engine, key=key, fingerprint="b")
    assert reused.value.reason is ErrorReason.IDEMPOTENCY_KEY_REUSED


async def test_a_running_request_holds_its_key_until_it_ends_or_its_lease_runs_out(
    billing: BillingHandle,
) -> None:
    key = new_key()
    assert await claim(engine=billing.engine, key=key, fingerprint="a") is None
    with pytest.raises(RequestInProgress) as running:
        await claim(engine=billing.engine, key=key, fingerprint="a")
    assert running.value.reason is ErrorReason.IDEMPOTENCY_REQUEST_IN_PROGRESS
    await age(billing, key, locked_until=LEASE + timedelta(seconds=1))  # its process died
    assert await claim(engine=billing.engine, key=key, fingerprint="a") is None


async def test_a_failed_request_runs_again_with_the_same_body_only(billing: BillingHandle) -> None:
    key = new_key()
    assert await claim(engine=billing.engine, key=key, fingerprint="a") is None
    await release(engine=billing.engine, key=key)
    with pytest.raises(IdempotencyKeyReused):
        await claim(engine=billing.engine, key=key, fingerprint="b")
    assert await claim(engine=billing.engine, key=key, fingerprint="a") is None


async def test_keys_older_than_the_window_start_over_and_are_pruned(
    billing: BillingHandle,
) -> None:
    old, kept = new_key(), new_key()
    for key in (old, kept):
        assert await claim(engine=billing.engine, key=key, fingerprint="a") is None
        await complete(engine=billing.engine, key=key, response=b"answer")
    await age(billing, old, created_at=WINDOW + timedelta(seconds=1))
    await age(billing, kept, created_at=WINDOW - timedelta(minutes=1))
    # Another principal's new key prunes the expired row.
    assert await claim(engine=billing.engine, key=new_key(), fingerprint="x") is None
    async with billing.engine.connect() as conn:
        left = set(
            await conn.scalars(
                select(idempotent_requests.c.principal).where(
                    idempotent_requests.c.principal.in_([old.principal, kept.principal])
                )
            )
        )
    assert left == {kept.principal}
    # A key older than the window is new again, whatever it was used with.
    assert await claim(engine=billing.engine, key=old, fingerprint="b") is None
    assert await claim(engine=billing.engine, key=kept, fingerprint="a") == b"answer"


def test_keys_are_per_principal_and_operation_and_hide_the_clients_key() -> None:
    alice, bob = Principal("user", "user_alice"), Principal("user", "user_bob")
    keys = {
        RequestKey.of(alice, "CreatePayment", "k-1"),
        RequestKey.of(bob, "CreatePayment", "k-1"),
        RequestKey.of(alice, "CreateSetupIntent", "k-1"),
    }
    assert len(keys) == 3
    stripe_keys = {key.stripe_key("payment-intent") for key in keys}
    assert len(stripe_keys) == 3
    assert all("k-1" not in k and len(k) <= 255 for k in stripe_keys)
    key = RequestKey.of(alice, "CreatePayment", "k-1")
    assert key.stripe_key("payment-intent") != key.stripe_key("ephemeral-key")


@pytest.mark.parametrize("client_key", ["", "a b", "x" * 256, "caf\u00e9"])
def test_a_malformed_client_key_is_invalid_argument(client_key: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        RequestKey.of(Principal("user", "user_x"), "CreatePayment", client_key)
    assert refused.value.reason is ErrorReason.INVALID_IDEMPOTENCY_KEY


async def test_billing_reads_the_key_from_call_metadata_and_replays_the_first_answer(
    billing: BillingHandle,
) -> None:
    user = Principal("user", "user_" + secrets.token_hex(6))
    credentials = ServiceCredentials("gateway", billing.gateway_secret, audience="billing")
    async with grpc.aio.insecure_channel(billing.target) as channel:
        stub = billing_pb2_grpc.BillingServiceStub(channel)

        def keyed(key: str) -> tuple[tuple[str, str], ...]:
            return (*credentials.metadata(user), (IDEMPOTENCY_METADATA, key))

        await stub.CreateCustomer(
            billing_pb2.CreateCustomerRequest(email=f"{user.id}@example.com"),
            metadata=credentials.metadata(user),
        )
        request = billing_pb2.CreateSetupIntentRequest()
        first = await stub.CreateSetupIntent(request, metadata=keyed("k-1"))
        assert await stub.CreateSetupIntent(request, metadata=keyed("k-1")) == first
        assert (await stub.CreateSetupIntent(request, metadata=keyed("k-2"))) != first
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateSetupIntent(request, metadata=keyed("two words"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(refused.value) == ErrorReason.INVALID_IDEMPOTENCY_KEY
