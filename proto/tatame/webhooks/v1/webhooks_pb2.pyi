import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATE_UNSPECIFIED: _ClassVar[DeliveryState]
    DELIVERY_STATE_PENDING: _ClassVar[DeliveryState]
    DELIVERY_STATE_DELIVERED: _ClassVar[DeliveryState]
    DELIVERY_STATE_DEAD: _ClassVar[DeliveryState]
DELIVERY_STATE_UNSPECIFIED: DeliveryState
DELIVERY_STATE_PENDING: DeliveryState
DELIVERY_STATE_DELIVERED: DeliveryState
DELIVERY_STATE_DEAD: DeliveryState

class Subjects(_message.Message):
    __slots__ = ("stripe_ids", "clerk_ids")
    STRIPE_IDS_FIELD_NUMBER: _ClassVar[int]
    CLERK_IDS_FIELD_NUMBER: _ClassVar[int]
    stripe_ids: _containers.RepeatedScalarFieldContainer[str]
    clerk_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stripe_ids: _Optional[_Iterable[str]] = ..., clerk_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SubjectEvent(_message.Message):
    __slots__ = ("id", "provider", "type", "create_time", "receive_time", "state", "payload")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    id: str
    provider: str
    type: str
    create_time: _timestamp_pb2.Timestamp
    receive_time: _timestamp_pb2.Timestamp
    state: DeliveryState
    payload: str
    def __init__(self, id: _Optional[str] = ..., provider: _Optional[str] = ..., type: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., payload: _Optional[str] = ...) -> None: ...

class ListSubjectEventsRequest(_message.Message):
    __slots__ = ("subjects",)
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    subjects: Subjects
    def __init__(self, subjects: _Optional[_Union[Subjects, _Mapping]] = ...) -> None: ...

class ListSubjectEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[SubjectEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[SubjectEvent, _Mapping]]] = ...) -> None: ...

class EraseSubjectsRequest(_message.Message):
    __slots__ = ("subjects",)
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    subjects: Subjects
    def __init__(self, subjects: _Optional[_Union[Subjects, _Mapping]] = ...) -> None: ...

class EraseSubjectsResponse(_message.Message):
    __slots__ = ("scrubbed",)
    SCRUBBED_FIELD_NUMBER: _ClassVar[int]
    scrubbed: int
    def __init__(self, scrubbed: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "type", "create_time", "livemode", "object_id", "customer_id", "source", "receive_time", "state", "attempts", "next_attempt_time", "last_error", "deliver_time", "outcome", "payload")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LIVEMODE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    DELIVER_TIME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    create_time: _timestamp_pb2.Timestamp
    livemode: bool
    object_id: str
    customer_id: str
    source: str
    receive_time: _timestamp_pb2.Timestamp
    state: DeliveryState
    attempts: int
    next_attempt_time: _timestamp_pb2.Timestamp
    last_error: str
    deliver_time: _timestamp_pb2.Timestamp
    outcome: str
    payload: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., livemode: _Optional[bool] = ..., object_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., source: _Optional[str] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., attempts: _Optional[int] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., deliver_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[str] = ..., payload: _Optional[str] = ...) -> None: ...

class EventSelection(_message.Message):
    __slots__ = ("type", "state", "received_after", "received_before")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AFTER_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    type: str
    state: DeliveryState
    received_after: _timestamp_pb2.Timestamp
    received_before: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[str] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., received_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., received_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("selection", "page_size", "page_token")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    selection: EventSelection
    page_size: int
    page_token: str
    def __init__(self, selection: _Optional[_Union[EventSelection, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetEventRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetEventResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: Event
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class EventIds(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReplayEventsRequest(_message.Message):
    __slots__ = ("ids", "selection", "all_dead")
    IDS_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    ALL_DEAD_FIELD_NUMBER: _ClassVar[int]
    ids: EventIds
    selection: EventSelection
    all_dead: bool
    def __init__(self, ids: _Optional[_Union[EventIds, _Mapping]] = ..., selection: _Optional[_Union[EventSelection, _Mapping]] = ..., all_dead: _Optional[bool] = ...) -> None: ...

class ReplayEventsResponse(_message.Message):
    __slots__ = ("replayed_ids",)
    REPLAYED_IDS_FIELD_NUMBER: _ClassVar[int]
    replayed_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, replayed_ids: _Optional[_Iterable[str]] = ...) -> None: ...
