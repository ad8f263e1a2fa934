"""Stripe's door (and Clerk's, `POST /webhooks/clerk`): verify the signature on the raw bytes,
store the event durably, answer fast.

Concurrent requests are committed together (group commit): each request waits for the commit of
the batch that holds its event, so every 2xx means the event is on disk.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import psycopg
import stripe
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.http import (
    ApiError,
    RequestContextMiddleware,
    http_error,
    http_error_response,
    internal_error,
)
from services.common.logging import configure_logging
from services.common.stripe_sdk import STRIPE_API_VERSION
from services.webhooks import clerk_events, inbox
from services.webhooks.metrics import DUPLICATES, OTHER_API_VERSION, RECEIVED, REJECTED
from services.webhooks.settings import ReceiverSettings
from services.webhooks.stripe_events import InboundEvent, MalformedEvent, parse_event

log = logging.getLogger(__name__)

SIGNATURE_HEADER = b"stripe-signature"


class Rejected(ApiError):
    """A webhook request refused with a 4xx and a reason (also the metric label)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(status, reason, message)
        REJECTED.labels(reason).inc()


def verify_signature(
    payload: str, header: str | None, *, secrets: Sequence[str], tolerance: int, now: float
) -> None:
    """Accept a `Stripe-Signature` made with any of `secrets` at most `tolerance` s from `now`."""
    if not header:
        raise Rejected(400, "missing_signature", "the Stripe-Signature header is required")
    stamps = [part[2:] for part in header.split(",") if part.startswith("t=")]
    if len(stamps) != 1 or not stamps[0].isdigit():
        raise Rejected(400, "malformed_signature", "the Stripe-Signature header is malformed")
    for secret in secrets:
        try:
            # Stripe's HMAC-SHA256 check (constant-time); the time window is checked below.
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
            break
        except stripe.SignatureVerificationError:
            continue
    else:
        raise Rejected(400, "bad_signature", "no signature matches a configured secret")
    if abs(now - int(stamps[0])) > tolerance:
        raise Rejected(400, "stale_timestamp", f"the signature is more than {tolerance} s old")


class BatchInserter:
    """Group commit: events offered while a batch commits go together into the next one."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        max_batch: int,
        connection_wait_seconds: float,
        flushers: int = 2,
    ) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._wait = connection_wait_seconds
        self._queue: list[tuple[InboundEvent, asyncio.Future[bool]]] = []
        self._ready = asyncio.Event()
        self._tasks = [asyncio.create_task(self._flush_forever()) for _ in range(flushers)]

    async def insert(self, event: InboundEvent) -> bool:
        """Store `event` durably; True when new, False when it was already stored."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((event, future))
        self._ready.set()
        return await future

    async def _flush_forever(self) -> None:
        while True:
            await self._ready.wait()
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            if not self._queue:
                self._ready.clear()
            if batch:
                await self._flush(batch)

    async def _flush(self, batch: list[tuple[InboundEvent, asyncio.Future[bool]]]) -> None:
        try:
            # A short wait: while the database is down, Stripe gets its 503 at once and retries.
            async with self._pool.connection(timeout=self._wait) as conn:
                inserted = await inbox.insert_events(
                    conn, [event for event, _ in batch], source="webhook"
                )
        except psycopg.DataError as e:
            if len(batch) > 1:
                # One event the database refuses must not fail its batch-mates: halve the batch
                # until the refused one is alone (its request is then refused, theirs stored).
                middle = len(batch) // 2
                await self._flush(batch[:middle])
                await self._flush(batch[middle:])
                return
            log.warning(
                "the inbox refused an event",
                extra={"fields": {"event": batch[0][0].id, "sqlstate": e.sqlstate}},
            )
            if not batch[0][1].done():
                batch[0][1].set_exception(e)
            return
        except Exception as e:
            log.exception("storing a batch of %d events failed", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
            return
        for event, future in batch:
            new = event.id in inserted
            inserted.discard(event.id)  # a repeat inside one batch is a duplicate
            if not future.done():
                future.set_result(new)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


WEBHOOK_PATH = "/webhooks/stripe"
CLERK_WEBHOOK_PATH = "/webhooks/clerk"
# The 2xx bodies, by whether the event was new.
_ACKNOWLEDGED = {
    True: b'{"received":true,"duplicate":false}',
    False: b'{"received":true,"duplicate":true}',
}


def _is_json(content_type: bytes) -> bool:
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


class ClientGone(Exception):
    """The sender hung up before its body arrived; there is nobody to answer."""


class StripeWebhookEndpoint:
    """`POST /webhooks/stripe` as a bare ASGI app: the ingest hot path.

    Starlette's routing, exception and response layers cost about a quarter of the receiver's
    CPU per event (py-spy, `make bench`); here one request is one header scan, one signature
    check, one JSON parse and a wait for its batch's commit. Errors use the shared error body.
    """

    def __init__(self, settings: ReceiverSettings) -> None:
        self._secrets = settings.signing_secrets
        self._tolerance = settings.webhooks_signature_tolerance_seconds
        self._livemode = settings.stripe_livemode
        self.inserter: BatchInserter | None = None  # set while the app runs (lifespan)
        self._other_versions_seen: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope["method"] != "POST":
                raise ApiError(405, "method_not_allowed", "use POST")
            new = await self._store(scope, receive)
        except ClientGone:
            return
        except ApiError as e:
            response = http_error_response(e)
            if e.status_code == 405:
                response.headers["allow"] = "POST"
            await response(scope, receive, send)
            return
        (RECEIVED.labels("webhook") if new else DUPLICATES).inc()
        body = _ACKNOWLEDGED[new]
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _store(self, scope: Scope, receive: Receive) -> bool:
        content_type = signature = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == SIGNATURE_HEADER:
                signature = value
        if not _is_json(content_type):
            raise Rejected(415, "unsupported_media_type", "Stripe events are application/json")
        body = await _read_body(receive)
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Rejected(400, "malformed_json", "the body is not UTF-8") from e
        verify_signature(
            payload,
            signature.decode("latin-1"),
            secrets=self._secrets,
            tolerance=self._tolerance,
            now=time.time(),
        )
        try:
            event = parse_event(payload)
        except MalformedEvent as e:
            raise Rejected(400, "malformed_event", str(e)) from e
        if event.livemode is not self._livemode:
            raise Rejected(400, "livemode_mismatch", "the event's livemode differs from ours")
        if self.inserter is None:
            raise RuntimeError("the receiver stores events only while its app runs (lifespan)")
        try:
            new = await self.inserter.insert(event)
        except psycopg.DataError as e:
            # Deterministic: the same bytes would be refused again. Stripe retries all the same.
            raise Rejected(400, "unstorable_event", "the inbox cannot store this event") from e
        except psycopg.Error as e:
            # Stripe retries any non-2xx: the event is not lost, only not yet stored.
            raise ApiError(503, "inbox_unavailable", "the event could not be stored") from e
        if new and event.api_version != STRIPE_API_VERSION:
            self._count_other_version(event)
        return new

    def _count_other_version(self, event: InboundEvent) -> None:
        """Stored all the same; counted, and logged once per version per process."""
        version = event.api_version or "none"
        OTHER_API_VERSION.labels(version).inc()
        if version not in self._other_versions_seen:
            self._other_versions_seen.add(version)
            log.warning(
                "stored an event rendered at another API version than %s: run "
                "`python -m services.webhooks endpoint ensure` for this receiver's URL",
                STRIPE_API_VERSION,
                extra={"fields": {"event": event.id, "type": event.type, "api_version": version}},
            )


async def _read_body(receive: Receive) -> bytes:
    """The whole request body (RequestContextMiddleware's receive enforces the size limit)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def create_receiver_app(settings: ReceiverSettings) -> ASGIApp:
    """The receiver's ASGI app; its connection pool opens and closes with the app's lifespan."""
    pool = AsyncConnectionPool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=settings.webhooks_db_pool_size,
        kwargs={"connect_timeout": settings.webhooks_db_connect_timeout_seconds},
        open=False,
    )
    endpoint = StripeWebhookEndpoint(settings)
    webhook_route = Route(WEBHOOK_PATH, endpoint, methods=["POST"])

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        try:
            async with pool.connection(timeout=1.0) as conn:
                await conn.execute("SELECT 1")
        except Exception as e:
            raise ApiError(503, "database_unavailable", "the inbox database is unreachable") from e
        return JSONResponse({"status": "ready"})

    clerk_secrets = clerk_events.clerk_webhooks(settings.clerk_signing_secrets)

    async def clerk_webhook(request: Request) -> Response:
        """`POST /webhooks/clerk`: Clerk's events (Svix-signed), into the same inbox. Low volume:
        an ordinary route, its events committed with the Stripe ones (group commit)."""
        if not clerk_secrets:
            raise ApiError(404, "not_found", "no Clerk webhook secret is configured")
        if not _is_json(request.headers.get("content-type", "").encode("latin-1")):
            raise Rejected(415, "unsupported_media_type", "Clerk events are application/json")
        try:
            payload = (await request.body()).decode("utf-8")
        except UnicodeDecodeError as e:
            raise Rejected(400, "malformed_json", "the body is not UTF-8") from e
        try:
            message_id = clerk_events.verify(payload, request.headers, clerk_secrets)
        except clerk_events.BadSignature as e:
            raise Rejected(400, "bad_signature", str(e)) from e
        try:
            event = clerk_events.parse_clerk_event(
                message_id, payload, livemode=settings.stripe_livemode
            )
        except MalformedEvent as e:
            raise Rejected(400, "malformed_event", str(e)) from e
        if endpoint.inserter is None:
            raise RuntimeError("the receiver stores events only while its app runs (lifespan)")
        try:
            new = await endpoint.inserter.insert(event)
        except psycopg.Error as e:
            raise ApiError(503, "inbox_unavailable", "the event could not be stored") from e
        (RECEIVED.labels("webhook") if new else DUPLICATES).inc()
        return Response(_ACKNOWLEDGED[new], media_type="application/json")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=True, timeout=30)
        endpoint.inserter = BatchInserter(
            pool,
            max_batch=settings.webhooks_batch_max_events,
            connection_wait_seconds=settings.webhooks_db_wait_seconds,
        )
        try:
            yield
        finally:
            await endpoint.inserter.close()
            await pool.close()

    # Everything but the hot path (lifespan, probes) is an ordinary Starlette app.
    rest = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route(CLERK_WEBHOOK_PATH, clerk_webhook, methods=["POST"]),
        ],
        # Starlette types a handler as taking any Exception; it passes the registered class.
        exception_handlers={HTTPException: http_error, Exception: internal_error},  # type: ignore[dict-item]
        lifespan=lifespan,
    )

    async def receiver(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH:
            scope["route"] = webhook_route  # what the request metrics are labelled by
            await endpoint(scope, receive, send)
        else:
            await rest(scope, receive, send)

    return RequestContextMiddleware(
        receiver,
        max_body_bytes=settings.webhooks_max_body_bytes,
        body_timeout_seconds=settings.http_body_read_timeout_seconds,
    )


def create_receiver_app_from_environment() -> ASGIApp:
    """Entry point for the ASGI server: settings from the environment, JSON logs."""
    settings = ReceiverSettings()
    configure_logging(service="webhooks-receiver", level=settings.log_level)
    return create_receiver_app(settings)
