"""tatame.webhooks.v1.WebhooksAdminService (list, show and replay inbox events) and
WebhooksPrivacyService (the events about a person, and their erasure, for billing)."""

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime

import grpc
from psycopg_pool import AsyncConnectionPool
from tatame.webhooks.v1 import webhooks_pb2, webhooks_pb2_grpc

from services.auth.grpc_interceptor import ServiceAuthInterceptor
from services.auth.service_credentials import ServiceTokenVerifier
from services.common.errors import ErrorReason, ServiceError
from services.common.grpc_server import GrpcServer, start_grpc_server
from services.common.rpc import Context, rpc
from services.common.timestamps import optional_datetime, timestamp
from services.webhooks import inbox, privacy
from services.webhooks.clerk_events import PROVIDER as CLERK

SERVICE_NAME = webhooks_pb2.DESCRIPTOR.services_by_name["WebhooksAdminService"].full_name
PRIVACY_SERVICE_NAME = webhooks_pb2.DESCRIPTOR.services_by_name["WebhooksPrivacyService"].full_name
OPS_CLI = "ops-cli"
BILLING = "billing"
METHOD_POLICY: Mapping[str, frozenset[str]] = {
    **{
        f"/{SERVICE_NAME}/{method}": frozenset({OPS_CLI})
        for method in ("ListEvents", "GetEvent", "ReplayEvents")
    },
    **{
        f"/{PRIVACY_SERVICE_NAME}/{method}": frozenset({BILLING})
        for method in ("ListSubjectEvents", "EraseSubjects")
    },
}
MAX_SUBJECTS = 1000

STATE_NAMES = {
    webhooks_pb2.DELIVERY_STATE_PENDING: "pending",
    webhooks_pb2.DELIVERY_STATE_DELIVERED: "delivered",
    webhooks_pb2.DELIVERY_STATE_DEAD: "dead",
}
STATE_VALUES = {name: value for value, name in STATE_NAMES.items()}
MAX_PAGE_SIZE = 500
INVALID = ErrorReason.INVALID_ARGUMENT


def event_message(event: inbox.StoredEvent) -> webhooks_pb2.Event:
    return webhooks_pb2.Event(
        id=event.id,
        type=event.type,
        create_time=timestamp(event.created),
        livemode=event.livemode,
        object_id=event.object_id or "",
        customer_id=event.customer_id or "",
        source=event.source,
        receive_time=timestamp(event.received_at),
        state=STATE_VALUES[event.state],
        attempts=event.attempts,
        next_attempt_time=timestamp(event.next_attempt_at),
        last_error=event.last_error or "",
        deliver_time=timestamp(event.delivered_at),
        outcome=event.outcome or "",
        payload=event.payload or "",
    )


def selection_of(message: webhooks_pb2.EventSelection) -> inbox.EventFilter:
    return inbox.EventFilter(
        type=message.type or None,
        state=STATE_NAMES.get(message.state),
        received_after=optional_datetime(message, "received_after"),
        received_before=optional_datetime(message, "received_before"),
    )


def _page_token(event: inbox.StoredEvent) -> str:
    return base64.urlsafe_b64encode(f"{event.received_at.isoformat()}|{event.id}".encode()).decode()


def _parse_page_token(token: str) -> tuple[datetime, str]:
    received, _, event_id = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
    return datetime.fromisoformat(received), event_id


class WebhooksAdminServicer(webhooks_pb2_grpc.WebhooksAdminServiceServicer):
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @rpc
    async def ListEvents(
        self, request: webhooks_pb2.ListEventsRequest, context: Context
    ) -> webhooks_pb2.ListEventsResponse:
        size = request.page_size or 50
        if not 0 < size <= MAX_PAGE_SIZE:
            raise ServiceError(f"page_size is 1..{MAX_PAGE_SIZE}", reason=INVALID)
        before = None
        if request.page_token:
            try:
                before = _parse_page_token(request.page_token)
            except (ValueError, binascii.Error, UnicodeDecodeError) as e:
                raise ServiceError("page_token is not valid", reason=INVALID) from e
        async with self._pool.connection() as conn:
            events = await inbox.list_events(
                conn, selection_of(request.selection), limit=size, before=before
            )
        return webhooks_pb2.ListEventsResponse(
            events=[event_message(e) for e in events],
            next_page_token=_page_token(events[-1]) if len(events) == size else "",
        )

    @rpc
    async def GetEvent(
        self, request: webhooks_pb2.GetEventRequest, context: Context
    ) -> webhooks_pb2.GetEventResponse:
        async with self._pool.connection() as conn:
            event = await inbox.get_event(conn, request.id)
        if event is None:
            raise ServiceError(f"no event {request.id!r}", reason=ErrorReason.NOT_FOUND)
        return webhooks_pb2.GetEventResponse(event=event_message(event))

    @rpc
    async def ReplayEvents(
        self, request: webhooks_pb2.ReplayEventsRequest, context: Context
    ) -> webhooks_pb2.ReplayEventsResponse:
        target = request.WhichOneof("target")
        async with self._pool.connection() as conn:
            if target == "ids" and request.ids.ids:
                replayed = await inbox.replay(conn, ids=list(request.ids.ids))
            elif target == "selection":
                replayed = await inbox.replay(conn, selection=selection_of(request.selection))
            elif target == "all_dead" and request.all_dead:
                replayed = await inbox.replay(conn, selection=inbox.EventFilter(state="dead"))
            else:
                raise ServiceError("name ids, a selection, or all_dead", reason=INVALID)
        return webhooks_pb2.ReplayEventsResponse(replayed_ids=replayed)


def subject_keys(subjects: webhooks_pb2.Subjects) -> list[str]:
    """The inbox's ordering keys of `subjects` (privacy.py)."""
    ids = [*subjects.stripe_ids, *subjects.clerk_ids]
    if not ids or len(ids) > MAX_SUBJECTS:
        raise ServiceError(f"name 1..{MAX_SUBJECTS} subjects", reason=INVALID)
    if not all(0 < len(i) <= 255 and i.isascii() and i.isprintable() for i in ids):
        raise ServiceError("a subject id is empty, too long or not printable", reason=INVALID)
    return [*subjects.stripe_ids, *(f"{CLERK}:{i}" for i in subjects.clerk_ids)]


class WebhooksPrivacyServicer(webhooks_pb2_grpc.WebhooksPrivacyServiceServicer):
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @rpc
    async def ListSubjectEvents(
        self, request: webhooks_pb2.ListSubjectEventsRequest, context: Context
    ) -> webhooks_pb2.ListSubjectEventsResponse:
        keys = subject_keys(request.subjects)
        async with self._pool.connection() as conn:
            events = await privacy.subject_events(conn, keys)
        return webhooks_pb2.ListSubjectEventsResponse(
            events=[
                webhooks_pb2.SubjectEvent(
                    id=e.id,
                    provider=e.provider,
                    type=e.type,
                    create_time=timestamp(e.created),
                    receive_time=timestamp(e.received_at),
                    state=STATE_VALUES[e.state],
                    payload=e.payload or "",
                )
                for e in events
            ]
        )

    @rpc
    async def EraseSubjects(
        self, request: webhooks_pb2.EraseSubjectsRequest, context: Context
    ) -> webhooks_pb2.EraseSubjectsResponse:
        keys = subject_keys(request.subjects)
        async with self._pool.connection() as conn:
            scrubbed = await privacy.erase_subjects(conn, keys)
        return webhooks_pb2.EraseSubjectsResponse(scrubbed=scrubbed)


async def start_admin_server(
    *,
    address: str,
    pool: AsyncConnectionPool,
    service_secrets: Mapping[str, str],
    credentials: grpc.ServerCredentials | None = None,
    health_address: str | None = None,
) -> GrpcServer:
    """The admin and privacy APIs (plus health and reflection) with caller checks on; TLS with
    `credentials`, and then plaintext health on `health_address`."""
    admin = WebhooksAdminServicer(pool)
    privacy_servicer = WebhooksPrivacyServicer(pool)

    def add_servicers(server: grpc.aio.Server) -> None:
        webhooks_pb2_grpc.add_WebhooksAdminServiceServicer_to_server(admin, server)
        webhooks_pb2_grpc.add_WebhooksPrivacyServiceServicer_to_server(privacy_servicer, server)

    return await start_grpc_server(
        address=address,
        service_names=[SERVICE_NAME, PRIVACY_SERVICE_NAME],
        add_servicers=add_servicers,
        interceptors=[
            ServiceAuthInterceptor(
                ServiceTokenVerifier(secrets=service_secrets, audience="webhooks"), METHOD_POLICY
            )
        ],
        credentials=credentials,
        health_address=health_address,
    )
