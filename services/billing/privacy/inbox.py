"""Billing's client of the webhooks inbox (tatame.webhooks.v1.WebhooksPrivacyService)."""

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from tatame.webhooks.v1 import webhooks_pb2, webhooks_pb2_grpc

from services.auth.service_credentials import ServiceCredentials
from services.billing.errors import BillingError
from services.common.errors import ErrorReason

# Billing's name toward the webhooks admin server (WEBHOOKS_ADMIN_SERVICE_SECRETS lists it).
CALLER = "billing"


class InboxUnavailable(BillingError):
    default_reason = ErrorReason.INBOX_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class Subjects:
    """Whom events are about: Stripe ids (customers, payment methods) and Clerk ids."""

    stripe_ids: Sequence[str]
    clerk_ids: Sequence[str]

    def message(self) -> webhooks_pb2.Subjects:
        return webhooks_pb2.Subjects(stripe_ids=self.stripe_ids, clerk_ids=self.clerk_ids)


class InboxClient:
    """The two questions billing asks the inbox, with billing's service credential."""

    def __init__(
        self, channel: grpc.aio.Channel, credentials: ServiceCredentials, *, timeout: float = 10.0
    ) -> None:
        self._stub = webhooks_pb2_grpc.WebhooksPrivacyServiceStub(channel)
        self._credentials = credentials
        self._timeout = timeout

    async def events(self, subjects: Subjects) -> list[webhooks_pb2.SubjectEvent]:
        """Every event about `subjects`, oldest first."""
        try:
            reply = await self._stub.ListSubjectEvents(
                webhooks_pb2.ListSubjectEventsRequest(subjects=subjects.message()),
                timeout=self._timeout,
                metadata=self._credentials.metadata(None),
            )
        except grpc.aio.AioRpcError as e:
            raise InboxUnavailable("the webhooks inbox did not answer; try again") from e
        return list(reply.events)

    async def erase(self, subjects: Subjects) -> int:
        """Blank personal data from their events (and those to come); how many changed."""
        try:
            reply = await self._stub.EraseSubjects(
                webhooks_pb2.EraseSubjectsRequest(subjects=subjects.message()),
                timeout=self._timeout,
                metadata=self._credentials.metadata(None),
            )
        except grpc.aio.AioRpcError as e:
            raise InboxUnavailable("the webhooks inbox did not erase; try again") from e
        return int(reply.scrubbed)
