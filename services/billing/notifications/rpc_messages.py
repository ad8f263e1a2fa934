"""Notifications between the domain and protobuf (the messages of notifications.proto)."""

from collections.abc import Iterable, Mapping

from tatame.billing.v1 import notifications_pb2

from services.billing.notifications.kinds import MANDATORY, Kind
from services.billing.notifications.outbox import Listed
from services.common.timestamps import timestamp


def preferences(enabled: Mapping[Kind, bool]) -> list[notifications_pb2.NotificationPreference]:
    return [
        notifications_pb2.NotificationPreference(
            kind=kind.value, enabled=on, mandatory=kind in MANDATORY
        )
        for kind, on in enabled.items()
    ]


def wanted(requested: Iterable[notifications_pb2.NotificationPreference]) -> dict[str, bool]:
    """The kinds a request turns on or off (a kind named twice: the last wins)."""
    return {item.kind: item.enabled for item in requested}


def notification(item: Listed) -> notifications_pb2.Notification:
    return notifications_pb2.Notification(
        id=str(item.id),
        kind=item.kind,
        object_id=item.object_id,
        stripe_customer_id=item.stripe_customer_id,
        state=item.state,
        attempts=item.attempts,
        email_result=item.email_result or "",
        push_result=item.push_result or "",
        last_error=item.last_error or "",
        created_at=timestamp(item.created_at),
        sent_at=timestamp(item.sent_at),
    )
