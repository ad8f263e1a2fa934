"""Creates that are safe to retry, from the app to Stripe.

A client names a request with an `Idempotency-Key` (the HTTP header); the gateway passes it to
billing as the gRPC metadata entry `idempotency-key`, read here only, by `idempotent`, around
the BillingService methods that create or bill. For each (principal, operation, key) billing
keeps a fingerprint of the first request and its first successful answer for `WINDOW`:

- the same key and request again: the first answer, and nothing is done a second time;
- the same key with another request: `idempotency_key_reused` (409 at the gateway);
- the same key while the first request still runs: `idempotency_request_in_progress` (409);
- a first request that failed leaves no answer: a retry with the same request runs again.

Every Stripe call such a request makes carries an idempotency key derived from the principal,
the operation, the client's key (hashed) and the call's step, so a run that failed after Stripe
acted, and runs again, gets Stripe's first answer instead of a second object.

Rows older than `WINDOW` are ignored (the key starts over) and pruned by later claims, up to
`PRUNE_BATCH` at a time, so the table holds about a day of keys without a separate job.
"""

import asyncio
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import stripe
from google.protobuf.message import Message
from sqlalchemy import and_, case, delete, func, literal, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.grpc_interceptor import current_caller
from services.auth.principal import Principal
from services.billing.errors import IdempotencyKeyReused, InvalidArgument, RequestInProgress
from services.billing.models import idempotent_requests as requests
from services.common.errors import ErrorReason
from services.common.idempotency import (
    IDEMPOTENCY_METADATA,
    INVALID_KEY_MESSAGE,
    valid_idempotency_key,
)
from services.common.rpc import Context

log = logging.getLogger(__name__)

# The Stripe metadata key naming the request that created an object.
REQUEST_METADATA = "tatame_request"
# How long a key's first answer is kept (Stripe keeps its keys at least as long).
WINDOW = timedelta(hours=24)
# How long a running request holds its key before a retry may take it over (a crashed process).
LEASE = timedelta(seconds=60)
PRUNE_BATCH = 100


def _sha256(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RequestKey:
    """One client key of one principal for one operation."""

    principal: str
    operation: str
    key_hash: str

    @classmethod
    def of(cls, principal: Principal, operation: str, client_key: str) -> "RequestKey":
        """The key of a request; InvalidArgument `invalid_idempotency_key` for a malformed one."""
        if not valid_idempotency_key(client_key):
            raise InvalidArgument(INVALID_KEY_MESSAGE, reason=ErrorReason.INVALID_IDEMPOTENCY_KEY)
        return cls(principal.key, operation, _sha256(client_key))

    @property
    def marker(self) -> str:
        """Names this request in the metadata (`tatame_request`) of what it creates in Stripe,
        so that a run after a failed one recognises its own objects."""
        return _sha256(self.principal, self.operation, self.key_hash)

    def stripe_key(self, step: str) -> str:
        """Stripe's idempotency key for one step (one Stripe call) of this request."""
        return f"tatame-{step}-v1:{_sha256(self.principal, self.operation, self.key_hash, step)}"


def request_metadata(key: RequestKey | None) -> dict[str, str]:
    """The metadata entry that marks objects a request creates (none without a key)."""
    return {} if key is None else {REQUEST_METADATA: key.marker}


def made_by(key: RequestKey | None, stripe_object: dict[str, Any]) -> bool:
    """Whether a Stripe object was created (or, for an upgrade, last changed) by the request of
    `key`."""
    metadata = stripe_object.get("metadata") or {}
    return key is not None and metadata.get(REQUEST_METADATA) == key.marker


def stripe_options(key: RequestKey | None, step: str) -> stripe.RequestOptions:
    """Request options of one Stripe call: the key derived for its step, or none (the SDK's own
    random key, which its retries reuse) when the client sent no key."""
    return {} if key is None else {"idempotency_key": key.stripe_key(step)}


def _row(key: RequestKey) -> Any:
    return and_(
        requests.c.principal == key.principal,
        requests.c.operation == key.operation,
        requests.c.key_hash == key.key_hash,
    )


async def claim(*, engine: AsyncEngine, key: RequestKey, fingerprint: str) -> bytes | None:
    """Hold `key` for a request to run (None), or the first answer to replay (its bytes).

    IdempotencyKeyReused when the key came with another request; RequestInProgress while the
    first one runs.
    """
    expired = requests.c.created_at < func.now() - WINDOW
    claimable = or_(
        expired,
        and_(
            requests.c.response.is_(None),
            requests.c.fingerprint == fingerprint,
            or_(requests.c.locked_until.is_(None), requests.c.locked_until < func.now()),
        ),
    )
    row = insert(requests).values(
        principal=key.principal,
        operation=key.operation,
        key_hash=key.key_hash,
        fingerprint=fingerprint,
        locked_until=func.now() + LEASE,
    )
    upsert = row.on_conflict_do_update(
        index_elements=[requests.c.principal, requests.c.operation, requests.c.key_hash],
        set_={
            "fingerprint": row.excluded.fingerprint,
            "response": None,
            "locked_until": row.excluded.locked_until,
            "created_at": case((expired, func.now()), else_=requests.c.created_at),
        },
        where=claimable,
    ).returning(literal(True))
    oldest = (
        select(requests.c.principal, requests.c.operation, requests.c.key_hash)
        .where(expired)
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    async with engine.begin() as conn:
        await conn.execute(
            delete(requests).where(
                tuple_(requests.c.principal, requests.c.operation, requests.c.key_hash).in_(oldest)
            )
        )
        if (await conn.execute(upsert)).first() is not None:
            return None
        first = (
            await conn.execute(select(requests.c.fingerprint, requests.c.response).where(_row(key)))
        ).first()
    if first is not None and first.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with another request; use a new key for a new request"
        )
    if first is None or first.response is None:
        raise RequestInProgress("a request with this Idempotency-Key is still running; retry later")
    return bytes(first.response)


async def complete(*, engine: AsyncEngine, key: RequestKey, response: bytes) -> None:
    """Keep the first answer of the request holding `key`."""
    async with engine.begin() as conn:
        await conn.execute(
            update(requests)
            .where(_row(key), requests.c.response.is_(None))
            .values(response=response, locked_until=None)
        )


async def release(*, engine: AsyncEngine, key: RequestKey) -> None:
    """Let a retry run again after the request holding `key` failed."""
    async with engine.begin() as conn:
        await conn.execute(
            update(requests)
            .where(_row(key), requests.c.response.is_(None))
            .values(locked_until=None)
        )


Servicer = TypeVar("Servicer")
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
KeyedMethod = Callable[[Servicer, Req, Context, RequestKey | None], Awaitable[Resp]]
Method = Callable[[Servicer, Req, Context], Awaitable[Resp]]


def idempotent(
    response_type: type[Resp],
) -> Callable[[KeyedMethod[Servicer, Req, Resp]], Method[Servicer, Req, Resp]]:
    """Make a servicer method (of a servicer with `_engine`) answer retries with its first
    answer. The method gets the request's key, or None when the call names no key."""

    def decorate(method: KeyedMethod[Servicer, Req, Resp]) -> Method[Servicer, Req, Resp]:
        @functools.wraps(method)
        async def wrapper(self: Any, request: Req, context: Context) -> Resp:
            client_key = dict(context.invocation_metadata() or ()).get(IDEMPOTENCY_METADATA)
            principal = current_caller().principal
            if client_key is None or principal is None:
                return await method(self, request, context, None)
            key = RequestKey.of(principal, method.__name__, client_key)
            fingerprint = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
            first = await claim(engine=self._engine, key=key, fingerprint=fingerprint)
            if first is not None:
                return response_type.FromString(first)
            try:
                response = await method(self, request, context, key)
            except BaseException:
                await asyncio.shield(_release_after_failure(self._engine, key))
                raise
            await complete(
                engine=self._engine,
                key=key,
                response=response.SerializeToString(deterministic=True),
            )
            return response

        return wrapper

    return decorate


async def _release_after_failure(engine: AsyncEngine, key: RequestKey) -> None:
    try:
        await release(engine=engine, key=key)
    except Exception:  # the lease runs out instead; the request's own failure is what is reported
        log.warning("could not release an idempotency key after a failure", exc_info=True)
