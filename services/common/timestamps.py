"""Times between Python and protobuf: aware UTC datetimes one side, Timestamps the other."""

from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp


def timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None (the field stays unset) for no time."""
    if value is None:
        return None
    converted = Timestamp()
    converted.FromDatetime(value)
    return converted


def optional_datetime(message: Message, field: str) -> datetime | None:
    """A Timestamp field of `message` as an aware UTC datetime; None when unset."""
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    return value.ToDatetime(tzinfo=UTC)
